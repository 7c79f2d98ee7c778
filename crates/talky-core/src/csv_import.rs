//! CSV lead/client import: from uploaded bytes to a validated import plan (behaviour.md
//! D2–D11), plus the response accounting ([`ImportReport`]).
//!
//! Everything here is pure so that the whole file is judged before the store writes a
//! single row (D12, K5): [`parse_csv`] either rejects the file with one of the D2
//! [`ImportFileError`]s, or returns a [`ParsedImport`] whose rows are normalised (E.164
//! phones, trimmed fields, custom fields) and whose bad rows are already [`RowError`]s. The
//! store then applies the campaign-level rules (existing leads, DNC, soft-deleted revival)
//! and records the outcome of each row in the [`ImportReport`] that goes back to the client.
//!
//! The record reader is written here rather than taken from the `csv` crate because D5
//! numbers rows by *record*, counting blank records, and the `csv` crate silently drops
//! empty lines, so its record count cannot reproduce the row numbers users see. The reader
//! borrows unquoted (and simply quoted) cells straight from the decoded text, so parsing
//! allocates only for cells that contain doubled quotes and for the values kept.

use crate::phone::{validate_email, E164};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Header names accepted as the phone column, in order of preference (D5).
pub const PHONE_COLUMNS: [&str; 4] = ["phone_number", "phone", "mobile", "telephone"];

/// Longest `first_name` / `last_name`, in characters (D7).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest `email`, in characters (D7).
pub const MAX_EMAIL_CHARS: usize = 255;
/// Longest value of any other column (custom fields, and a client's `name`/`company`),
/// in characters (D7).
pub const MAX_VALUE_CHARS: usize = 1000;

/// Longest raw phone cell echoed back in a [`RowError`]; a hostile multi-megabyte cell
/// must not be repeated into the response.
const MAX_ECHOED_PHONE_CHARS: usize = 256;

const MIB: usize = 1024 * 1024;

/// What the rows of a file become. The target decides which columns are known fields;
/// every other column (except the phone column) is a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportTarget {
    /// Leads of a campaign: known fields `first_name`, `last_name`, `email`.
    Leads,
    /// The tenant's clients: additionally `company` and `name`.
    Clients,
}

/// Configurable bounds of one import (`import.*` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportLimits {
    /// Largest accepted upload, in bytes (default 10 MiB).
    pub max_bytes: usize,
    /// Most non-blank data rows (default 50 000).
    pub max_rows: usize,
    /// Most row errors listed in the response (default 100); the rest are only counted.
    pub max_errors: usize,
    /// Most custom-field columns (default 50).
    pub max_custom_columns: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * MIB,
            max_rows: 50_000,
            max_errors: 100,
            max_custom_columns: 50,
        }
    }
}

/// A whole-file rejection (D2, D10): the request answers `400` with this `Display` string as
/// its `detail` and nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportFileError {
    /// Neither a `.csv` name nor a `text/csv` content type (see [`is_csv_upload`]);
    /// never returned by [`parse_csv`], provided so the edge reports every D2 case with one type.
    #[error("Only CSV files are supported")]
    NotCsv,
    /// Larger than [`ImportLimits::max_bytes`].
    #[error("CSV file too large (max {})", format_size(*max_bytes))]
    TooLarge {
        /// The limit that was exceeded.
        max_bytes: usize,
    },
    /// No bytes, or no record with a non-blank cell.
    #[error("CSV file is empty")]
    Empty,
    /// Neither UTF-8, UTF-16 with BOM nor Windows-1252 text (D3).
    #[error("Unable to decode CSV file. Please use UTF-8 encoding.")]
    Undecodable,
    /// No header among [`PHONE_COLUMNS`]; `found` lists the (trimmed, non-empty) headers.
    #[error("CSV must have 'phone_number' column. Found: {}", found.join(", "))]
    MissingPhoneColumn {
        /// The file's header names, in file order.
        found: Vec<String>,
    },
    /// More than [`ImportLimits::max_rows`] non-blank data rows.
    #[error("CSV has too many rows (max {max_rows})")]
    TooManyRows {
        /// The limit that was exceeded.
        max_rows: usize,
    },
    /// Two headers equal after trimming, ignoring case; holds the later one as written.
    #[error("Duplicate column: {0}")]
    DuplicateColumn(String),
    /// More than [`ImportLimits::max_custom_columns`] custom-field columns.
    #[error("Too many columns (max {max_custom_columns} custom fields)")]
    TooManyColumns {
        /// The limit that was exceeded.
        max_custom_columns: usize,
    },
}

impl ImportFileError {
    /// A stable snake_case code for the error body's `code` field (K1).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotCsv => "unsupported_file_type",
            Self::TooLarge { .. } => "file_too_large",
            Self::Empty => "empty_file",
            Self::Undecodable => "undecodable_file",
            Self::MissingPhoneColumn { .. } => "missing_phone_column",
            Self::TooManyRows { .. } => "too_many_rows",
            Self::DuplicateColumn(_) => "duplicate_column",
            Self::TooManyColumns { .. } => "too_many_columns",
        }
    }
}

/// `10485760` → `10 MiB`; sizes that are not whole MiB fall back to KiB, then bytes.
/// (Bit masks rather than `%` / `is_multiple_of`, which is newer than the workspace MSRV.)
fn format_size(bytes: usize) -> String {
    if bytes >= MIB && bytes & (MIB - 1) == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes & 1023 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Whether an upload may be a CSV file (D2): its file name ends in `.csv` (any case) or its
/// content type is `text/csv` (any case, parameters such as `; charset=utf-8` ignored).
/// Browsers disagree on the content type of `.csv` files, hence either is enough.
pub fn is_csv_upload(filename: Option<&str>, content_type: Option<&str>) -> bool {
    let name_ok = filename.is_some_and(|name| {
        let name = name.trim();
        name.len() >= 4
            && name
                .get(name.len() - 4..)
                .is_some_and(|ext| ext.eq_ignore_ascii_case(".csv"))
    });
    let type_ok = content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"))
    });
    name_ok || type_ok
}

/// One row that passed every file-level check (D5–D7, D8's in-file part, D10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRow {
    /// Row number as users see it: the header is row 1 (D5).
    pub row: usize,
    /// The normalised phone number.
    pub phone: E164,
    /// The phone cell as written (trimmed), for error reports made later by the store.
    pub raw_phone: String,
    /// `first_name`, trimmed; `None` when empty or absent.
    pub first_name: Option<String>,
    /// `last_name`, trimmed; `None` when empty or absent.
    pub last_name: Option<String>,
    /// `email`, trimmed, valid per [`validate_email`]; `None` when empty or absent.
    pub email: Option<String>,
    /// Clients only: `name`, trimmed; always `None` for leads (it is a custom field there).
    pub name: Option<String>,
    /// Clients only: `company`, trimmed; always `None` for leads.
    pub company: Option<String>,
    /// Non-empty values of custom columns, keyed by the trimmed header as written (D10).
    pub custom_fields: BTreeMap<String, String>,
}

