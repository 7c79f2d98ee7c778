//! `/recordings` and `/recordings/{id}/stream` (H3, H4): completed-only listing, streaming
//! with HTTP byte ranges (206/416), and the two 404s.

use crate::calls::{at, seed_call, set_clock, tenant_of};
use crate::for_each_engine;
use crate::helpers::{json, TestApp};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use talky_core::ids::{CallId, RecordingId, TenantId};
use talky_core::model::{CallStatus, Outcome};
use talky_core::ports::recording::{recording_key, RecordingStore};
use talky_core::ports::store::{NewRecording, RecordingStatus};
use talky_providers::storage::LocalRecordingStore;

/// Inserts a recording row of `status`; when `data` is given the object is written too.
pub async fn seed_recording(
    app: &TestApp,
    tenant: TenantId,
    call: CallId,
    created: DateTime<Utc>,
    status: RecordingStatus,
    data: Option<&[u8]>,
) -> RecordingId {
    let key = recording_key(&tenant.to_string(), "none", &call.to_string());
    if let Some(d) = data {
        let store = LocalRecordingStore::new(&app.recordings_dir);
        store.put(&key, Bytes::copy_from_slice(d)).await.unwrap();
    }
    let mut r = NewRecording::new(call, key, created);
    r.status = status;
    r.duration_seconds = 42;
    r.file_size_bytes = data.map(|d| d.len() as i64).unwrap_or(0);
    app.store.insert_recording(tenant, r).await.unwrap()
}

/// Deterministic audio-ish bytes.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

