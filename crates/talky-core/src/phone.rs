//! Phone numbers in E.164 form (behaviour.md D6) and the e-mail shape check (D7).
//!
//! Every phone number that enters Talky — CSV rows, single contacts, the DNC list, caller
//! IDs — goes through [`E164::parse`], so one normalisation rule decides what "the same
//! number" means everywhere (duplicate detection, DNC matching, carrier `to`/`from`).
//! Holding an [`E164`] is proof the value was normalised; there is no other constructor.
//!
//! [`validate_email`] lives here too because it is the other tiny, dependency-free shape
//! check shared by the CSV importer and [`crate::email::Email`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Fewest digits (after `00` → `+` rewriting) a number may have.
pub const MIN_DIGITS: usize = 7;
/// Most digits an E.164 number may have (the ITU limit).
pub const MAX_DIGITS: usize = 15;

/// Why a phone number could not be normalised. The `Display` strings are the exact
/// user-facing messages from behaviour.md D6 (CSV row errors, `Invalid phone number: <reason>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PhoneError {
    /// The value was empty after trimming.
    #[error("Missing phone_number")]
    Missing,
    /// A character outside the allowed set, a misplaced `+`, or a number starting with `0`
    /// after the `+`.
    #[error("Invalid phone number")]
    Invalid,
    /// Fewer than [`MIN_DIGITS`] digits.
    #[error("Phone number too short (minimum 7 digits)")]
    TooShort,
    /// More than [`MAX_DIGITS`] digits.
    #[error("Phone number too long (maximum 15 digits)")]
    TooLong,
    /// Ten digits without `+` starting with `0` or `1`: no country can be inferred safely.
    #[error("Ambiguous national number; include the country code")]
    Ambiguous,
}

/// A phone number normalised to E.164: `+` followed by 7–15 ASCII digits, the first of
/// which is not `0`.
///
/// Serialises as that string. Deserialising runs [`E164::parse`], so any input the parser
/// accepts is accepted and normalised (parsing is idempotent on canonical values, so stored
/// numbers round-trip unchanged) and anything else is a deserialisation error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// Normalises a user-supplied phone number (behaviour.md D6):
    ///
    /// 1. trim; empty → [`PhoneError::Missing`]; only digits, space, `-`, `.`, `(`, `)`, `/`
    ///    and one leading `+` are allowed, anything else → [`PhoneError::Invalid`];
    /// 2. keep the digits; without `+`, a leading `00` is dropped and read as `+`;
    /// 3. fewer than 7 digits → [`PhoneError::TooShort`], more than 15 → [`PhoneError::TooLong`];
    /// 4. with `+` the result is `+digits`; without it, 10 digits starting 2–9 get `+1`
    ///    (North America), 10 digits starting `0`/`1` → [`PhoneError::Ambiguous`], any other
    ///    length is taken as already international;
    /// 5. a result whose first digit is `0` → [`PhoneError::Invalid`].
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(PhoneError::Missing);
        }
        let (mut plus, rest) = match s.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, s),
        };

        // Keep only the first few digits: anything longer is rejected anyway, and this
        // keeps hostile multi-megabyte cells from costing an allocation.
        let mut buf = [0u8; MAX_DIGITS + 2];
        let mut count = 0usize;
        for b in rest.bytes() {
            match b {
                b'0'..=b'9' => {
                    if count < buf.len() {
                        buf[count] = b;
                    }
                    count += 1;
                }
                b' ' | b'-' | b'.' | b'(' | b')' | b'/' => {}
                _ => return Err(PhoneError::Invalid),
            }
        }

        let mut start = 0usize;
        if !plus && count >= 2 && buf[0] == b'0' && buf[1] == b'0' {
            plus = true;
            start = 2;
            count -= 2;
        }
        if count < MIN_DIGITS {
            return Err(PhoneError::TooShort);
        }
        if count > MAX_DIGITS {
            return Err(PhoneError::TooLong);
        }
        let digits = &buf[start..start + count];

        let mut out = String::with_capacity(MAX_DIGITS + 2);
        out.push('+');
        if !plus && count == 10 {
            match digits[0] {
                b'2'..=b'9' => out.push('1'),
                _ => return Err(PhoneError::Ambiguous),
            }
        }
        // `digits` holds only ASCII digits, so each byte is its own char.
        out.extend(digits.iter().map(|&b| char::from(b)));

        if out.as_bytes()[1] == b'0' {
            return Err(PhoneError::Invalid);
        }
        Ok(Self(out))
    }

    /// The number with its leading `+`, e.g. `+15551234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+` (the form Vonage's `to`/`from` expect, protocols.md).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// The number as a `u64` (the digits read in base 10). Injective because an E.164
    /// number never starts with `0` and has at most 15 digits, so it is a cheap,
    /// allocation-free key for duplicate detection.
    pub fn as_u64(&self) -> u64 {
        self.digits()
            .bytes()
            .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'))
    }

    /// Consumes the value, returning the `+digits` string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<E164> for String {
    fn from(value: E164) -> Self {
        value.0
    }
}