impl ParsedRow {
    /// The custom fields as a JSON object, the shape the store persists.
    pub fn custom_fields_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.custom_fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect()
    }
}

/// A row that will not be imported, as reported in the response (D11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Row number (header = 1).
    pub row: usize,
    /// Human-readable reason, e.g. `Invalid phone number`.
    pub error: String,
    /// The raw phone cell, when the row had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl RowError {
    /// D8: the phone is already a non-deleted lead and `skip_duplicates=false`.
    pub const ALREADY_IN_CAMPAIGN: &'static str = "Phone number already exists in this campaign";
    /// D8: the phone is on the tenant's do-not-call list.
    pub const ON_DNC_LIST: &'static str = "Number is on the do-not-call list";
    /// D12: the row failed on its own when its chunk was retried row by row.
    pub const DATABASE_INSERT_FAILED: &'static str = "Database insert failed";
}

/// The outcome of [`parse_csv`]: the rows to write and what was already rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedImport {
    /// Non-blank data records (D11's `total_rows`).
    pub total_rows: usize,
    /// Rows to hand to the store, in file order.
    pub rows: Vec<ParsedRow>,
    /// Rows rejected by file-level validation, in file order.
    pub row_errors: Vec<RowError>,
    /// Later occurrences of a phone number already seen in this file (D8).
    pub duplicates_skipped: usize,
    /// Every header cell, trimmed, as written, in file order.
    pub headers: Vec<String>,
    /// The header chosen as the phone column (D5), as written.
    pub phone_column: String,
    /// The custom-field columns (D10), as written, in file order.
    pub custom_columns: Vec<String>,
}

impl ParsedImport {
    /// Splits the plan into the rows to write and a report that already accounts for
    /// everything decided here (total, in-file duplicates, row errors).
    pub fn into_rows_and_report(self) -> (Vec<ParsedRow>, ImportReport) {
        let failed = self.row_errors.len();
        let report = ImportReport {
            total_rows: self.total_rows,
            imported: 0,
            revived: 0,
            failed,
            duplicates_skipped: self.duplicates_skipped,
            errors: self.row_errors,
            errors_truncated: false,
        };
        (self.rows, report)
    }
}

/// The import response body (D11). Build it with [`ParsedImport::into_rows_and_report`],
/// record each row's fate with the `record_*` / [`ImportReport::add_error`] methods, then
/// call [`ImportReport::finish`] before serialising.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// Non-blank data records in the file.
    pub total_rows: usize,
    /// Rows written, including revived ones.
    pub imported: usize,
    /// Rows that revived a soft-deleted lead (D9); also counted in `imported`.
    pub revived: usize,
    /// Rows rejected, all of them (not only those listed in `errors`).
    pub failed: usize,
    /// Rows skipped as duplicates, in the file or (with `skip_duplicates`) in the campaign.
    pub duplicates_skipped: usize,
    /// The first `max_errors` row errors in row order.
    pub errors: Vec<RowError>,
    /// Whether `errors` was cut short.
    pub errors_truncated: bool,
}

impl ImportReport {
    /// An empty report for a file of `total_rows` non-blank data rows.
    pub fn new(total_rows: usize) -> Self {
        Self {
            total_rows,
            ..Self::default()
        }
    }

    /// A row was written as a new lead or client.
    pub fn record_imported(&mut self) {
        self.imported += 1;
    }

    /// A row revived a soft-deleted lead; it counts as imported too (D9).
    pub fn record_revived(&mut self) {
        self.imported += 1;
        self.revived += 1;
    }

    /// A row was skipped because its phone is already in the campaign (D8,
    /// `skip_duplicates=true`).
    pub fn record_duplicate(&mut self) {
        self.duplicates_skipped += 1;
    }

    /// A row failed; errors may be added in any order, [`ImportReport::finish`] sorts them.
    pub fn add_error(&mut self, row: usize, error: impl Into<String>, phone: Option<String>) {
        self.failed += 1;
        self.errors.push(RowError {
            row,
            error: error.into(),
            phone,
        });
    }

    /// Whether `total_rows = imported + failed + duplicates_skipped` (D11) and `revived`
    /// is within `imported`.
    pub fn is_balanced(&self) -> bool {
        self.total_rows == self.imported + self.failed + self.duplicates_skipped
            && self.revived <= self.imported
    }

    /// Orders errors by row, keeps the first `max_errors` and sets `errors_truncated`.
    /// `failed` keeps counting every error. Call once every row has been accounted for.
    pub fn finish(mut self, max_errors: usize) -> Self {
        debug_assert!(
            self.is_balanced(),
            "unbalanced import report: total {} != imported {} + failed {} + duplicates {}",
            self.total_rows,
            self.imported,
            self.failed,
            self.duplicates_skipped
        );
        // Stable: several errors for one row keep the order they were added in.
        self.errors.sort_by_key(|e| e.row);
        let listed = self.errors.len();
        self.errors.truncate(max_errors);
        self.errors_truncated = listed > self.errors.len() || self.failed > self.errors.len();
        self
    }
}

/// Decodes the upload per D3: UTF-8 BOM stripped; a UTF-16 BOM selects UTF-16 LE/BE;
/// otherwise strict UTF-8, falling back to Windows-1252. NUL bytes (outside UTF-16), NUL
/// characters and malformed UTF-16 make the file undecodable.
fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, ImportFileError> {
    let utf16 = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some((encoding_rs::UTF_16LE, rest)),
        [0xFE, 0xFF, rest @ ..] => Some((encoding_rs::UTF_16BE, rest)),
        _ => None,
    };
    let text = if let Some((encoding, rest)) = utf16 {
        let text = encoding
            .decode_without_bom_handling_and_without_replacement(rest)
            .ok_or(ImportFileError::Undecodable)?;
        // A NUL is never legitimate in a contact list and Postgres refuses it in text.
        if text.contains('\0') {
            return Err(ImportFileError::Undecodable);
        }
        text
    } else {
        if bytes.contains(&0) {
            return Err(ImportFileError::Undecodable);
        }
        let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
        match std::str::from_utf8(body) {
            Ok(s) => Cow::Borrowed(s),
            // Windows-1252 maps every byte, so this cannot fail.
            Err(_) => {
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(body)
                    .0
            }
        }
    };
    // A second BOM (some exporters write one inside UTF-16 too) would glue itself to the
    // first header name.
    Ok(match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_prefix('\u{feff}').unwrap_or(s)),
        Cow::Owned(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..'\u{feff}'.len_utf8());
            }
            Cow::Owned(s)
        }
    })
}

