//! Contacts: CSV import (D1–D12) including hostile files, single add / list / delete
//! (D13–D14), `/contacts/bulk` into campaigns or clients, and the DNC list (E19).

use crate::campaigns::{create_campaign, tenant_of, total_jobs};
use crate::for_each_engine;
use crate::helpers::{json, TestApp};
use serde_json::{json, Value};
use talky_core::ids::{CampaignId, LeadId};

const BOUNDARY: &str = "talky-test-boundary-6f1c0d0e9b7a4c2e";

/// One part of a multipart form.
pub struct Part<'a> {
    pub name: &'a str,
    pub filename: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub data: &'a [u8],
}

impl<'a> Part<'a> {
    pub fn file(filename: &'a str, content_type: &'a str, data: &'a [u8]) -> Self {
        Part {
            name: "file",
            filename: Some(filename),
            content_type: Some(content_type),
            data,
        }
    }
    pub fn text(name: &'a str, value: &'a str) -> Self {
        Part {
            name,
            filename: None,
            content_type: None,
            data: value.as_bytes(),
        }
    }
}

/// A `multipart/form-data` body, built by hand (the test client has no multipart support).
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", p.name);
        if let Some(f) = p.filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = p.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(p.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// POSTs a multipart form.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    token: &str,
    parts: &[Part<'_>],
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(parts))
        .send()
        .await
        .unwrap()
}

/// Uploads `csv` as `leads.csv` (`text/csv`) to a campaign; `query` is appended as is.
pub async fn upload(
    app: &TestApp,
    token: &str,
    campaign: &str,
    query: &str,
    csv: &[u8],
) -> (u16, Value) {
    let path = format!("/api/v1/campaigns/{campaign}/contacts/upload{query}");
    json(
        post_form(
            app,
            &path,
            token,
            &[Part::file("leads.csv", "text/csv", csv)],
        )
        .await,
    )
    .await
}