impl FromStr for E164 {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for E164 {
    type Error = PhoneError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = E164;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a phone number string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<E164, E> {
                E164::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

/// Characters that may not appear anywhere in an address we accept. Quoted local parts
/// and address literals are legal in RFC 5321 but never seen in lead lists, and
/// rejecting them keeps the check simple and the stored values unambiguous.
fn is_forbidden_email_char(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '<' | '>' | '(' | ')' | '[' | ']' | '\\' | ',' | ';' | ':' | '"'
        )
}

/// Whether `s` has the shape `local@domain.tld` (behaviour.md D7): exactly one `@`, a
/// non-empty local part without leading, trailing or doubled dots, a domain of at least
/// two non-empty dot-separated labels that neither start nor end with `-`, and a top-level
/// label of at least two characters that is not all digits. No whitespace, control or
/// RFC 5322 special characters anywhere.
///
/// This checks form only: callers apply their own length limits and case normalisation.
pub fn validate_email(s: &str) -> bool {
    if s.chars().any(is_forbidden_email_char) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    if domain.contains('@') {
        return false;
    }
    if local.is_empty() || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    let mut labels = 0usize;
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.chars().count() >= 2 && !last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        E164::parse(input)
            .unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"))
            .into_string()
    }

    fn err(input: &str) -> PhoneError {
        E164::parse(input).expect_err(input)
    }

    #[test]
    fn d6_north_american_examples() {
        for input in [
            "5551234567",
            "15551234567",
            "(555) 123-4567",
            "555.123.4567",
        ] {
            assert_eq!(ok(input), "+15551234567", "{input}");
        }
    }

    #[test]
    fn d6_international_examples() {
        for input in ["+442071234567", "+44 20 7123 4567", "0044 20 7123 4567"] {
            assert_eq!(ok(input), "+442071234567", "{input}");
        }
    }

    #[test]
    fn d6_error_examples() {
        assert_eq!(err(""), PhoneError::Missing);
        assert_eq!(err("123456"), PhoneError::TooShort);
        assert_eq!(err("0123456789"), PhoneError::Ambiguous);
        assert_eq!(err("+0123456789"), PhoneError::Invalid);
        assert_eq!(err("555-CALL-NOW"), PhoneError::Invalid);
    }

    #[test]
    fn d6_messages_are_exact() {
        assert_eq!(PhoneError::Missing.to_string(), "Missing phone_number");
        assert_eq!(PhoneError::Invalid.to_string(), "Invalid phone number");
        assert_eq!(
            PhoneError::TooShort.to_string(),
            "Phone number too short (minimum 7 digits)"
        );
        assert_eq!(
            PhoneError::TooLong.to_string(),
            "Phone number too long (maximum 15 digits)"
        );
        assert_eq!(
            PhoneError::Ambiguous.to_string(),
            "Ambiguous national number; include the country code"
        );
    }

    #[test]
    fn trimming_and_blank_input() {
        assert_eq!(ok("  +1 555 123 4567\t"), "+15551234567");
        assert_eq!(err("   "), PhoneError::Missing);
        assert_eq!(err("\t\r\n"), PhoneError::Missing);
    }

    #[test]
    fn allowed_separators() {
        assert_eq!(ok("+1/555/123/4567"), "+15551234567");
        assert_eq!(ok("+1 (555) 123-45.67"), "+15551234567");
    }

    #[test]
    fn plus_rules() {
        // Only one, leading.
        assert_eq!(err("++15551234567"), PhoneError::Invalid);
        assert_eq!(err("1555+1234567"), PhoneError::Invalid);
        assert_eq!(err("+"), PhoneError::TooShort);
        // `+00…` is not rewritten: the `+` already says "international".
        assert_eq!(err("+0044 20 7123 4567"), PhoneError::Invalid);
    }