/// D4: `,` unless the header line has no comma but a `;` (then `;`) or a tab (then tab).
/// The header line is the first line holding anything besides whitespace and delimiters;
/// `None` when there is no such line, i.e. every record is blank whatever the delimiter.
fn detect_delimiter(text: &str) -> Option<u8> {
    let header = text.split(['\n', '\r']).find(|line| {
        line.chars()
            .any(|c| !c.is_whitespace() && !matches!(c, ',' | ';'))
    })?;
    Some(if header.contains(',') {
        b','
    } else if header.contains(';') {
        b';'
    } else if header.contains('\t') {
        b'\t'
    } else {
        b','
    })
}

/// An RFC 4180 record reader over decoded text that never fails: a quote that is never
/// closed runs to the end of the input, text after a closing quote is appended to the cell,
/// and a quote inside an unquoted cell is literal. Records end at `\r\n`, `\n` or a lone
/// `\r` outside quotes; an empty line is a record of one empty cell (so it is numbered).
struct RecordReader<'a> {
    text: &'a str,
    pos: usize,
    delimiter: u8,
}

impl<'a> RecordReader<'a> {
    fn new(text: &'a str, delimiter: u8) -> Self {
        Self {
            text,
            pos: 0,
            delimiter,
        }
    }

    /// Index of the first delimiter or line break at or after `from`, or the text length.
    fn cell_end(&self, from: usize) -> usize {
        let delimiter = self.delimiter;
        self.text.as_bytes()[from..]
            .iter()
            .position(|&b| b == delimiter || b == b'\n' || b == b'\r')
            .map_or(self.text.len(), |i| from + i)
    }

    /// Reads the next record into `cells` (cleared first); `false` at the end of input.
    fn read_into(&mut self, cells: &mut Vec<Cow<'a, str>>) -> bool {
        let text = self.text;
        let bytes = text.as_bytes();
        let len = bytes.len();
        if self.pos >= len {
            return false;
        }
        cells.clear();
        loop {
            // Every index used to slice `text` below sits on an ASCII byte (quote,
            // delimiter, line break) or at an end, so it is always a char boundary.
            if self.pos >= len {
                // The input ended right after a delimiter: one last empty cell.
                cells.push(Cow::Borrowed(""));
                return true;
            }
            if bytes[self.pos] == b'"' {
                cells.push(self.quoted_cell());
            } else {
                let end = self.cell_end(self.pos);
                cells.push(Cow::Borrowed(&text[self.pos..end]));
                self.pos = end;
            }
            if self.pos >= len {
                return true;
            }
            match bytes[self.pos] {
                b'\r' => {
                    self.pos += 1;
                    if self.pos < len && bytes[self.pos] == b'\n' {
                        self.pos += 1;
                    }
                    return true;
                }
                b'\n' => {
                    self.pos += 1;
                    return true;
                }
                // The delimiter: another cell follows.
                _ => self.pos += 1,
            }
        }
    }

    /// Reads a cell that starts with `"` at `self.pos`, leaving `self.pos` on the delimiter,
    /// line break or end of input that follows it.
    fn quoted_cell(&mut self) -> Cow<'a, str> {
        let text = self.text;
        let bytes = text.as_bytes();
        let len = bytes.len();
        let mut owned: Option<String> = None;
        let mut seg_start = self.pos + 1;
        let closed_at = loop {
            match bytes[seg_start..].iter().position(|&b| b == b'"') {
                None => {
                    // Unterminated: the rest of the input is the cell.
                    self.pos = len;
                    break len;
                }
                Some(i) => {
                    let quote = seg_start + i;
                    if quote + 1 < len && bytes[quote + 1] == b'"' {
                        // `""` is one literal quote.
                        owned
                            .get_or_insert_with(String::new)
                            .push_str(&text[seg_start..=quote]);
                        seg_start = quote + 2;
                    } else {
                        self.pos = quote + 1;
                        break quote;
                    }
                }
            }
        };
        let inside = &text[seg_start..closed_at];
        let tail_end = if self.pos < len {
            self.cell_end(self.pos)
        } else {
            len
        };
        let tail = &text[self.pos..tail_end];
        self.pos = tail_end;
        match owned {
            None if tail.is_empty() => Cow::Borrowed(inside),
            owned => {
                let mut s = owned.unwrap_or_default();
                s.push_str(inside);
                s.push_str(tail);
                Cow::Owned(s)
            }
        }
    }
}

fn is_blank(cells: &[Cow<'_, str>]) -> bool {
    cells.iter().all(|c| c.trim().is_empty())
}

/// Whether `s` has more than `max` characters, without counting when the byte length
/// already settles it.
fn longer_than(s: &str, max: usize) -> bool {
    s.len() > max && s.chars().count() > max
}

/// `s` cut to at most `max` characters.
fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// What a column means for the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Phone,
    FirstName,
    LastName,
    Email,
    Name,
    Company,
    /// Index into the custom column names.
    Custom(usize),
    /// A column with an empty header: its values have no name to be stored under.
    Ignored,
}

/// The header, analysed: each column's role plus the names the result reports.
struct Columns {
    roles: Vec<Role>,
    phone_index: usize,
    custom_names: Vec<String>,
}