/// Adds a contact and returns its id.
pub async fn add_contact(app: &TestApp, token: &str, campaign: &str, phone: &str) -> String {
    let (s, v) = json(
        app.post_auth(
            &format!("/api/v1/campaigns/{campaign}/contacts"),
            token,
            json!({"phone_number": phone}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["contact"]["id"].as_str().unwrap().to_string()
}

/// Every non-deleted lead of a campaign (first 100).
pub async fn contacts(app: &TestApp, token: &str, campaign: &str) -> Vec<Value> {
    let (s, v) = json(
        app.get_auth(
            &format!("/api/v1/campaigns/{campaign}/contacts?page_size=100"),
            token,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

fn by_phone<'a>(leads: &'a [Value], phone: &str) -> &'a Value {
    leads
        .iter()
        .find(|l| l["phone_number"] == phone)
        .unwrap_or_else(|| panic!("{phone} not in {leads:?}"))
}

fn assert_balanced(v: &Value) {
    let n = |k: &str| v[k].as_u64().unwrap();
    assert_eq!(
        n("total_rows"),
        n("imported") + n("failed") + n("duplicates_skipped"),
        "{v}"
    );
    assert!(n("revived") <= n("imported"));
}

#[tokio::test]
async fn csv_file_rejections_write_nothing() {
    for_each_engine!(|app| {
        let tok = app.register_owner("reject@example.com", "Reject").await;
        let id = create_campaign(&app, &tok, "Reject").await;
        let path = format!("/api/v1/campaigns/{id}/contacts/upload");

        let mut custom = String::from("phone_number");
        for i in 0..51 {
            custom.push_str(&format!(",c{i}"));
        }
        custom.push_str("\n+15550000001\n");
        let mut many = String::from("phone_number\n");
        for i in 0..50_001 {
            many.push_str(&format!("+1555{i:07}\n"));
        }
        let mut big = b"phone_number,notes\n+15550000001,".to_vec();
        big.resize(10 * 1024 * 1024 + 1, b'x');

        let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
            (
                "leads.txt",
                "text/plain",
                b"phone_number\n+15550000001\n".to_vec(),
                "Only CSV files are supported",
            ),
            (
                "leads",
                "application/octet-stream",
                b"phone_number\n+15550000001\n".to_vec(),
                "Only CSV files are supported",
            ),
            ("leads.csv", "text/csv", Vec::new(), "CSV file is empty"),
            (
                "leads.csv",
                "text/csv",
                b"\r\n  \n,,\n".to_vec(),
                "CSV file is empty",
            ),
            (
                "leads.csv",
                "text/csv",
                b"phone_number\n+1555\x000000001\n".to_vec(),
                "Unable to decode CSV file. Please use UTF-8 encoding.",
            ),
            (
                "leads.csv",
                "text/csv",
                b"name, email \nx,y\n".to_vec(),
                "CSV must have 'phone_number' column. Found: name, email",
            ),
            (
                "leads.csv",
                "text/csv",
                b"phone,first_name,Phone\n".to_vec(),
                "Duplicate column: Phone",
            ),
            (
                "leads.csv",
                "text/csv",
                custom.into_bytes(),
                "Too many columns (max 50 custom fields)",
            ),
            (
                "leads.csv",
                "text/csv",
                many.into_bytes(),
                "CSV has too many rows (max 50000)",
            ),
            (
                "leads.csv",
                "text/csv",
                big,
                "CSV file too large (max 10 MiB)",
            ),
        ];
        for (name, ct, data, detail) in &cases {
            let (s, v) =
                json(post_form(&app, &path, &tok, &[Part::file(name, ct, data)]).await).await;
            assert_eq!(
                (s, v["detail"].as_str()),
                (400, Some(*detail)),
                "{name} {ct} ({} bytes)",
                data.len()
            );
            assert!(v["code"].is_string());
        }
        // The same through /contacts/bulk, into a campaign and into clients.
        for (name, ct, data, detail) in cases.iter().take(3) {
            for extra in [Some(id.as_str()), None] {
                let mut parts = vec![Part::file(name, ct, data)];
                if let Some(c) = extra {
                    parts.push(Part::text("campaign_id", c));
                }
                let (s, v) =
                    json(post_form(&app, "/api/v1/contacts/bulk", &tok, &parts).await).await;
                assert_eq!((s, v["detail"].as_str()), (400, Some(*detail)));
            }
        }

        // Schema errors: no file part, an unknown part, two files → 422; not multipart → 415.
        let (s, v) = json(post_form(&app, &path, &tok, &[]).await).await;
        assert_eq!(s, 422, "{v}");
        assert!(v["fields"]["file"].is_string(), "{v}");
        let (s, _) =
            json(post_form(&app, &path, &tok, &[Part::text("campaign_id", &id)]).await).await;
        assert_eq!(s, 422, "campaign_id is not a field of the campaign upload");
        let ok = b"phone_number\n+15550000001\n";
        let (s, _) = json(
            post_form(
                &app,
                &path,
                &tok,
                &[
                    Part::file("a.csv", "text/csv", ok),
                    Part::text("extra", "1"),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        let (s, _) = json(
            post_form(
                &app,
                &path,
                &tok,
                &[
                    Part::file("a.csv", "text/csv", ok),
                    Part::file("b.csv", "text/csv", ok),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        let (s, _) = json(app.post_auth(&path, &tok, json!({"file": "x"})).await).await;
        assert_eq!(s, 415);
        let (s, _) = json(
            app.client
                .post(app.url(&path))
                .bearer_auth(&tok)
                .header("content-type", "multipart/form-data; boundary=zzz")
                .body("garbage")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(s == 400 || s == 422, "{s}");
        let (s, _) = json(
            post_form(
                &app,
                &format!("{path}?skip_duplicates=maybe"),
                &tok,
                &[Part::file("a.csv", "text/csv", ok)],
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);

        assert!(
            contacts(&app, &tok, &id).await.is_empty(),
            "nothing written"
        );
        let tenant = tenant_of(&app, &tok).await;
        assert!(app.store.list_clients(tenant).await.unwrap().is_empty());

        // Accepted names and types (either is enough), BOM/UTF-16/Windows-1252 decoding.
        let (s, v) = json(
            post_form(
                &app,
                &path,
                &tok,
                &[Part::file(
                    "LEADS.CSV",
                    "application/octet-stream",
                    b"\xEF\xBB\xBFphone_number\n+15550000001\n",
                )],
            )
            .await,
        )
        .await;
        assert_eq!((s, v["imported"].as_u64()), (200, Some(1)), "{v}");
        let (s, v) = json(
            post_form(
                &app,
                &path,
                &tok,
                &[Part::file(
                    "export",
                    "text/csv; charset=utf-8",
                    b"phone;first_name\n+15550000002;Ana\n",
                )],
            )
            .await,
        )
        .await;
        assert_eq!((s, v["imported"].as_u64()), (200, Some(1)), "{v}");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "phone_number,first_name\n+15550000003,Zoë\n"
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes()),
            )
            .collect();
        let (s, v) = upload(&app, &tok, &id, "", &utf16).await;
        assert_eq!((s, v["imported"].as_u64()), (200, Some(1)), "{v}");
        let (s, v) = upload(
            &app,
            &tok,
            &id,
            "",
            b"phone_number\tfirst_name\n+15550000004\tJos\xE9\n",
        )
        .await;
        assert_eq!((s, v["imported"].as_u64()), (200, Some(1)), "{v}");
        let leads = contacts(&app, &tok, &id).await;
        assert_eq!(by_phone(&leads, "+15550000002")["first_name"], "Ana");
        assert_eq!(by_phone(&leads, "+15550000003")["first_name"], "Zoë");
        assert_eq!(by_phone(&leads, "+15550000004")["first_name"], "José");

        let (s, v) = upload(&app, &tok, &CampaignId::new().to_string(), "", ok).await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
    });
}

#[tokio::test]
async fn mixed_import_counts_every_row() {
    for_each_engine!(|app| {
        let tok = app.register_owner("mixed@example.com", "Mixed").await;
        let id = create_campaign(&app, &tok, "Mixed").await;
        add_contact(&app, &tok, &id, "+15550000001").await;
        let (s, v) = json(app.post_auth(&format!("/api/v1/campaigns/{id}/contacts"), &tok, json!({"phone_number": "+15550000002", "first_name": "Old", "last_name": "Name", "custom_fields": {"a": "1"}})).await).await;
        assert_eq!(s, 201, "{v}");
        let deleted = v["contact"]["id"].as_str().unwrap().to_string();
        assert_eq!(
            app.delete_auth(&format!("/api/v1/campaigns/{id}/contacts/{deleted}"), &tok)
                .await
                .status(),
            200
        );
        let (s, _) = json(
            app.post_auth("/api/v1/dnc", &tok, json!({"phone_number": "+15550000003"}))
                .await,
        )
        .await;
        assert_eq!(s, 201);

        let csv = "phone_number,first_name,last_name,email,plan\n\
                   +15550000010,Ann,Lee,ann@example.com,gold\n\
                   (555) 000-0011,Bob,,,\n\
                   not-a-phone,X,,,\n\
                   ,NoPhone,,,\n\
                   +1 555 000 0010,Dup,,,\n\
                   ,,,,\n\
                   +15550000001,Existing,,,\n\
                   +15550000002,Revived,,,silver\n\
                   +15550000003,Blocked,,,\n\
                   123456,Short,,,\n\
                   +15550000012,Bad,,not-an-email,\n";
        let (s, v) = upload(&app, &tok, &id, "?skip_duplicates=true", csv.as_bytes()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["total_rows"], 10, "the blank record is not counted");
        assert_eq!(v["imported"], 3);
        assert_eq!(v["revived"], 1);
        assert_eq!(v["failed"], 5);
        assert_eq!(v["duplicates_skipped"], 2);
        assert_eq!(v["errors_truncated"], false);
        assert_balanced(&v);
        assert_eq!(
            v["errors"],
            json!([
                {"row": 4, "error": "Invalid phone number", "phone": "not-a-phone"},
                {"row": 5, "error": "Missing phone_number"},
                {"row": 10, "error": "Number is on the do-not-call list", "phone": "+15550000003"},
                {"row": 11, "error": "Phone number too short (minimum 7 digits)", "phone": "123456"},
                {"row": 12, "error": "Invalid email", "phone": "+15550000012"},
            ])
        );

        let leads = contacts(&app, &tok, &id).await;
        assert_eq!(leads.len(), 4);
        let ann = by_phone(&leads, "+15550000010");
        assert_eq!(
            (
                ann["first_name"].as_str(),
                ann["last_name"].as_str(),
                ann["email"].as_str()
            ),
            (Some("Ann"), Some("Lee"), Some("ann@example.com"))
        );
        assert_eq!(ann["custom_fields"], json!({"plan": "gold"}));
        assert_eq!(ann["status"], "pending");
        assert_eq!(ann["last_call_result"], "pending");
        assert_eq!(ann["call_attempts"], 0);
        let bob = by_phone(&leads, "+15550000011");
        assert!(bob["last_name"].is_null());
        assert_eq!(bob["custom_fields"], json!({}));
        let revived = by_phone(&leads, "+15550000002");
        assert_eq!(revived["id"], deleted.as_str(), "revived in place");
        assert_eq!(revived["status"], "pending");
        assert_eq!(revived["first_name"], "Revived");
        assert_eq!(
            revived["last_name"], "Name",
            "empty CSV cells keep stored values"
        );
        assert_eq!(
            revived["custom_fields"],
            json!({"a": "1", "plan": "silver"})
        );
        assert_eq!(
            by_phone(&leads, "+15550000001")["first_name"],
            Value::Null,
            "the existing lead is untouched"
        );

        // skip_duplicates=false: an existing lead is a row error.
        let (s, v) = upload(
            &app,
            &tok,
            &id,
            "?skip_duplicates=false",
            b"phone\n+15550000001\n+15550000020\n",
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (
                v["imported"].as_u64(),
                v["failed"].as_u64(),
                v["duplicates_skipped"].as_u64()
            ),
            (Some(1), Some(1), Some(0))
        );
        assert_eq!(
            v["errors"],
            json!([{"row": 2, "error": "Phone number already exists in this campaign", "phone": "+15550000001"}])
        );
        assert_balanced(&v);

        // Leads imported into a running campaign get their job in the same transaction.
        let (s, _) = json(
            app.post_auth(&format!("/api/v1/campaigns/{id}/start"), &tok, json!({}))
                .await,
        )
        .await;
        assert_eq!(s, 200);
        let before = total_jobs(&app, &tok, &id).await;
        let (s, v) = upload(
            &app,
            &tok,
            &id,
            "",
            b"phone_number\n+15550000030\n+15550000031\n",
        )
        .await;
        assert_eq!((s, v["imported"].as_u64()), (200, Some(2)));
        assert_eq!(total_jobs(&app, &tok, &id).await, before + 2);

        // The error list stops at 100; `failed` counts them all.
        let mut bad = String::from("phone_number\n");
        for _ in 0..150 {
            bad.push_str("nope\n");
        }
        bad.push_str("+15550000040\n");
        let (s, v) = upload(&app, &tok, &id, "", bad.as_bytes()).await;
        assert_eq!(s, 200);
        assert_eq!(
            (
                v["total_rows"].as_u64(),
                v["failed"].as_u64(),
                v["imported"].as_u64()
            ),
            (Some(151), Some(150), Some(1))
        );
        assert_eq!(v["errors"].as_array().unwrap().len(), 100);
        assert_eq!(v["errors"][0]["row"], 2);
        assert_eq!(v["errors"][99]["row"], 101);
        assert_eq!(v["errors_truncated"], true);
        assert_balanced(&v);
    });
}

#[tokio::test]
async fn hostile_csv_is_stored_as_plain_text_and_never_500s() {
    for_each_engine!(|app| {
        let tok = app.register_owner("hostile@example.com", "Hostile").await;
        let id = create_campaign(&app, &tok, "Hostile").await;

        let csv = "phone_number,first_name,notes,formula\n\
                   \"+1 555 010 0001\",\"O\"\"Brien\",\"line one\nline two\",=cmd()\n\
                   +15550100002,\"=HYPERLINK(\"\"x\"\")\",\"@SUM(1,2)\",+1+1\n\
                   bad,,,\n\
                   \"+15550100003\",\"a,b\",-2+3,\"=1+2\"\"\"\n";
        let (s, v) = upload(&app, &tok, &id, "", csv.as_bytes()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["imported"].as_u64(), v["failed"].as_u64()),
            (Some(3), Some(1)),
            "{v}"
        );
        // Row numbers are record numbers: the embedded newline does not shift them.
        assert_eq!(
            v["errors"],
            json!([{"row": 4, "error": "Invalid phone number", "phone": "bad"}])
        );
        let leads = contacts(&app, &tok, &id).await;
        let a = by_phone(&leads, "+15550100001");
        assert_eq!(a["first_name"], "O\"Brien");
        assert_eq!(
            a["custom_fields"],
            json!({"notes": "line one\nline two", "formula": "=cmd()"})
        );
        let b = by_phone(&leads, "+15550100002");
        assert_eq!(b["first_name"], "=HYPERLINK(\"x\")");
        assert_eq!(
            b["custom_fields"],
            json!({"notes": "@SUM(1,2)", "formula": "+1+1"})
        );
        let c = by_phone(&leads, "+15550100003");
        assert_eq!(c["first_name"], "a,b");
        assert_eq!(
            c["custom_fields"],
            json!({"notes": "-2+3", "formula": "=1+2\""})
        );

        // Odd shapes: each is a clean 200 or 400, never a 5xx.
        let long_phone = format!("phone_number\n{}\n", "9".repeat(100_000));
        let long_cell = format!("phone_number,notes\n+15550100010,{}\n", "y".repeat(5000));
        let odd: Vec<Vec<u8>> = vec![
            b"phone_number\n\"+15550100004".to_vec(),
            b"phone_number\n\"+1555\"0100005\"\n".to_vec(),
            b"phone_number\n".to_vec(),
            b"\"\"\"\n\"\"\"".to_vec(),
            b"\xff\xfe\x00".to_vec(),
            b"\xfe\xff\x00p\x00h\x00o\x00n\x00e\x00\n\x00+\x001\x005\x005\x005\x000\x001\x000\x000\x000\x006\x00\n".to_vec(),
            (0u8..=255).filter(|b| *b != 0).cycle().take(20_000).collect(),
            b"phone_number,a,b\r\n+15550100007,\"x\r\ny\",z\r\n".to_vec(),
            long_phone.into_bytes(),
            long_cell.into_bytes(),
            "phone_number\n\u{202e}+15550100008\n".as_bytes().to_vec(),
        ];
        for (i, data) in odd.iter().enumerate() {
            let (s, v) = upload(&app, &tok, &id, "", data).await;
            assert!(s == 200 || s == 400, "case {i}: {s} {v}");
            if s == 200 {
                assert_balanced(&v);
                for e in v["errors"].as_array().unwrap() {
                    assert!(
                        e["phone"].as_str().map_or(0, |p| p.chars().count()) <= 256,
                        "echo is bounded"
                    );
                }
            }
        }
        // A value over 1000 characters is a row error, not a failure.
        let (_, v) = upload(
            &app,
            &tok,
            &id,
            "",
            format!("phone_number,notes\n+15550100011,{}\n", "z".repeat(1001)).as_bytes(),
        )
        .await;
        assert_eq!(v["errors"][0]["error"], "Value too long in column notes");
    });
}

#[tokio::test]
async fn single_contact_add_list_delete() {
    for_each_engine!(|app| {
        let tok = app.register_owner("single@example.com", "Single").await;
        let id = create_campaign(&app, &tok, "Single").await;
        let url = format!("/api/v1/campaigns/{id}/contacts");

        let (s, v) = json(app.post_auth(&url, &tok, json!({"phone_number": "(555) 123-4567", "first_name": " Ann ", "email": "ann@example.com", "custom_fields": {"plan": "gold", "seats": 3, "vip": true, "skip": null}})).await).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["message"], "Contact added successfully");
        let c = &v["contact"];
        assert_eq!(c["phone_number"], "+15551234567");
        assert_eq!(c["first_name"], "Ann");
        assert_eq!(c["campaign_id"], id);
        assert_eq!(c["status"], "pending");
        assert_eq!(c["last_call_result"], "pending");
        assert_eq!(c["call_attempts"], 0);
        assert_eq!(
            c["custom_fields"],
            json!({"plan": "gold", "seats": 3, "vip": true})
        );
        let ann = c["id"].as_str().unwrap().to_string();

        let (s, v) = json(
            app.post_auth(&url, &tok, json!({"phone_number": "+1 555 123 4567"}))
                .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (
                409,
                Some("Phone number +15551234567 already exists in this campaign")
            )
        );
        let (s, _) = json(
            app.post_auth("/api/v1/dnc", &tok, json!({"phone_number": "+15559990000"}))
                .await,
        )
        .await;
        assert_eq!(s, 201);
        let (s, v) = json(
            app.post_auth(&url, &tok, json!({"phone_number": "555-999-0000"}))
                .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (409, Some("Number is on the do-not-call list"))
        );

        for (body, code, detail) in [
            (
                json!({"phone_number": "555-CALL-NOW"}),
                400,
                Some("Invalid phone number: Invalid phone number"),
            ),
            (
                json!({"phone_number": "0123456789"}),
                400,
                Some("Invalid phone number: Ambiguous national number; include the country code"),
            ),
            (
                json!({"phone_number": "123"}),
                400,
                Some("Invalid phone number: Phone number too short (minimum 7 digits)"),
            ),
            (json!({"phone_number": ""}), 422, None),
            (json!({"phone_number": "   "}), 422, None),
            (json!({}), 422, None),
            (json!({"phone_number": 5551234567u64}), 422, None),
            (
                json!({"phone_number": "+15550001111", "first_name": "x".repeat(101)}),
                422,
                None,
            ),
            (
                json!({"phone_number": "+15550001111", "last_name": "x".repeat(101)}),
                422,
                None,
            ),
            (
                json!({"phone_number": "+15550001111", "email": "not-an-email"}),
                422,
                None,
            ),
            (
                json!({"phone_number": "+15550001111", "custom_fields": {"a": {"b": 1}}}),
                422,
                None,
            ),
            (
                json!({"phone_number": "+15550001111", "custom_fields": {"a": "x".repeat(1001)}}),
                422,
                None,
            ),
            (
                json!({"phone_number": "+15550001111", "status": "dnc"}),
                422,
                None,
            ),
            (
                json!({"phone_number": "+15550001111", "id": ann}),
                422,
                None,
            ),
        ] {
            let (s, v) = json(app.post_auth(&url, &tok, body.clone()).await).await;
            assert_eq!(s, code, "{body}: {v}");
            if let Some(d) = detail {
                assert_eq!(v["detail"], d);
            }
        }
        assert_eq!(
            contacts(&app, &tok, &id).await.len(),
            1,
            "rejected adds write nothing"
        );

        // List: newest first, paging, filters, K3 bounds.
        for n in 1..=3 {
            app.clock.advance(chrono::Duration::seconds(1));
            add_contact(&app, &tok, &id, &format!("+1555200000{n}")).await;
        }
        let (s, v) = json(
            app.get_auth(&format!("{url}?page=1&page_size=2"), &tok)
                .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (
                v["total"].as_i64(),
                v["page"].as_i64(),
                v["page_size"].as_i64()
            ),
            (Some(4), Some(1), Some(2))
        );
        let phones: Vec<_> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["phone_number"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(phones, ["+15552000003", "+15552000002"]);
        let (_, v) = json(
            app.get_auth(&format!("{url}?page=3&page_size=2"), &tok)
                .await,
        )
        .await;
        assert_eq!(
            (v["items"].as_array().unwrap().len(), v["total"].as_i64()),
            (0, Some(4))
        );
        let (_, v) = json(app.get_auth(&url, &tok).await).await;
        assert_eq!(v["page_size"], 50);
        let (_, v) = json(
            app.get_auth(
                &format!("{url}?status=pending&last_call_result=pending"),
                &tok,
            )
            .await,
        )
        .await;
        assert_eq!(v["total"], 4);
        let (_, v) = json(
            app.get_auth(&format!("{url}?status=called&last_call_result="), &tok)
                .await,
        )
        .await;
        assert_eq!(v["total"], 0);
        for q in [
            "page_size=0",
            "page_size=101",
            "page=0",
            "page=-1",
            "status=bogus",
            "last_call_result=bogus",
            "sort=x",
        ] {
            let (s, v) = json(app.get_auth(&format!("{url}?{q}"), &tok).await).await;
            assert_eq!(s, 422, "{q}: {v}");
            assert_eq!(v["code"], "validation_error");
        }

        // Delete: soft delete, cancels the active job, then 404; re-adding revives (200).
        assert_eq!(
            app.post_auth(&format!("/api/v1/campaigns/{id}/start"), &tok, json!({}))
                .await
                .status(),
            200
        );
        let (s, v) = json(app.delete_auth(&format!("{url}/{ann}"), &tok).await).await;
        assert_eq!(
            (s, v),
            (200, json!({"message": "Contact removed successfully"}))
        );
        let (_, v) = json(
            app.get_auth(&format!("/api/v1/campaigns/{id}/jobs?status=skipped"), &tok)
                .await,
        )
        .await;
        assert_eq!(v["total"], 1);
        assert_eq!(v["jobs"][0]["lead_id"], ann.as_str());
        assert_eq!(v["jobs"][0]["last_error"], "lead_deleted");
        assert!(contacts(&app, &tok, &id)
            .await
            .iter()
            .all(|l| l["id"] != ann.as_str()));
        let (s, v) = json(app.delete_auth(&format!("{url}/{ann}"), &tok).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (404, Some("Contact not found in this campaign"))
        );
        let (s, v) = json(
            app.delete_auth(&format!("{url}/{}", LeadId::new()), &tok)
                .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (404, Some("Contact not found in this campaign"))
        );
        let (s, _) = json(app.delete_auth(&format!("{url}/not-a-uuid"), &tok).await).await;
        assert_eq!(s, 404);
        let (s, v) = json(
            app.post_auth(
                &url,
                &tok,
                json!({"phone_number": "+15551234567", "last_name": "Back"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["contact"]["id"], ann.as_str());
        assert_eq!(v["contact"]["first_name"], "Ann");
        assert_eq!(v["contact"]["last_name"], "Back");
        assert_eq!(
            total_jobs(&app, &tok, &id).await,
            5,
            "the revived lead of a running campaign is queued again"
        );

        // Unknown campaign on every contacts route.
        let other = CampaignId::new();
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/campaigns/{other}/contacts"), &tok)
                .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
        let (s, v) = json(
            app.post_auth(
                &format!("/api/v1/campaigns/{other}/contacts"),
                &tok,
                json!({"phone_number": "+15557770000"}),
            )
            .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
        let (s, v) = json(
            app.delete_auth(&format!("/api/v1/campaigns/{other}/contacts/{ann}"), &tok)
                .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
    });
}

#[tokio::test]
async fn bulk_import_into_campaign_or_clients() {
    for_each_engine!(|app| {
        let tok = app.register_owner("bulk@example.com", "Bulk").await;
        let tenant = tenant_of(&app, &tok).await;
        let id = create_campaign(&app, &tok, "Bulk").await;
        let csv = b"phone_number,first_name,last_name,email,company\n+15554000001,John,Doe,john@example.com,Acme Inc\n+15554000002,Jane,Smith,jane@example.com,\n";

        // Without a campaign: the tenant's clients.
        let (s, v) = json(
            post_form(
                &app,
                "/api/v1/contacts/bulk",
                &tok,
                &[
                    Part::file("c.csv", "text/csv", csv),
                    Part::text("campaign_id", ""),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (
                v["total_rows"].as_u64(),
                v["imported"].as_u64(),
                v["failed"].as_u64()
            ),
            (Some(2), Some(2), Some(0))
        );
        let clients = app.store.list_clients(tenant).await.unwrap();
        assert_eq!(clients.len(), 2);
        let john = clients
            .iter()
            .find(|c| c.phone.as_deref() == Some("+15554000001"))
            .unwrap();
        assert_eq!(
            (john.name.as_str(), john.company.as_deref()),
            ("John Doe", Some("Acme Inc"))
        );
        assert!(contacts(&app, &tok, &id).await.is_empty());

        // With campaign_id as a form field, or in the query.
        let (s, v) = json(
            post_form(
                &app,
                "/api/v1/contacts/bulk",
                &tok,
                &[
                    Part::text("campaign_id", &id),
                    Part::file("c.csv", "text/csv", csv),
                ],
            )
            .await,
        )
        .await;
        assert_eq!((s, v["imported"].as_u64()), (200, Some(2)), "{v}");
        let (s, v) = json(
            post_form(
                &app,
                &format!("/api/v1/contacts/bulk?campaign_id={id}&skip_duplicates=true"),
                &tok,
                &[Part::file("c.csv", "text/csv", csv)],
            )
            .await,
        )
        .await;
        assert_eq!(
            (s, v["duplicates_skipped"].as_u64(), v["imported"].as_u64()),
            (200, Some(2), Some(0)),
            "{v}"
        );
        assert_eq!(contacts(&app, &tok, &id).await.len(), 2);
        assert_eq!(app.store.list_clients(tenant).await.unwrap().len(), 2);

        // Bad or unknown campaign ids.
        let (s, _) = json(
            post_form(
                &app,
                "/api/v1/contacts/bulk?campaign_id=nope",
                &tok,
                &[Part::file("c.csv", "text/csv", csv)],
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        let (s, _) = json(
            post_form(
                &app,
                "/api/v1/contacts/bulk",
                &tok,
                &[
                    Part::file("c.csv", "text/csv", csv),
                    Part::text("campaign_id", "nope"),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        let other = CampaignId::new().to_string();
        let (s, _) = json(
            post_form(
                &app,
                &format!("/api/v1/contacts/bulk?campaign_id={id}"),
                &tok,
                &[
                    Part::file("c.csv", "text/csv", csv),
                    Part::text("campaign_id", &other),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(s, 422, "query and form disagree");
        let (s, v) = json(
            post_form(
                &app,
                "/api/v1/contacts/bulk",
                &tok,
                &[
                    Part::file("c.csv", "text/csv", csv),
                    Part::text("campaign_id", &other),
                ],
            )
            .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
        let (s, v) = json(
            post_form(
                &app,
                "/api/v1/contacts/bulk",
                &tok,
                &[Part::text("campaign_id", &id)],
            )
            .await,
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(app.store.list_clients(tenant).await.unwrap().len(), 2);
    });
}

#[tokio::test]
async fn dnc_add_list_delete() {
    for_each_engine!(|app| {
        let tok = app.register_owner("dnc@example.com", "Dnc").await;
        let (s, v) = json(
            app.post_auth(
                "/api/v1/dnc",
                &tok,
                json!({"phone_number": "(555) 222-3333", "reason": " asked "}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["phone_number"], "+15552223333");
        assert_eq!(v["source"], "manual");
        assert_eq!(v["reason"], "asked");
        assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
        let (s, v) = json(
            app.post_auth(
                "/api/v1/dnc",
                &tok,
                json!({"phone_number": "+15552223333", "reason": "again"}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (200, Some("asked")),
            "already listed: the entry is kept"
        );
        app.clock.advance(chrono::Duration::seconds(1));
        let (s, _) = json(
            app.post_auth(
                "/api/v1/dnc",
                &tok,
                json!({"phone_number": "+442071234567"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201);

        for (body, code) in [
            (json!({"phone_number": "555-CALL-NOW"}), 400),
            (json!({"phone_number": ""}), 422),
            (json!({}), 422),
            (
                json!({"phone_number": "+15552224444", "source": "spam"}),
                422,
            ),
            (
                json!({"phone_number": "+15552224444", "reason": "x".repeat(501)}),
                422,
            ),
        ] {
            let (s, v) = json(app.post_auth("/api/v1/dnc", &tok, body.clone()).await).await;
            assert_eq!(s, code, "{body}: {v}");
        }

        let (s, v) = json(app.get_auth("/api/v1/dnc", &tok).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (
                v["total"].as_i64(),
                v["page"].as_i64(),
                v["page_size"].as_i64()
            ),
            (Some(2), Some(1), Some(20))
        );
        assert_eq!(
            v["items"][0]["phone_number"], "+442071234567",
            "newest first"
        );
        let (_, v) = json(app.get_auth("/api/v1/dnc?page=2&page_size=1", &tok).await).await;
        assert_eq!(v["items"][0]["phone_number"], "+15552223333");
        for q in ["page=0", "page_size=0", "page_size=101", "x=1"] {
            let (s, _) = json(app.get_auth(&format!("/api/v1/dnc?{q}"), &tok).await).await;
            assert_eq!(s, 422, "{q}");
        }

        let r = app.delete_auth("/api/v1/dnc/%2B15552223333", &tok).await;
        assert_eq!(r.status(), 204);
        assert!(r.bytes().await.unwrap().is_empty());
        let (s, v) = json(app.delete_auth("/api/v1/dnc/%2B15552223333", &tok).await).await;
        assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
        let (s, _) = json(app.delete_auth("/api/v1/dnc/not-a-number", &tok).await).await;
        assert_eq!(s, 404);
        // Any D6 spelling of a listed number finds it.
        assert_eq!(
            app.delete_auth("/api/v1/dnc/0044%2020%207123%204567", &tok)
                .await
                .status(),
            204
        );
        let (_, v) = json(app.get_auth("/api/v1/dnc", &tok).await).await;
        assert_eq!(v["total"], 0);
    });
}