    #[test]
    fn double_zero_prefix() {
        assert_eq!(ok("001 555 123 4567"), "+15551234567");
        // The `00` does not count towards the digit minimum.
        assert_eq!(err("00123456"), PhoneError::TooShort);
        assert_eq!(err("00"), PhoneError::TooShort);
        // Rewritten numbers are international: ten digits are not given a `+1`.
        assert_eq!(ok("005551234567"), "+5551234567");
        // A third zero is still a leading zero after the `+`.
        assert_eq!(err("000441234567"), PhoneError::Invalid);
    }

    #[test]
    fn digit_count_limits() {
        assert_eq!(ok("+1234567"), "+1234567");
        assert_eq!(err("+123456"), PhoneError::TooShort);
        assert_eq!(ok("+123456789012345"), "+123456789012345");
        assert_eq!(err("+1234567890123456"), PhoneError::TooLong);
        assert_eq!(err(&"9".repeat(1_000_000)), PhoneError::TooLong);
        // Characters are checked before lengths.
        assert_eq!(err("12x"), PhoneError::Invalid);
    }

    #[test]
    fn national_lengths() {
        assert_eq!(err("1555123456"), PhoneError::Ambiguous);
        assert_eq!(ok("2125550100"), "+12125550100");
        // 11 digits starting with 1 and other lengths are read as international.
        assert_eq!(ok("12125550100"), "+12125550100");
        assert_eq!(ok("442071234567"), "+442071234567");
        assert_eq!(ok("4420712"), "+4420712");
        // ...unless that makes them start with 0.
        assert_eq!(err("0207123456789"), PhoneError::Invalid);
        assert_eq!(err("0123456"), PhoneError::Invalid);
    }

    #[test]
    fn hostile_characters() {
        for input in [
            "=cmd()",
            "+1555\u{0}1234567",
            "１５５５１２３４５６７", // full-width digits
            "+1\u{a0}555 123 4567",   // no-break space
            "5551234567;",
            "tel:+15551234567",
            "+1 555 123 4567 ext 2",
        ] {
            assert_eq!(err(input), PhoneError::Invalid, "{input:?}");
        }
    }

    #[test]
    fn accessors_and_traits() {
        let p = E164::parse("+44 20 7123 4567").unwrap();
        assert_eq!(p.as_str(), "+442071234567");
        assert_eq!(p.digits(), "442071234567");
        assert_eq!(p.as_u64(), 442_071_234_567);
        assert_eq!(p.to_string(), "+442071234567");
        assert_eq!(
            "5551234567".parse::<E164>().unwrap().as_str(),
            "+15551234567"
        );
        assert_eq!(E164::try_from("x"), Err(PhoneError::Invalid));
        assert_eq!(String::from(p), "+442071234567");
    }

    #[test]
    fn parse_is_idempotent_on_its_output() {
        for input in [
            "5551234567",
            "0044 20 7123 4567",
            "+1234567",
            "+999999999999999",
        ] {
            let once = E164::parse(input).unwrap();
            assert_eq!(E164::parse(once.as_str()).unwrap(), once);
        }
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let p = E164::parse("5551234567").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"+15551234567\"");
        let back: E164 = serde_json::from_str("\"+15551234567\"").unwrap();
        assert_eq!(back, p);
        let normalised: E164 = serde_json::from_str("\"(555) 123-4567\"").unwrap();
        assert_eq!(normalised, p);
        let bad = serde_json::from_str::<E164>("\"555-CALL-NOW\"").unwrap_err();
        assert!(bad.to_string().contains("Invalid phone number"), "{bad}");
        assert!(serde_json::from_str::<E164>("15551234567").is_err());
    }

    #[test]
    fn email_shapes() {
        for good in [
            "a@b.co",
            "john.doe+tag@example.com",
            "x@mail.example.org",
            "ünïcode@exämple.de",
            "a_b-c@sub-domain.example.io",
            "a@xn--bcher-kva.example",
        ] {
            assert!(validate_email(good), "{good}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@b.",
            "a@.com",
            "a@b..com",
            "a@b.c",
            "a@1.2.3.4",
            "a@@b.com",
            "a@b@c.com",
            "a b@c.com",
            "a@b .com",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b-.com",
            "<a@b.com>",
            "a@b.com\n",
            "\"a\"@b.com",
            "=HYPERLINK(\"x\")@b.com",
        ] {
            assert!(!validate_email(bad), "{bad:?}");
        }
    }
}