fn analyse_header(
    headers: &[String],
    target: ImportTarget,
    limits: &ImportLimits,
) -> Result<Columns, ImportFileError> {
    let phone_index = PHONE_COLUMNS
        .iter()
        .find_map(|want| headers.iter().position(|h| h.eq_ignore_ascii_case(want)))
        .ok_or_else(|| ImportFileError::MissingPhoneColumn {
            found: headers.iter().filter(|h| !h.is_empty()).cloned().collect(),
        })?;

    let mut seen = HashSet::with_capacity(headers.len());
    for header in headers.iter().filter(|h| !h.is_empty()) {
        if !seen.insert(header.to_lowercase()) {
            return Err(ImportFileError::DuplicateColumn(header.clone()));
        }
    }

    let mut custom_names = Vec::new();
    let roles = headers
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let is = |name: &str| header.eq_ignore_ascii_case(name);
            if i == phone_index {
                Role::Phone
            } else if header.is_empty() {
                Role::Ignored
            } else if is("first_name") {
                Role::FirstName
            } else if is("last_name") {
                Role::LastName
            } else if is("email") {
                Role::Email
            } else if target == ImportTarget::Clients && is("name") {
                Role::Name
            } else if target == ImportTarget::Clients && is("company") {
                Role::Company
            } else {
                custom_names.push(header.clone());
                Role::Custom(custom_names.len() - 1)
            }
        })
        .collect();

    if custom_names.len() > limits.max_custom_columns {
        return Err(ImportFileError::TooManyColumns {
            max_custom_columns: limits.max_custom_columns,
        });
    }
    Ok(Columns {
        roles,
        phone_index,
        custom_names,
    })
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Validates one non-blank data record. `Err` is the row's error message.
fn parse_row(
    row: usize,
    cells: &[Cow<'_, str>],
    columns: &Columns,
    headers: &[String],
    phone: E164,
    raw_phone: &str,
) -> Result<ParsedRow, String> {
    let too_long = |i: usize| format!("Value too long in column {}", headers[i]);
    let mut parsed = ParsedRow {
        row,
        phone,
        raw_phone: raw_phone.to_owned(),
        first_name: None,
        last_name: None,
        email: None,
        name: None,
        company: None,
        custom_fields: BTreeMap::new(),
    };
    // Missing cells are empty, extra cells are ignored: only header columns are visited.
    for (i, role) in columns.roles.iter().enumerate() {
        let value = cells.get(i).map_or("", |c| c.trim());
        match *role {
            Role::Phone | Role::Ignored => {}
            Role::FirstName | Role::LastName => {
                if longer_than(value, MAX_NAME_CHARS) {
                    return Err(too_long(i));
                }
                let slot = if *role == Role::FirstName {
                    &mut parsed.first_name
                } else {
                    &mut parsed.last_name
                };
                *slot = non_empty(value);
            }
            Role::Email => {
                if !value.is_empty() {
                    if longer_than(value, MAX_EMAIL_CHARS) || !validate_email(value) {
                        return Err("Invalid email".to_owned());
                    }
                    parsed.email = Some(value.to_owned());
                }
            }
            Role::Name | Role::Company => {
                if longer_than(value, MAX_VALUE_CHARS) {
                    return Err(too_long(i));
                }
                let slot = if *role == Role::Name {
                    &mut parsed.name
                } else {
                    &mut parsed.company
                };
                *slot = non_empty(value);
            }
            Role::Custom(k) => {
                if longer_than(value, MAX_VALUE_CHARS) {
                    return Err(too_long(i));
                }
                if !value.is_empty() {
                    parsed
                        .custom_fields
                        .insert(columns.custom_names[k].clone(), value.to_owned());
                }
            }
        }
    }
    Ok(parsed)
}

/// Turns an uploaded file into a validated import plan (D2–D10) without touching storage.
///
/// File-level problems reject the whole file with an [`ImportFileError`], checked in this
/// order: size, empty, encoding, empty again (no non-blank record), phone column, duplicate
/// column, custom-column count, row count. Row-level problems become [`RowError`]s and the
/// row is left out. Cell values are trimmed and otherwise kept verbatim — a cell such as
/// `=cmd()` stays plain text (exporting it safely is the reader's concern).
///
/// Each row is checked in this order and fails on the first problem: phone (D6), in-file
/// duplicate (D8: the first row with a number claims it even if it then fails a field rule),
/// `first_name`, `last_name`, `email`, then the remaining columns in file order (D7).
/// Over-long names and client `name`/`company` values are reported like custom values,
/// as `Value too long in column <header>`.
pub fn parse_csv(
    bytes: &[u8],
    target: ImportTarget,
    limits: &ImportLimits,
) -> Result<ParsedImport, ImportFileError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImportFileError::TooLarge {
            max_bytes: limits.max_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(ImportFileError::Empty);
    }
    let text = decode(bytes)?;
    let delimiter = detect_delimiter(&text).ok_or(ImportFileError::Empty)?;
    let mut reader = RecordReader::new(&text, delimiter);
    let mut cells: Vec<Cow<'_, str>> = Vec::with_capacity(32);

    let headers: Vec<String> = loop {
        if !reader.read_into(&mut cells) {
            return Err(ImportFileError::Empty);
        }
        // Same notion of "blank" as `detect_delimiter`, so a line such as `,,` above a
        // `;`-separated header is skipped rather than taken as the header.
        let blank = cells.iter().all(|c| {
            c.chars()
                .all(|ch| ch.is_whitespace() || matches!(ch, ',' | ';'))
        });
        if !blank {
            break cells.iter().map(|c| c.trim().to_owned()).collect();
        }
    };
    let columns = analyse_header(&headers, target, limits)?;

    let mut rows = Vec::new();
    let mut row_errors = Vec::new();
    let mut seen_phones: HashSet<u64> = HashSet::new();
    let mut duplicates_skipped = 0usize;
    let mut total_rows = 0usize;
    let mut row = 1usize;

    while reader.read_into(&mut cells) {
        row += 1;
        if is_blank(&cells) {
            continue;
        }
        total_rows += 1;
        if total_rows > limits.max_rows {
            return Err(ImportFileError::TooManyRows {
                max_rows: limits.max_rows,
            });
        }

        let raw_phone = cells.get(columns.phone_index).map_or("", |c| c.trim());
        let phone = match E164::parse(raw_phone) {
            Ok(phone) => phone,
            Err(e) => {
                row_errors.push(RowError {
                    row,
                    error: e.to_string(),
                    phone: (!raw_phone.is_empty())
                        .then(|| truncate_chars(raw_phone, MAX_ECHOED_PHONE_CHARS).to_owned()),
                });
                continue;
            }
        };
        if !seen_phones.insert(phone.as_u64()) {
            duplicates_skipped += 1;
            continue;
        }
        match parse_row(row, &cells, &columns, &headers, phone, raw_phone) {
            Ok(parsed) => rows.push(parsed),
            Err(error) => row_errors.push(RowError {
                row,
                error,
                phone: Some(truncate_chars(raw_phone, MAX_ECHOED_PHONE_CHARS).to_owned()),
            }),
        }
    }

    Ok(ParsedImport {
        total_rows,
        rows,
        row_errors,
        duplicates_skipped,
        phone_column: headers[columns.phone_index].clone(),
        custom_columns: columns.custom_names,
        headers,
    })
}

