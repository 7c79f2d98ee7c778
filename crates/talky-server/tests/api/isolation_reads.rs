//! B2, B4, B8 for the read routes (calls, transcripts, recordings, clients, reporting):
//! tenant B gets the same 404 for tenant A's ids as for ids that do not exist, B's lists and
//! reports never include A's rows, and a foreign `tenant_id` parameter is 403.

use crate::calls::{at, sample_transcript, seed_call, set_clock, tenant_of};
use crate::for_each_engine;
use crate::helpers::json;
use crate::recordings::{pattern, seed_recording};
use serde_json::json;
use talky_core::model::{CallStatus, Outcome};
use talky_core::ports::store::RecordingStatus;

#[tokio::test]
async fn tenant_b_never_sees_tenant_a() {
    for_each_engine!(|app| {
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let a = app.register_owner("a@example.com", "Tenant A").await;
        let b = app.register_owner("b@example.com", "Tenant B").await;
        let ta = tenant_of(&app, &a).await;
        let tb = tenant_of(&app, &b).await;

        // Tenant A's rows.
        let call = seed_call(
            &app,
            ta,
            at("2025-06-17T10:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            125,
        )
        .await;
        app.store
            .save_transcript(
                ta,
                call,
                sample_transcript(at("2025-06-17T10:00:01Z")),
                at("2025-06-17T10:03:00Z"),
            )
            .await
            .unwrap();
        let rec = seed_recording(
            &app,
            ta,
            call,
            at("2025-06-17T10:03:00Z"),
            RecordingStatus::Completed,
            Some(&pattern(1000)),
        )
        .await;
        let (s, client) = json(
            app.post_auth(
                "/api/v1/clients",
                &a,
                json!({"name": "A's client", "phone": "+15551230000"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200);
        let client = client["id"].as_str().unwrap().to_string();

        // A sees its own objects (so the 404s below are about B, not about broken seeding).
        for path in [
            format!("/api/v1/calls/{call}"),
            format!("/api/v1/calls/{call}/transcript"),
            format!("/api/v1/recordings/{rec}/stream"),
            format!("/api/v1/clients/{client}"),
        ] {
            assert_eq!(app.get_auth(&path, &a).await.status(), 200, "{path}");
        }

        // B: A's ids answer exactly like random ids.
        let random = uuid::Uuid::new_v4();
        for (foreign, unknown) in [
            (
                format!("/api/v1/calls/{call}"),
                format!("/api/v1/calls/{random}"),
            ),
            (
                format!("/api/v1/calls/{call}/transcript"),
                format!("/api/v1/calls/{random}/transcript"),
            ),
            (
                format!("/api/v1/calls/{call}/transcript?format=text"),
                format!("/api/v1/calls/{random}/transcript?format=text"),
            ),
            (
                format!("/api/v1/recordings/{rec}/stream"),
                format!("/api/v1/recordings/{random}/stream"),
            ),
            (
                format!("/api/v1/clients/{client}"),
                format!("/api/v1/clients/{random}"),
            ),
        ] {
            let (s1, v1) = json(app.get_auth(&foreign, &b).await).await;
            let (s2, v2) = json(app.get_auth(&unknown, &b).await).await;
            assert_eq!(s1, 404, "{foreign}: {v1}");
            assert_eq!((s1, &v1), (s2, &v2), "{foreign} vs {unknown}");
        }
        let r = app
            .client
            .get(app.url(&format!("/api/v1/recordings/{rec}/stream")))
            .bearer_auth(&b)
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let (s1, v1) = json(
            app.delete_auth(&format!("/api/v1/clients/{client}"), &b)
                .await,
        )
        .await;
        let (s2, v2) = json(
            app.delete_auth(&format!("/api/v1/clients/{random}"), &b)
                .await,
        )
        .await;
        assert_eq!((s1, &v1), (404, &v2));
        assert_eq!(s2, 404);
        assert_eq!(
            app.get_auth(&format!("/api/v1/clients/{client}"), &a)
                .await
                .status(),
            200,
            "B's delete left A's client"
        );

        // B's lists and reports are empty.
        let (_, v) = json(app.get_auth("/api/v1/calls", &b).await).await;
        assert_eq!(
            (v["total"].as_i64(), v["items"].as_array().unwrap().len()),
            (Some(0), 0)
        );
        let (_, v) = json(
            app.get_auth("/api/v1/calls?from=2025-06-01&to=2025-06-30", &b)
                .await,
        )
        .await;
        assert_eq!(v["total"], 0);
        let (_, v) = json(app.get_auth("/api/v1/recordings", &b).await).await;
        assert_eq!(v["total"], 0);
        let (_, v) = json(
            app.get_auth(&format!("/api/v1/recordings?call_id={call}"), &b)
                .await,
        )
        .await;
        assert_eq!(v["total"], 0);
        let (_, v) = json(app.get_auth("/api/v1/clients", &b).await).await;
        assert_eq!(v, json!([]));
        let (_, v) = json(app.get_auth("/api/v1/dashboard/summary", &b).await).await;
        assert_eq!(
            v,
            json!({"total_calls":0,"answered_calls":0,"failed_calls":0,"minutes_used":0,"minutes_remaining":300,"active_campaigns":0})
        );
        let (_, v) = json(
            app.get_auth("/api/v1/analytics/calls?from=2025-06-01&to=2025-06-30", &b)
                .await,
        )
        .await;
        assert_eq!(v, json!({"series": []}));

        // … while A's show them.
        let (_, v) = json(app.get_auth("/api/v1/calls", &a).await).await;
        assert_eq!(v["total"], 1);
        let (_, v) = json(app.get_auth("/api/v1/recordings", &a).await).await;
        assert_eq!(v["total"], 1);
        let (_, v) = json(app.get_auth("/api/v1/dashboard/summary", &a).await).await;
        assert_eq!(
            (v["total_calls"].as_i64(), v["minutes_used"].as_i64()),
            (Some(1), Some(3))
        );

        // B2: a foreign tenant_id is 403 on every route, even for B's own reads; B's own id is ignored.
        for path in [
            "/api/v1/calls".to_string(),
            format!("/api/v1/calls/{call}"),
            format!("/api/v1/calls/{call}/transcript"),
            "/api/v1/recordings".to_string(),
            format!("/api/v1/recordings/{rec}/stream"),
            "/api/v1/clients".to_string(),
            format!("/api/v1/clients/{client}"),
            "/api/v1/dashboard/summary".to_string(),
            "/api/v1/analytics/calls".to_string(),
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let (s, v) = json(
                app.get_auth(&format!("{path}{sep}tenant_id={ta}"), &b)
                    .await,
            )
            .await;
            assert_eq!(
                (s, v["detail"].as_str()),
                (403, Some("Forbidden")),
                "{path}"
            );
        }
        let (s, _) = json(
            app.delete_auth(&format!("/api/v1/clients/{client}?tenant_id={ta}"), &b)
                .await,
        )
        .await;
        assert_eq!(s, 403);
        for path in [
            "/api/v1/calls",
            "/api/v1/recordings",
            "/api/v1/clients",
            "/api/v1/dashboard/summary",
            "/api/v1/analytics/calls",
        ] {
            let (s, v) = json(app.get_auth(&format!("{path}?tenant_id={tb}"), &b).await).await;
            assert_eq!(s, 200, "{path}: {v}");
        }
        let (_, v) = json(
            app.get_auth(&format!("/api/v1/calls?tenant_id={tb}"), &b)
                .await,
        )
        .await;
        assert_eq!(v["total"], 0, "own tenant_id selects nothing else");

        // A client-supplied tenant_id in a body: foreign → 403 and nothing written, own → ignored.
        let (s, _) = json(
            app.post_auth(
                "/api/v1/clients",
                &b,
                json!({"name": "Sneaky", "tenant_id": ta.to_string()}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 403);
        let (_, v) = json(app.get_auth("/api/v1/clients", &a).await).await;
        assert_eq!(v.as_array().unwrap().len(), 1, "nothing written into A");
        let (_, v) = json(app.get_auth("/api/v1/clients", &b).await).await;
        assert_eq!(v, json!([]), "nothing written into B");
        let (s, _) = json(
            app.post_auth(
                "/api/v1/clients",
                &b,
                json!({"name": "Mine", "tenant_id": tb.to_string()}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200);
        let (_, v) = json(app.get_auth("/api/v1/clients", &a).await).await;
        assert_eq!(v.as_array().unwrap().len(), 1);
    });
}