async fn get_range(
    app: &TestApp,
    path: &str,
    token: &str,
    range: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.get(app.url(path)).bearer_auth(token);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn recordings_list_only_completed_newest_first() {
    for_each_engine!(|app| {
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let token = app.register_owner("rec@example.com", "Rec").await;
        let tenant = tenant_of(&app, &token).await;
        let call_a = seed_call(
            &app,
            tenant,
            at("2025-06-17T10:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            42,
        )
        .await;
        let call_b = seed_call(
            &app,
            tenant,
            at("2025-06-17T11:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            42,
        )
        .await;
        let call_c = seed_call(
            &app,
            tenant,
            at("2025-06-17T12:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            42,
        )
        .await;
        let call_d = seed_call(
            &app,
            tenant,
            at("2025-06-17T13:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            42,
        )
        .await;
        let ra = seed_recording(
            &app,
            tenant,
            call_a,
            at("2025-06-17T10:05:00Z"),
            RecordingStatus::Completed,
            Some(b"RIFF"),
        )
        .await;
        let rb = seed_recording(
            &app,
            tenant,
            call_b,
            at("2025-06-17T11:05:00Z"),
            RecordingStatus::Completed,
            Some(b"RIFF"),
        )
        .await;
        seed_recording(
            &app,
            tenant,
            call_c,
            at("2025-06-17T12:05:00Z"),
            RecordingStatus::Pending,
            None,
        )
        .await;
        seed_recording(
            &app,
            tenant,
            call_d,
            at("2025-06-17T13:05:00Z"),
            RecordingStatus::Discarded,
            None,
        )
        .await;
        let failed = seed_recording(
            &app,
            tenant,
            call_d,
            at("2025-06-17T13:06:00Z"),
            RecordingStatus::Pending,
            None,
        )
        .await;
        app.store
            .update_recording(
                tenant,
                failed,
                talky_core::ports::store::RecordingUpdate {
                    status: RecordingStatus::Failed,
                    file_size_bytes: None,
                    duration_seconds: None,
                },
            )
            .await
            .unwrap();

        let (s, v) = json(app.get_auth("/api/v1/recordings", &token).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v,
            serde_json::json!({
                "items": [
                    {"id": rb.to_string(), "call_id": call_b.to_string(), "created_at": "2025-06-17T11:05:00Z", "duration_seconds": 42},
                    {"id": ra.to_string(), "call_id": call_a.to_string(), "created_at": "2025-06-17T10:05:00Z", "duration_seconds": 42},
                ],
                "page": 1,
                "page_size": 20,
                "total": 2,
            })
        );
        // The call detail links its recording.
        let (_, d) = json(
            app.get_auth(&format!("/api/v1/calls/{call_a}"), &token)
                .await,
        )
        .await;
        assert_eq!(d["recording_id"], ra.to_string());

        let (_, v) = json(
            app.get_auth(&format!("/api/v1/recordings?call_id={call_a}"), &token)
                .await,
        )
        .await;
        assert_eq!(
            (v["total"].as_i64(), v["items"][0]["id"].as_str()),
            (Some(1), Some(ra.to_string().as_str()))
        );
        let (_, v) = json(
            app.get_auth(&format!("/api/v1/recordings?call_id={call_c}"), &token)
                .await,
        )
        .await;
        assert_eq!(v["total"], 0, "pending recordings are not listed");
        let (_, v) = json(
            app.get_auth("/api/v1/recordings?page=2&page_size=1", &token)
                .await,
        )
        .await;
        assert_eq!(
            (v["items"][0]["id"].as_str(), v["total"].as_i64()),
            (Some(ra.to_string().as_str()), Some(2))
        );
        let (_, v) = json(app.get_auth("/api/v1/recordings?call_id=", &token).await).await;
        assert_eq!(v["total"], 2);

        for (q, field) in [
            ("page_size=0", "page_size"),
            ("page_size=101", "page_size"),
            ("page=0", "page"),
            ("call_id=abc", "call_id"),
            ("x=1", "x"),
        ] {
            let (s, v) = json(
                app.get_auth(&format!("/api/v1/recordings?{q}"), &token)
                    .await,
            )
            .await;
            assert_eq!(s, 422, "{q}: {v}");
            assert!(v["fields"][field].is_string(), "{q}: {v}");
        }
    });
}

#[tokio::test]
async fn stream_serves_whole_file_and_byte_ranges() {
    for_each_engine!(|app| {
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let token = app.register_owner("stream@example.com", "Stream").await;
        let tenant = tenant_of(&app, &token).await;
        let call = seed_call(
            &app,
            tenant,
            at("2025-06-17T10:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            42,
        )
        .await;
        // Bigger than the store's 64 KiB read chunk, so the body spans several chunks.
        let data = pattern(200_000);
        let rec = seed_recording(
            &app,
            tenant,
            call,
            at("2025-06-17T10:05:00Z"),
            RecordingStatus::Completed,
            Some(&data),
        )
        .await;
        let path = format!("/api/v1/recordings/{rec}/stream");

        let r = get_range(&app, &path, &token, None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), "audio/wav");
        assert_eq!(header(&r, "content-length"), "200000");
        assert_eq!(header(&r, "accept-ranges"), "bytes");
        assert_eq!(
            header(&r, "content-disposition"),
            format!("inline; filename=recording_{rec}.wav")
        );
        assert!(r.headers().get("content-range").is_none());
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);

        for (range, start, end) in [
            ("bytes=0-99", 0usize, 99usize),
            ("bytes=100-", 100, 199_999),
            ("bytes=-10", 199_990, 199_999),
            ("bytes=70000-140001", 70_000, 140_001),
            ("bytes=199999-300000", 199_999, 199_999),
        ] {
            let r = get_range(&app, &path, &token, Some(range)).await;
            assert_eq!(r.status(), 206, "{range}");
            assert_eq!(
                header(&r, "content-range"),
                format!("bytes {start}-{end}/200000"),
                "{range}"
            );
            assert_eq!(
                header(&r, "content-length"),
                (end - start + 1).to_string(),
                "{range}"
            );
            assert_eq!(header(&r, "content-type"), "audio/wav");
            assert_eq!(header(&r, "accept-ranges"), "bytes");
            assert_eq!(
                r.bytes().await.unwrap().as_ref(),
                &data[start..=end],
                "{range}"
            );
        }

        for range in [
            "bytes=200000-",
            "bytes=300000-300010",
            "bytes=10-5",
            "bytes=-0",
            "bytes=abc",
            "pages=1-2",
            "bytes=0-1,5-6",
        ] {
            let r = get_range(&app, &path, &token, Some(range)).await;
            assert_eq!(r.status(), 416, "{range}");
            assert_eq!(header(&r, "content-range"), "bytes */200000", "{range}");
            let (_, v) = json(r).await;
            assert_eq!(v["code"], "range_not_satisfiable", "{range}");
            assert!(v["detail"].is_string());
        }
    });
}

#[tokio::test]
async fn stream_404s() {
    for_each_engine!(|app| {
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let token = app.register_owner("missing@example.com", "Missing").await;
        let tenant = tenant_of(&app, &token).await;
        let call = seed_call(
            &app,
            tenant,
            at("2025-06-17T10:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            42,
        )
        .await;
        // A completed row whose object is missing from storage.
        let lost = seed_recording(
            &app,
            tenant,
            call,
            at("2025-06-17T10:05:00Z"),
            RecordingStatus::Completed,
            None,
        )
        .await;
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/recordings/{lost}/stream"), &token)
                .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (404, Some("Recording file not accessible"))
        );
        let r = get_range(
            &app,
            &format!("/api/v1/recordings/{lost}/stream"),
            &token,
            Some("bytes=0-1"),
        )
        .await;
        assert_eq!(r.status(), 404);

        // Rows that are not completed are not served, even when an object exists.
        let call2 = seed_call(
            &app,
            tenant,
            at("2025-06-17T11:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            42,
        )
        .await;
        let pending = seed_recording(
            &app,
            tenant,
            call2,
            at("2025-06-17T11:05:00Z"),
            RecordingStatus::Pending,
            Some(b"RIFF"),
        )
        .await;
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/recordings/{pending}/stream"), &token)
                .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (404, Some("Recording not found"))
        );

        let random = uuid::Uuid::new_v4();
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/recordings/{random}/stream"), &token)
                .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (404, Some("Recording not found"))
        );
        let (s, _) = json(app.get_auth("/api/v1/recordings/nope/stream", &token).await).await;
        assert_eq!(s, 404);
        let r = app
            .client
            .get(app.url(&format!("/api/v1/recordings/{random}/stream")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    });
}