impl fmt::Display for ImportTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Leads => "leads",
            Self::Clients => "clients",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParsedImport {
        parse_bytes(text.as_bytes())
    }

    fn parse_bytes(bytes: &[u8]) -> ParsedImport {
        parse_csv(bytes, ImportTarget::Leads, &ImportLimits::default())
            .unwrap_or_else(|e| panic!("unexpected file error: {e}"))
    }

    fn reject(bytes: &[u8]) -> ImportFileError {
        parse_csv(bytes, ImportTarget::Leads, &ImportLimits::default())
            .expect_err("file should be rejected")
    }

    fn phones(p: &ParsedImport) -> Vec<&str> {
        p.rows.iter().map(|r| r.phone.as_str()).collect()
    }

    fn row_numbers(p: &ParsedImport) -> Vec<usize> {
        p.rows.iter().map(|r| r.row).collect()
    }

    fn errors(p: &ParsedImport) -> Vec<(usize, &str)> {
        p.row_errors
            .iter()
            .map(|e| (e.row, e.error.as_str()))
            .collect()
    }

    fn read_all(text: &str, delimiter: u8) -> Vec<Vec<String>> {
        let mut reader = RecordReader::new(text, delimiter);
        let mut cells = Vec::new();
        let mut out = Vec::new();
        while reader.read_into(&mut cells) {
            out.push(cells.iter().map(|c| c.to_string()).collect());
        }
        out
    }

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        let mut out = if big_endian {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in text.encode_utf16() {
            let b = if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            };
            out.extend_from_slice(&b);
        }
        out
    }

    // ---- D2 file-level rejections -------------------------------------------------------

    #[test]
    fn d2_only_csv_uploads() {
        assert!(is_csv_upload(Some("leads.csv"), None));
        assert!(is_csv_upload(
            Some("LEADS.CSV"),
            Some("application/vnd.ms-excel")
        ));
        assert!(is_csv_upload(Some("export"), Some("text/csv")));
        assert!(is_csv_upload(None, Some("Text/CSV; charset=utf-8")));
        assert!(!is_csv_upload(
            Some("leads.xlsx"),
            Some("application/octet-stream")
        ));
        assert!(!is_csv_upload(Some("csv"), None));
        assert!(!is_csv_upload(Some("leads.csv.exe"), None));
        assert!(!is_csv_upload(None, None));
        assert!(!is_csv_upload(Some("été"), Some("text/plain")));
        assert_eq!(
            ImportFileError::NotCsv.to_string(),
            "Only CSV files are supported"
        );
    }

    #[test]
    fn d2_too_large() {
        let limits = ImportLimits::default();
        let big = vec![b'a'; limits.max_bytes + 1];
        let err = parse_csv(&big, ImportTarget::Leads, &limits).unwrap_err();
        assert_eq!(err.to_string(), "CSV file too large (max 10 MiB)");
        assert_eq!(err.code(), "file_too_large");

        let small = ImportLimits {
            max_bytes: 2 * MIB,
            ..limits
        };
        let err = parse_csv(&vec![b'a'; 2 * MIB + 1], ImportTarget::Leads, &small).unwrap_err();
        assert_eq!(err.to_string(), "CSV file too large (max 2 MiB)");
        assert_eq!(format_size(3 * 1024), "3 KiB");
        assert_eq!(format_size(1536), "1536 bytes");
    }

    #[test]
    fn d2_exactly_max_bytes_is_accepted() {
        let limits = ImportLimits::default();
        let mut file = b"phone_number,notes\n+15551234567,".to_vec();
        file.resize(limits.max_bytes, b'x');
        let parsed = parse_csv(&file, ImportTarget::Leads, &limits).unwrap();
        assert_eq!(parsed.total_rows, 1);
        // The huge custom value is a row error, not a panic or a file error.
        assert_eq!(errors(&parsed), vec![(2, "Value too long in column notes")]);
    }

    #[test]
    fn d2_empty() {
        for input in [
            &b""[..],
            b"\n\n",
            b"\r\n  \r\n",
            b",,,\n;;\n",
            b"\t\t\n , ; \n",
            b"\xEF\xBB\xBF",
            b"\xFF\xFE",
            b"\"\"\n",
        ] {
            assert_eq!(reject(input), ImportFileError::Empty, "{input:?}");
        }
        assert_eq!(ImportFileError::Empty.to_string(), "CSV file is empty");
    }

    #[test]
    fn d2_header_only_is_not_empty() {
        let parsed = parse("phone_number,first_name\n\n");
        assert_eq!(parsed.total_rows, 0);
        assert!(parsed.rows.is_empty());
    }

    #[test]
    fn d2_undecodable() {
        let err = reject(b"phone_number\n+1555\x001234567\n");
        assert_eq!(err, ImportFileError::Undecodable);
        assert_eq!(
            err.to_string(),
            "Unable to decode CSV file. Please use UTF-8 encoding."
        );
        // NUL bytes after a UTF-8 BOM are still NUL bytes.
        assert_eq!(
            reject(b"\xEF\xBB\xBFphone_number\n\x00\n"),
            ImportFileError::Undecodable
        );
        // Odd-length UTF-16 and unpaired surrogates.
        assert_eq!(reject(b"\xFF\xFEp\x00h"), ImportFileError::Undecodable);
        assert_eq!(
            reject(b"\xFF\xFE\x00\xD8a\x00"),
            ImportFileError::Undecodable
        );
        // A UTF-16 NUL character.
        assert_eq!(
            reject(&utf16("phone_number\n\u{0}\n", false)),
            ImportFileError::Undecodable
        );
    }

    #[test]
    fn d2_missing_phone_column() {
        let err = reject(b" a , B ,\nx,y\n");
        assert_eq!(
            err.to_string(),
            "CSV must have 'phone_number' column. Found: a, B"
        );
        assert_eq!(err.code(), "missing_phone_column");
        // Close but not equal names do not count.
        assert!(matches!(
            reject(b"phone number,phone_numbers\n"),
            ImportFileError::MissingPhoneColumn { .. }
        ));
    }

    #[test]
    fn d2_too_many_rows() {
        let mut file = String::from("phone_number\n");
        for i in 0..50_001u64 {
            file.push_str(&format!("+1555{:07}\n", i));
        }
        let err = reject(file.as_bytes());
        assert_eq!(err.to_string(), "CSV has too many rows (max 50000)");

        // Exactly the limit, with blank lines (which do not count) in between.
        let mut file = String::from("phone_number\n");
        for i in 0..50_000u64 {
            file.push_str(&format!("+1555{:07}\n\n", i));
        }
        let parsed = parse(&file);
        assert_eq!(parsed.total_rows, 50_000);
        assert_eq!(parsed.rows.len(), 50_000);
        assert_eq!(parsed.rows.last().unwrap().row, 100_000);
    }

    #[test]
    fn d2_duplicate_column() {
        let err = reject(b"phone_number,Email, EMAIL \n");
        assert_eq!(err, ImportFileError::DuplicateColumn("EMAIL".into()));
        assert_eq!(err.to_string(), "Duplicate column: EMAIL");
        assert_eq!(
            reject(b"Phone_Number,phone_number\n"),
            ImportFileError::DuplicateColumn("phone_number".into())
        );
        // Several empty headers are not duplicates of each other.
        let parsed = parse("phone_number,,\n+15551234567,x,y\n");
        assert_eq!(parsed.rows.len(), 1);
        assert!(parsed.rows[0].custom_fields.is_empty());
    }

    #[test]
    fn d10_too_many_custom_columns() {
        let header = |n: usize| {
            let mut h = String::from("phone_number,first_name,last_name,email");
            for i in 0..n {
                h.push_str(&format!(",c{i}"));
            }
            h.push('\n');
            h
        };
        assert_eq!(parse(&header(50)).custom_columns.len(), 50);
        let err = reject(header(51).as_bytes());
        assert_eq!(err.to_string(), "Too many columns (max 50 custom fields)");
    }

    // ---- D3 decoding ---------------------------------------------------------------------

    const SAMPLE: &str = "phone_number,first_name\n+15551234567,José Ünal\n";

    fn assert_sample(parsed: &ParsedImport) {
        assert_eq!(parsed.headers, vec!["phone_number", "first_name"]);
        assert_eq!(phones(parsed), vec!["+15551234567"]);
        assert_eq!(parsed.rows[0].first_name.as_deref(), Some("José Ünal"));
    }

    #[test]
    fn d3_utf8_with_and_without_bom() {
        assert_sample(&parse(SAMPLE));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(SAMPLE.as_bytes());
        assert_sample(&parse_bytes(&bom));
    }

    #[test]
    fn d3_utf16_le_and_be() {
        assert_sample(&parse_bytes(&utf16(SAMPLE, false)));
        assert_sample(&parse_bytes(&utf16(SAMPLE, true)));
        // Including a BOM character encoded again after the BOM, and CRLF line ends.
        let crlf = format!("\u{feff}{}", SAMPLE.replace('\n', "\r\n"));
        assert_sample(&parse_bytes(&utf16(&crlf, false)));
    }

    #[test]
    fn d3_windows_1252_fallback() {
        // "José Ünal" in Windows-1252, plus a curly quote (0x93/0x94) in a custom column.
        let bytes = b"phone_number,first_name,notes\n+15551234567,Jos\xE9 \xDCnal,\x93hi\x94\n";
        let parsed = parse_bytes(bytes);
        assert_eq!(phones(&parsed), vec!["+15551234567"]);
        assert_eq!(parsed.rows[0].first_name.as_deref(), Some("José Ünal"));
        assert_eq!(
            parsed.rows[0]
                .custom_fields
                .get("notes")
                .map(String::as_str),
            Some("\u{201C}hi\u{201D}")
        );
        // After a UTF-8 BOM, invalid UTF-8 still falls back to Windows-1252.
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(bytes);
        assert_eq!(
            parse_bytes(&bom).rows[0].first_name.as_deref(),
            Some("José Ünal")
        );
    }

    // ---- D4 parsing ----------------------------------------------------------------------

    #[test]
    fn d4_reader_quoting() {
        assert_eq!(
            read_all("a,\"b,c\",\"d\"\"e\"\n\"multi\nline\",x\r\n", b','),
            vec![vec!["a", "b,c", "d\"e"], vec!["multi\nline", "x"]]
        );
        // Empty quoted cell, trailing delimiter, empty line, lone CR.
        assert_eq!(
            read_all("\"\",a,\n\nb\rc", b','),
            vec![vec!["", "a", ""], vec![""], vec!["b"], vec!["c"]]
        );
        // Lenient: quote in an unquoted cell, text after a closing quote, unterminated quote.
        assert_eq!(
            read_all("ab\"c,\"x\"y z,\"open\nto, the end", b','),
            vec![vec!["ab\"c", "xy z", "open\nto, the end"]]
        );
        assert_eq!(read_all("\"", b','), vec![vec![""]]);
        assert_eq!(read_all("\"\"\"", b','), vec![vec!["\""]]);
        assert_eq!(read_all("a;b\tc", b';'), vec![vec!["a", "b\tc"]]);
        assert!(read_all("", b',').is_empty());
    }

    #[test]
    fn d4_embedded_newlines_and_crlf() {
        let parsed = parse(
            "phone_number,first_name,notes\r\n\
             +15551234567,\"Ann\",\"line one\r\nline two, with comma\"\r\n\
             +15551234568,Bob,\"say \"\"hi\"\"\"\r\n",
        );
        assert_eq!(row_numbers(&parsed), vec![2, 3]);
        assert_eq!(
            parsed.rows[0].custom_fields["notes"],
            "line one\r\nline two, with comma"
        );
        assert_eq!(parsed.rows[1].custom_fields["notes"], "say \"hi\"");
    }

    #[test]
    fn d4_delimiters() {
        let semi = parse("phone_number;first_name\n+15551234567;Ann\n");
        assert_eq!(semi.rows[0].first_name.as_deref(), Some("Ann"));
        let tab = parse("phone_number\tfirst_name\n+15551234567\tAnn\n");
        assert_eq!(tab.rows[0].first_name.as_deref(), Some("Ann"));
        // A comma in the header line wins over semicolons.
        let comma = parse("phone_number,notes;more\n+15551234567,a;b\n");
        assert_eq!(comma.rows[0].custom_fields["notes;more"], "a;b");
        // Semicolon before tab.
        let both = parse("phone_number;first\tname\n+15551234567;x\ty\n");
        assert_eq!(both.rows[0].custom_fields["first\tname"], "x\ty");
        // The header line is found past leading blank and delimiter-only lines.
        let lead = parse(",,\n\nphone_number;first_name\n+15551234567;Ann\n");
        assert_eq!(lead.rows[0].first_name.as_deref(), Some("Ann"));
        // A single column file has no delimiter at all.
        let single = parse("phone_number\n+15551234567\n");
        assert_eq!(phones(&single), vec!["+15551234567"]);
    }

    #[test]
    fn d4_ragged_rows() {
        let parsed = parse(
            "phone_number,first_name,last_name\n\
             +15551234567\n\
             +15551234568,Ann,Lee,extra,cells\n",
        );
        assert_eq!(parsed.total_rows, 2);
        assert_eq!(parsed.rows[0].first_name, None);
        assert_eq!(parsed.rows[0].last_name, None);
        assert_eq!(parsed.rows[1].last_name.as_deref(), Some("Lee"));
        assert!(parsed.rows[1].custom_fields.is_empty());
    }

    #[test]
    fn d4_blank_rows_are_skipped_and_not_counted() {
        let parsed = parse("phone_number,first_name\n , \n,\n\"\",\"\"\n+15551234567,Ann\n");
        assert_eq!(parsed.total_rows, 1);
        assert!(parsed.row_errors.is_empty());
        assert_eq!(row_numbers(&parsed), vec![5]);
    }

    // ---- D5 header and row numbering -----------------------------------------------------

    #[test]
    fn d5_row_numbering_with_blank_lines() {
        let parsed = parse(
            "\n\nphone_number\n\
             +15551234567\n\
             \n\
             bad\n\
             \r\n\
             +15551234568\n",
        );
        // Leading blank lines do not shift numbering: the header is row 1.
        assert_eq!(row_numbers(&parsed), vec![2, 6]);
        assert_eq!(errors(&parsed), vec![(4, "Invalid phone number")]);
        assert_eq!(parsed.total_rows, 3);
    }

    #[test]
    fn d5_multiline_record_is_one_row() {
        let parsed = parse("phone_number,notes\n+15551234567,\"a\nb\nc\"\nbad,x\n");
        assert_eq!(row_numbers(&parsed), vec![2]);
        assert_eq!(errors(&parsed), vec![(3, "Invalid phone number")]);
    }

    #[test]
    fn d5_phone_column_preference_and_case() {
        let parsed = parse(
            " Telephone , MOBILE ,Phone, Phone_Number \n\
             +15550000001,+15550000002,+15550000003,+15550000004\n",
        );
        assert_eq!(parsed.phone_column, "Phone_Number");
        assert_eq!(phones(&parsed), vec!["+15550000004"]);
        // The other phone-like columns are custom fields under their trimmed names.
        assert_eq!(parsed.custom_columns, vec!["Telephone", "MOBILE", "Phone"]);
        assert_eq!(parsed.rows[0].custom_fields["MOBILE"], "+15550000002");

        let mobile = parse("telephone,mobile\n+15550000001,+15550000002\n");
        assert_eq!(mobile.phone_column, "mobile");
        assert_eq!(phones(&mobile), vec!["+15550000002"]);
    }

    #[test]
    fn d5_known_fields_case_insensitive() {
        let parsed =
            parse("PHONE_NUMBER, First_Name ,LAST_NAME,Email\n+15551234567, Ann , Lee , a@b.co \n");
        let row = &parsed.rows[0];
        assert_eq!(row.first_name.as_deref(), Some("Ann"));
        assert_eq!(row.last_name.as_deref(), Some("Lee"));
        assert_eq!(row.email.as_deref(), Some("a@b.co"));
        assert!(row.custom_fields.is_empty());
        assert_eq!(
            parsed.headers,
            vec!["PHONE_NUMBER", "First_Name", "LAST_NAME", "Email"]
        );
    }

    // ---- D6 per row ----------------------------------------------------------------------

    #[test]
    fn d6_rows_are_normalised_and_errors_carry_the_raw_cell() {
        let parsed = parse(
            "phone_number\n\
             (555) 123-4567\n\
             \"0044 20 7123 4567\"\n\
             ,\n\
             123456\n\
             0123456789\n\
             555-CALL-NOW\n",
        );
        assert_eq!(phones(&parsed), vec!["+15551234567", "+442071234567"]);
        assert_eq!(parsed.rows[0].raw_phone, "(555) 123-4567");
        assert_eq!(
            errors(&parsed),
            vec![
                (5, "Phone number too short (minimum 7 digits)"),
                (6, "Ambiguous national number; include the country code"),
                (7, "Invalid phone number"),
            ]
        );
        assert_eq!(parsed.row_errors[2].phone.as_deref(), Some("555-CALL-NOW"));
        // Row 4 (",") is blank as a whole, so it is skipped, not "Missing phone_number".
        assert_eq!(parsed.total_rows, 5);
    }

    #[test]
    fn d6_missing_phone_has_no_phone_in_error() {
        let parsed = parse("phone_number,first_name\n,Ann\n");
        assert_eq!(errors(&parsed), vec![(2, "Missing phone_number")]);
        assert_eq!(parsed.row_errors[0].phone, None);
        let json = serde_json::to_value(&parsed.row_errors[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"row": 2, "error": "Missing phone_number"})
        );
    }

    // ---- D7 field rules ------------------------------------------------------------------

    #[test]
    fn d7_field_rules() {
        let ok_name = "é".repeat(100); // 200 bytes, 100 chars: allowed
        let long_name = "a".repeat(101);
        let long_email = format!("{}@example.com", "a".repeat(243)); // 255 chars: allowed
        let too_long_email = format!("{}@example.com", "a".repeat(244));
        let custom_ok = "x".repeat(1000);
        let custom_long = "x".repeat(1001);
        let file = format!(
            "phone_number,first_name,last_name,email,Notes\n\
             +15550000002,{ok_name},,{long_email},{custom_ok}\n\
             +15550000003,{long_name},,,\n\
             +15550000004,,{long_name},,\n\
             +15550000005,,,not-an-email,\n\
             +15550000006,,,{too_long_email},\n\
             +15550000007,,,,{custom_long}\n\
             +15550000008,,, ,\n"
        );
        let parsed = parse(&file);
        assert_eq!(row_numbers(&parsed), vec![2, 8]);
        assert_eq!(parsed.rows[0].first_name.as_deref(), Some(ok_name.as_str()));
        assert_eq!(parsed.rows[0].email.as_deref(), Some(long_email.as_str()));
        assert_eq!(parsed.rows[1].email, None);
        assert_eq!(
            errors(&parsed),
            vec![
                (3, "Value too long in column first_name"),
                (4, "Value too long in column last_name"),
                (5, "Invalid email"),
                (6, "Invalid email"),
                (7, "Value too long in column Notes"),
            ]
        );
        assert_eq!(parsed.row_errors[0].phone.as_deref(), Some("+15550000003"));
    }

    #[test]
    fn clients_know_name_and_company() {
        let file =
            "phone_number,name,company,first_name,tier\n+15551234567,Ann Lee,Acme,Ann,gold\n";
        let clients = parse_csv(
            file.as_bytes(),
            ImportTarget::Clients,
            &ImportLimits::default(),
        )
        .unwrap();
        let row = &clients.rows[0];
        assert_eq!(row.name.as_deref(), Some("Ann Lee"));
        assert_eq!(row.company.as_deref(), Some("Acme"));
        assert_eq!(clients.custom_columns, vec!["tier"]);

        let leads = parse(file);
        let row = &leads.rows[0];
        assert_eq!((row.name.as_ref(), row.company.as_ref()), (None, None));
        assert_eq!(leads.custom_columns, vec!["name", "company", "tier"]);
        assert_eq!(row.custom_fields["company"], "Acme");
    }

    // ---- D8 in-file duplicates -----------------------------------------------------------

    #[test]
    fn d8_first_occurrence_wins() {
        let parsed = parse(
            "phone_number,first_name\n\
             5551234567,First\n\
             +1 (555) 123-4567,Second\n\
             +15550000000,Other\n\
             001 555 123 4567,Third\n",
        );
        assert_eq!(row_numbers(&parsed), vec![2, 4]);
        assert_eq!(parsed.rows[0].first_name.as_deref(), Some("First"));
        assert_eq!(parsed.duplicates_skipped, 2);
        assert_eq!(parsed.total_rows, 4);
    }

    #[test]
    fn d8_first_occurrence_claims_the_number_even_if_it_fails() {
        let parsed = parse("phone_number,email\n5551234567,bad\n5551234567,a@b.co\n");
        assert_eq!(errors(&parsed), vec![(2, "Invalid email")]);
        assert_eq!(parsed.duplicates_skipped, 1);
        assert!(parsed.rows.is_empty());
    }

    // ---- D10 custom fields and hostile cells ---------------------------------------------

    #[test]
    fn d10_custom_fields() {
        let parsed = parse(
            "phone_number, Favourite Colour ,city,Email\n\
             +15551234567, blue ,,\n\
             +15551234568,,,\n",
        );
        assert_eq!(parsed.custom_columns, vec!["Favourite Colour", "city"]);
        let first = &parsed.rows[0].custom_fields;
        assert_eq!(first.len(), 1);
        assert_eq!(first["Favourite Colour"], "blue");
        assert!(parsed.rows[1].custom_fields.is_empty());
        assert_eq!(
            serde_json::Value::Object(parsed.rows[0].custom_fields_json()),
            serde_json::json!({"Favourite Colour": "blue"})
        );
    }

    #[test]
    fn formula_cells_are_plain_text() {
        let parsed = parse(
            "phone_number,first_name,notes\n\
             +15551234567,=cmd|' /C calc'!A0,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n\
             =1+2,@SUM(A1),+x\n",
        );
        let row = &parsed.rows[0];
        assert_eq!(row.first_name.as_deref(), Some("=cmd|' /C calc'!A0"));
        assert_eq!(row.custom_fields["notes"], "=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(errors(&parsed), vec![(3, "Invalid phone number")]);
        assert_eq!(parsed.row_errors[0].phone.as_deref(), Some("=1+2"));
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let cases: Vec<Vec<u8>> = vec![
            b"\"".to_vec(),
            b"phone_number\n\"".to_vec(),
            b"phone_number\n\"+15551234567".to_vec(),
            b"\"phone_number\n+15551234567\n".to_vec(),
            b"phone_number,\"a\"\"\n\"\"\"\"\n".to_vec(),
            b"phone_number\r\r\r\n\n\r".to_vec(),
            b"\xFF\xFF\xFF\xFF".to_vec(),
            b"\xFE\xFF\x00".to_vec(),
            b"\xC3\x28phone_number\n".to_vec(),
            vec![b'"'; 10_000],
            vec![b','; 10_000],
            [b"phone_number\n".to_vec(), vec![b'\n'; 100_000]].concat(),
            [b"phone_number\n\"".to_vec(), vec![b'x'; 1_000_000]].concat(),
            [
                "phone_number,n\n+15551234567,".as_bytes(),
                "é".repeat(5_000).as_bytes(),
            ]
            .concat(),
        ];
        for case in &cases {
            // Either outcome is fine; what matters is no panic and a balanced result.
            if let Ok(parsed) = parse_csv(case, ImportTarget::Leads, &ImportLimits::default()) {
                let (rows, report) = parsed.into_rows_and_report();
                let mut report = report;
                for _ in &rows {
                    report.record_imported();
                }
                assert!(report.is_balanced());
            }
        }
        // An unterminated quote swallows the rest of the file into one cell.
        let parsed = parse("phone_number,notes\n+15551234567,\"open\n+15550000000,x\n");
        assert_eq!(parsed.total_rows, 1);
        // (Values are trimmed, so the final line break goes.)
        assert_eq!(
            parsed.rows[0].custom_fields["notes"],
            "open\n+15550000000,x"
        );
        // Hostile phone cells are echoed back truncated.
        let long = format!("phone_number\n{}\n", "x".repeat(5_000));
        let parsed = parse(&long);
        assert_eq!(
            parsed.row_errors[0].phone.as_ref().map(String::len),
            Some(MAX_ECHOED_PHONE_CHARS)
        );
    }

    // ---- D11 report ----------------------------------------------------------------------

    #[test]
    fn d11_report_accounting_and_error_cap() {
        let mut file = String::from("phone_number\n");
        for i in 0..150 {
            file.push_str(&format!("bad{i}\n"));
        }
        for i in 0..10u64 {
            file.push_str(&format!("+1555000{i:04}\n"));
        }
        file.push_str("+15550000000\n"); // in-file duplicate
        let parsed = parse(&file);
        assert_eq!(parsed.total_rows, 161);
        let (rows, mut report) = parsed.into_rows_and_report();
        assert_eq!(rows.len(), 10);
        // What the store might decide: one DNC hit (reported out of row order), one campaign
        // duplicate, one revival, the rest new.
        report.add_error(
            rows[9].row,
            RowError::ON_DNC_LIST,
            Some(rows[9].raw_phone.clone()),
        );
        report.record_duplicate();
        report.record_revived();
        for _ in 0..7 {
            report.record_imported();
        }
        let report = report.finish(ImportLimits::default().max_errors);
        assert!(report.is_balanced());
        assert_eq!(report.total_rows, 161);
        assert_eq!(report.imported, 8);
        assert_eq!(report.revived, 1);
        assert_eq!(report.failed, 151);
        assert_eq!(report.duplicates_skipped, 2);
        assert_eq!(report.errors.len(), 100);
        assert!(report.errors_truncated);
        assert!(report.errors.windows(2).all(|w| w[0].row < w[1].row));
        assert_eq!(report.errors[0].row, 2);
        assert_eq!(report.errors[99].row, 101);

        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "total_rows",
            "imported",
            "revived",
            "failed",
            "duplicates_skipped",
            "errors",
            "errors_truncated",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn d11_report_not_truncated_at_exactly_the_cap() {
        let mut report = ImportReport::new(100);
        for row in (2..102).rev() {
            report.add_error(row, "Invalid phone number", None);
        }
        let report = report.finish(100);
        assert!(!report.errors_truncated);
        assert_eq!(report.errors.len(), 100);
        assert_eq!(report.errors[0].row, 2);
    }

    #[test]
    fn limits_default_and_deserialize() {
        let d = ImportLimits::default();
        assert_eq!(
            (d.max_bytes, d.max_rows, d.max_errors, d.max_custom_columns),
            (10 * 1024 * 1024, 50_000, 100, 50)
        );
        let partial: ImportLimits = serde_json::from_str(r#"{"max_rows": 10}"#).unwrap();
        assert_eq!(partial.max_rows, 10);
        assert_eq!(partial.max_errors, 100);
    }

    #[test]
    fn custom_limits_shape_messages() {
        let limits = ImportLimits {
            max_rows: 2,
            max_custom_columns: 1,
            ..ImportLimits::default()
        };
        let rows = b"phone_number\n+15550000001\n+15550000002\n+15550000003\n";
        assert_eq!(
            parse_csv(rows, ImportTarget::Leads, &limits)
                .unwrap_err()
                .to_string(),
            "CSV has too many rows (max 2)"
        );
        let cols = b"phone_number,a,b\n";
        assert_eq!(
            parse_csv(cols, ImportTarget::Leads, &limits)
                .unwrap_err()
                .to_string(),
            "Too many columns (max 1 custom fields)"
        );
    }

    #[test]
    fn large_file_parses() {
        // A smoke test, not a timed one (timings on shared machines are noise): 100 000 rows
        // in release (`cargo test --release … large_file -- --nocapture` prints the time),
        // fewer in debug builds to keep the suite fast.
        let n: u64 = if cfg!(debug_assertions) {
            20_000
        } else {
            100_000
        };
        let mut file = String::from("phone_number,first_name,last_name,email,city\n");
        for i in 0..n {
            file.push_str(&format!(
                "+1555{i:07},First{i},Last,user{i}@example.com,\"Town, {i}\"\n"
            ));
        }
        let limits = ImportLimits {
            max_rows: 100_000,
            max_bytes: 64 * MIB,
            ..ImportLimits::default()
        };
        let start = std::time::Instant::now();
        let parsed = parse_csv(file.as_bytes(), ImportTarget::Leads, &limits).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(parsed.rows.len() as u64, n);
        assert_eq!(
            parsed.rows.last().unwrap().custom_fields["city"],
            format!("Town, {}", n - 1)
        );
        eprintln!("parsed {n} rows ({} bytes) in {elapsed:?}", file.len());
    }
}
