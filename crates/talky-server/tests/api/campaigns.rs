//! Campaign routes: CRUD and validation (E1, B2), the E2 status machine, start (E3–E5, C3),
//! pause (E8), stop (E9), jobs and stats (E20).

use crate::contacts::add_contact;
use crate::for_each_engine;
use crate::helpers::{json, TestApp};
use serde_json::{json, Value};
use talky_core::ids::{CampaignId, LeadId, TenantId};
use talky_core::model::CallStatus;
use talky_core::ports::store::NewCall;
use talky_core::Clock;

/// The caller's tenant id.
pub async fn tenant_of(app: &TestApp, token: &str) -> TenantId {
    let (s, v) = json(app.get_auth("/api/v1/tenant", token).await).await;
    assert_eq!(s, 200, "{v}");
    v["id"].as_str().unwrap().parse().unwrap()
}

/// Creates a minimal draft campaign and returns its id.
pub async fn create_campaign(app: &TestApp, token: &str, name: &str) -> String {
    let (s, v) = json(
        app.post_auth(
            "/api/v1/campaigns",
            token,
            json!({"name": name, "system_prompt": "Be brief."}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["campaign"]["status"], "draft");
    v["campaign"]["id"].as_str().unwrap().to_string()
}

pub async fn campaign_count(app: &TestApp, token: &str) -> usize {
    let (s, v) = json(app.get_auth("/api/v1/campaigns", token).await).await;
    assert_eq!(s, 200, "{v}");
    v["campaigns"].as_array().unwrap().len()
}

pub async fn stats(app: &TestApp, token: &str, id: &str) -> Value {
    let (s, v) = json(
        app.get_auth(&format!("/api/v1/campaigns/{id}/stats"), token)
            .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Jobs of every status, as counted by the stats route.
pub async fn total_jobs(app: &TestApp, token: &str, id: &str) -> i64 {
    let v = stats(app, token, id).await;
    v["job_status_counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum()
}

async fn status_of(app: &TestApp, token: &str, id: &str) -> String {
    let (s, v) = json(
        app.get_auth(&format!("/api/v1/campaigns/{id}"), token)
            .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["campaign"]["status"].as_str().unwrap().to_string()
}

async fn action(app: &TestApp, token: &str, id: &str, what: &str) -> (u16, Value) {
    json(
        app.client
            .post(app.url(&format!("/api/v1/campaigns/{id}/{what}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn campaign_crud_and_validation() {
    for_each_engine!(|app| {
        let tok = app.register_owner("crud@example.com", "Crud").await;

        let (s, v) = json(
            app.post_auth(
                "/api/v1/campaigns",
                &tok,
                json!({"name": " Q1 ", "system_prompt": "Be brief."}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let c = &v["campaign"];
        assert_eq!(c["name"], "Q1");
        assert_eq!(c["status"], "draft");
        assert_eq!(c["language"], "en");
        assert_eq!(c["max_concurrent_calls"], 10);
        assert_eq!(c["max_call_seconds"], 7200);
        assert_eq!(c["key_terms"], json!([]));
        assert_eq!(c["calls_completed"], 0);
        assert!(c["started_at"].is_null());
        assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
        let id = c["id"].as_str().unwrap().to_string();

        // Every writable field at once.
        app.clock.advance(chrono::Duration::seconds(1));
        let full = json!({
            "name": "Full", "description": "d", "system_prompt": "p", "voice_id": "v1",
            "agent_name": "Maya", "company_name": "Northwind Dental", "call_reason": "your checkup",
            "opener": "Hi, it's Maya from Northwind Dental about your checkup. Got a minute?",
            "goal": "book", "language": "en-US", "max_concurrent_calls": 100,
            "calling_rules": {"time_window_start": "08:00", "timezone": "Europe/Paris"},
            "voicemail_message": "Call us back", "max_call_seconds": 60, "key_terms": ["checkup", "Northwind"]
        });
        let (s, v) = json(app.post_auth("/api/v1/campaigns", &tok, full).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["campaign"]["calling_rules"],
            json!({"time_window_start": "08:00", "timezone": "Europe/Paris"})
        );
        assert_eq!(v["campaign"]["key_terms"], json!(["checkup", "Northwind"]));
        assert_eq!(v["campaign"]["max_call_seconds"], 60);

        let (s, v) = json(app.get_auth("/api/v1/campaigns", &tok).await).await;
        assert_eq!(s, 200);
        let names: Vec<_> = v["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["Full", "Q1"], "newest first");
        let (s, v) = json(app.get_auth(&format!("/api/v1/campaigns/{id}"), &tok).await).await;
        assert_eq!((s, v["campaign"]["name"].as_str()), (200, Some("Q1")));

        // E1 / B2 validation: each 422 names its field and writes nothing.
        let base = || json!({"name": "n", "system_prompt": "p"});
        let with = |k: &str, val: Value| {
            let mut b = base();
            b[k] = val;
            b
        };
        let without = |k: &str| {
            let mut b = base();
            b.as_object_mut().unwrap().remove(k);
            b
        };
        let cases: Vec<(Value, &str)> = vec![
            (without("name"), "name"),
            (with("name", json!("   ")), "name"),
            (with("name", json!("x".repeat(256))), "name"),
            (with("name", Value::Null), "name"),
            (without("system_prompt"), "system_prompt"),
            (
                with("system_prompt", json!("x".repeat(20_001))),
                "system_prompt",
            ),
            (with("call_reason", json!("x".repeat(31))), "call_reason"),
            (
                with("call_reason", json!("one two three four five")),
                "call_reason",
            ),
            (
                with("max_concurrent_calls", json!(0)),
                "max_concurrent_calls",
            ),
            (
                with("max_concurrent_calls", json!(101)),
                "max_concurrent_calls",
            ),
            (
                with("max_concurrent_calls", json!("ten")),
                "max_concurrent_calls",
            ),
            (with("max_call_seconds", json!(59)), "max_call_seconds"),
            (with("max_call_seconds", json!(86_401)), "max_call_seconds"),
            (
                with("calling_rules", json!({"time_window_start": "25:00"})),
                "calling_rules.time_window_start",
            ),
            (
                with("calling_rules", json!({"timezone": "Mars/Base"})),
                "calling_rules.timezone",
            ),
            (
                with("calling_rules", json!({"allowed_days": []})),
                "calling_rules.allowed_days",
            ),
            // Valid on its own, but equal to the tenant's (default) start once merged.
            (
                with("calling_rules", json!({"time_window_end": "09:00"})),
                "calling_rules.time_window_end",
            ),
            (with("calling_rules", json!({"bogus": 1})), "calling_rules"),
            (with("calling_rules", json!("09:00")), "calling_rules"),
            (with("opener", json!("Hello there.")), "opener"),
            (with("key_terms", json!(["ok", " "])), "key_terms.1"),
            (with("id", json!(id)), "id"),
            (with("status", json!("running")), "status"),
            (with("calls_completed", json!(3)), "calls_completed"),
            (
                with("created_at", json!("2025-01-01T00:00:00Z")),
                "created_at",
            ),
        ];
        for (body, field) in cases {
            let (s, v) = json(app.post_auth("/api/v1/campaigns", &tok, body.clone()).await).await;
            assert_eq!(s, 422, "{body} → {v}");
            assert_eq!(v["code"], "validation_error");
            let fields = v["fields"].as_object().unwrap();
            assert!(
                fields.keys().any(|k| k.starts_with(field)),
                "{field} in {v}"
            );
        }
        assert_eq!(campaign_count(&app, &tok).await, 2);

        // Malformed JSON 400, wrong content type 415.
        let r = app
            .client
            .post(app.url("/api/v1/campaigns"))
            .bearer_auth(&tok)
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = app
            .client
            .post(app.url("/api/v1/campaigns"))
            .bearer_auth(&tok)
            .body(r#"{"name":"n","system_prompt":"p"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);

        // B2: the caller's own tenant_id is ignored; any other is 403 and writes nothing.
        let own = tenant_of(&app, &tok).await;
        let (s, _) = json(
            app.post_auth(
                "/api/v1/campaigns",
                &tok,
                json!({"name": "Own", "system_prompt": "p", "tenant_id": own.to_string()}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200);
        let (s, v) = json(app.post_auth("/api/v1/campaigns", &tok, json!({"name": "Foreign", "system_prompt": "p", "tenant_id": TenantId::new().to_string()})).await).await;
        assert_eq!((s, v["detail"].as_str()), (403, Some("Forbidden")));
        assert_eq!(campaign_count(&app, &tok).await, 3);

        // PATCH: only the given fields; null clears a nullable field.
        let path = format!("/api/v1/campaigns/{id}");
        let (s, v) = json(
            app.patch_auth(
                &path,
                &tok,
                json!({"name": "Q1b", "description": "desc", "max_concurrent_calls": 5}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["campaign"]["name"], "Q1b");
        assert_eq!(v["campaign"]["description"], "desc");
        assert_eq!(v["campaign"]["system_prompt"], "Be brief.");
        assert_eq!(v["campaign"]["max_concurrent_calls"], 5);
        let (s, v) = json(
            app.patch_auth(
                &path,
                &tok,
                json!({"description": null, "calling_rules": {"max_attempts": 2}}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert!(v["campaign"]["description"].is_null());
        assert_eq!(v["campaign"]["calling_rules"], json!({"max_attempts": 2}));
        let (s, v) = json(
            app.patch_auth(&path, &tok, json!({"calling_rules": null}))
                .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert!(v["campaign"]["calling_rules"].is_null());
        for (body, field) in [
            (json!({"name": null}), "name"),
            (json!({"name": ""}), "name"),
            (json!({"system_prompt": null}), "system_prompt"),
            (json!({"max_call_seconds": 10}), "max_call_seconds"),
            (
                json!({"max_concurrent_calls": null}),
                "max_concurrent_calls",
            ),
            (json!({"status": "running"}), "status"),
            (json!({"updated_at": "2025-01-01T00:00:00Z"}), "updated_at"),
            (
                json!({"agent_name": "Maya", "opener": "Hi, it's Bob from Acme. Got a minute?"}),
                "opener",
            ),
            (
                json!({"name": "changed", "calling_rules": {"max_attempts": 11}}),
                "calling_rules.max_attempts",
            ),
        ] {
            let (s, v) = json(app.patch_auth(&path, &tok, body.clone()).await).await;
            assert_eq!(s, 422, "{body} → {v}");
            assert!(
                v["fields"].as_object().unwrap().contains_key(field),
                "{field} in {v}"
            );
        }
        let (_, v) = json(app.get_auth(&path, &tok).await).await;
        assert_eq!(
            v["campaign"]["name"], "Q1b",
            "a rejected PATCH changes nothing"
        );
        let (s, _) = json(
            app.patch_auth(
                &path,
                &tok,
                json!({"tenant_id": TenantId::new().to_string(), "name": "x"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 403);

        // Unknown ids.
        let missing = format!("/api/v1/campaigns/{}", CampaignId::new());
        let (s, v) = json(app.get_auth(&missing, &tok).await).await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
        let (s, v) = json(app.patch_auth(&missing, &tok, json!({"name": "x"})).await).await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
        let (s, _) = json(app.get_auth("/api/v1/campaigns/not-a-uuid", &tok).await).await;
        assert_eq!(s, 404);
        // Without a session.
        let r = app
            .client
            .get(app.url("/api/v1/campaigns"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    });
}

#[tokio::test]
async fn status_machine_follows_e2() {
    for_each_engine!(|app| {
        let tok = app.register_owner("e2@example.com", "E2").await;
        let tenant = tenant_of(&app, &tok).await;
        let now = app.clock.now();

        // Brings a fresh campaign into `status`.
        async fn make(
            app: &TestApp,
            tok: &str,
            tenant: TenantId,
            status: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> String {
            let id = create_campaign(app, tok, status).await;
            match status {
                "draft" => {}
                "running" => assert_eq!(action(app, tok, &id, "start").await.0, 200),
                "paused" => {
                    assert_eq!(action(app, tok, &id, "start").await.0, 200);
                    assert_eq!(action(app, tok, &id, "pause").await.0, 200);
                }
                "stopped" => assert_eq!(action(app, tok, &id, "stop").await.0, 200),
                "completed" => {
                    assert_eq!(action(app, tok, &id, "start").await.0, 200);
                    let cid: CampaignId = id.parse().unwrap();
                    assert!(app
                        .store
                        .complete_campaign_if_done(tenant, cid, now)
                        .await
                        .unwrap());
                }
                _ => unreachable!(),
            }
            assert_eq!(status_of(app, tok, &id).await, status);
            id
        }

        // (from, action, expected status code, status afterwards, 4xx detail)
        let table: &[(&str, &str, u16, &str, Option<&str>)] = &[
            ("draft", "start", 200, "running", None),
            ("draft", "pause", 409, "draft", Some("Campaign is draft")),
            ("draft", "stop", 200, "stopped", None),
            (
                "running",
                "start",
                400,
                "running",
                Some("Campaign is already running"),
            ),
            ("running", "pause", 200, "paused", None),
            ("running", "stop", 200, "stopped", None),
            ("paused", "start", 200, "running", None),
            ("paused", "pause", 200, "paused", None),
            ("paused", "stop", 200, "stopped", None),
            ("stopped", "start", 200, "running", None),
            (
                "stopped",
                "pause",
                409,
                "stopped",
                Some("Campaign is stopped"),
            ),
            ("stopped", "stop", 200, "stopped", None),
            ("completed", "start", 200, "running", None),
            (
                "completed",
                "pause",
                409,
                "completed",
                Some("Campaign is completed"),
            ),
            ("completed", "stop", 200, "stopped", None),
        ];
        for (from, what, code, after, detail) in table {
            let id = make(&app, &tok, tenant, from, now).await;
            let (s, v) = action(&app, &tok, &id, what).await;
            assert_eq!(s, *code, "{from} {what}: {v}");
            assert_eq!(status_of(&app, &tok, &id).await, *after, "{from} {what}");
            match detail {
                Some(d) => {
                    assert_eq!(v["detail"], *d);
                    assert!(v["code"].is_string());
                }
                None => {
                    assert_eq!(v["campaign"]["status"], *after);
                    let verb = match *what {
                        "start" => "started",
                        "pause" => "paused",
                        _ => "stopped",
                    };
                    assert_eq!(v["message"], format!("Campaign {id} {verb}"));
                }
            }
        }

        // "No work left": only a running campaign completes.
        for from in ["draft", "paused", "stopped", "completed"] {
            let id = make(&app, &tok, tenant, from, now).await;
            let done = app
                .store
                .complete_campaign_if_done(tenant, id.parse().unwrap(), now)
                .await
                .unwrap();
            assert!(!done, "{from}");
            assert_eq!(status_of(&app, &tok, &id).await, from);
        }
        // Unknown campaign: 404 for every action.
        let missing = CampaignId::new().to_string();
        for what in ["start", "pause", "stop"] {
            let (s, v) = action(&app, &tok, &missing, what).await;
            assert_eq!(
                (s, v["detail"].as_str()),
                (404, Some("Campaign not found")),
                "{what}"
            );
        }
    });
}

#[tokio::test]
async fn start_enqueues_one_job_per_callable_lead() {
    for_each_engine!(|app| {
        let tok = app.register_owner("start@example.com", "Start").await;
        let id = create_campaign(&app, &tok, "Leads").await;
        for n in 1..=3 {
            add_contact(&app, &tok, &id, &format!("+1555000000{n}")).await;
        }
        let deleted = add_contact(&app, &tok, &id, "+15550000004").await;
        let (s, _) = json(
            app.delete_auth(&format!("/api/v1/campaigns/{id}/contacts/{deleted}"), &tok)
                .await,
        )
        .await;
        assert_eq!(s, 200);
        add_contact(&app, &tok, &id, "+15550000005").await;
        let (s, _) = json(
            app.post_auth("/api/v1/dnc", &tok, json!({"phone_number": "+15550000005"}))
                .await,
        )
        .await;
        assert_eq!(s, 201);

        let (s, v) = json(
            app.post_auth(&format!("/api/v1/campaigns/{id}/start"), &tok, json!({}))
                .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["message"], format!("Campaign {id} started"));
        assert_eq!(v["jobs_enqueued"], 3, "pending, not DNC, not deleted");
        assert_eq!(v["campaign"], json!({"id": id, "status": "running"}));

        let st = stats(&app, &tok, &id).await;
        assert_eq!(st["campaign_id"], id);
        assert_eq!(st["campaign_status"], "running");
        assert_eq!(st["total_leads"], 4);
        assert_eq!(st["job_status_counts"]["pending"], 3);
        assert_eq!(st["job_status_counts"]["skipped"], 0);
        assert_eq!(st["call_outcome_counts"]["answered"], 0);
        assert_eq!(st["goals_achieved"], 0);

        let (s, v) = json(
            app.get_auth(&format!("/api/v1/campaigns/{id}/jobs"), &tok)
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
            (Some(3), Some(1), Some(20))
        );
        let job = &v["jobs"][0];
        assert_eq!(job["status"], "pending");
        assert_eq!(job["priority"], 5);
        assert_eq!(job["attempt_number"], 0);
        assert_eq!(job["campaign_id"], id);

        // Restarting never duplicates; a lead added while running gets its job at once.
        assert_eq!(action(&app, &tok, &id, "pause").await.0, 200);
        // E3 order on a paused campaign: bad options are 422 and change nothing.
        for body in [
            json!({"priority_override": 0}),
            json!({"priority_override": 11}),
            json!({"priority_override": "high"}),
            json!({"nope": 1}),
        ] {
            let (s, v) = json(
                app.post_auth(&format!("/api/v1/campaigns/{id}/start"), &tok, body.clone())
                    .await,
            )
            .await;
            assert_eq!(s, 422, "{body} {v}");
        }
        let r = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{id}/start")))
            .bearer_auth(&tok)
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(status_of(&app, &tok, &id).await, "paused");
        let (s, v) = action(&app, &tok, &id, "start").await;
        assert_eq!((s, v["jobs_enqueued"].as_i64()), (200, Some(0)), "{v}");
        add_contact(&app, &tok, &id, "+15550000006").await;
        assert_eq!(total_jobs(&app, &tok, &id).await, 4);

        // Job list filters and K3 bounds.
        let jobs = format!("/api/v1/campaigns/{id}/jobs");
        let (s, v) = json(
            app.get_auth(&format!("{jobs}?status=pending&page=2&page_size=3"), &tok)
                .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["total"].as_i64(), v["jobs"].as_array().unwrap().len()),
            (Some(4), 1)
        );
        let (s, v) = json(app.get_auth(&format!("{jobs}?status=skipped"), &tok).await).await;
        assert_eq!((s, v["total"].as_i64()), (200, Some(0)));
        let (s, _) = json(app.get_auth(&format!("{jobs}?status="), &tok).await).await;
        assert_eq!(s, 200);
        for q in [
            "status=bogus",
            "page_size=0",
            "page_size=101",
            "page=0",
            "page=x",
            "unknown=1",
        ] {
            let (s, v) = json(app.get_auth(&format!("{jobs}?{q}"), &tok).await).await;
            assert_eq!(s, 422, "{q}: {v}");
        }

        // Priority override (E4) and a concurrent double start: exactly one job per lead.
        let id2 = create_campaign(&app, &tok, "Race").await;
        for n in 0..5 {
            add_contact(&app, &tok, &id2, &format!("+1555100000{n}")).await;
        }
        let url = format!("/api/v1/campaigns/{id2}/start");
        let (a, b) = tokio::join!(
            app.post_auth(&url, &tok, json!({"priority_override": 7})),
            app.post_auth(&url, &tok, json!({"priority_override": 7}))
        );
        let mut codes = [a.status().as_u16(), b.status().as_u16()];
        codes.sort();
        assert_eq!(codes, [200, 400]);
        assert_eq!(total_jobs(&app, &tok, &id2).await, 5);
        let (_, v) = json(
            app.get_auth(&format!("/api/v1/campaigns/{id2}/jobs"), &tok)
                .await,
        )
        .await;
        assert!(
            v["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|j| j["priority"] == 7),
            "{v}"
        );

        let (s, v) = json(
            app.get_auth(
                &format!("/api/v1/campaigns/{}/jobs", CampaignId::new()),
                &tok,
            )
            .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
        let (s, v) = json(
            app.get_auth(
                &format!("/api/v1/campaigns/{}/stats", CampaignId::new()),
                &tok,
            )
            .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
    });
}

#[tokio::test]
async fn start_is_refused_out_of_minutes() {
    for_each_engine!(|app| {
        let tok = app.register_owner("minutes@example.com", "Minutes").await;
        let tenant = tenant_of(&app, &tok).await;
        let running = create_campaign(&app, &tok, "Running").await;
        assert_eq!(action(&app, &tok, &running, "start").await.0, 200);
        let id = create_campaign(&app, &tok, "Draft").await;
        add_contact(&app, &tok, &id, "+15552000001").await;

        app.store.admin_set_minutes(tenant, 1).await.unwrap();
        let mut call = NewCall::new("+15552000009", app.clock.now());
        call.status = CallStatus::Completed;
        call.duration_seconds = 120;
        app.store.insert_call(tenant, call).await.unwrap();

        let url = format!("/api/v1/campaigns/{id}/start");
        let (s, v) = json(app.post_auth(&url, &tok, json!({})).await).await;
        assert_eq!(
            (s, v),
            (
                402,
                json!({"detail": "Out of minutes", "code": "out_of_minutes"})
            )
        );
        // 402 comes before 422; nothing changes.
        let (s, _) = json(
            app.post_auth(&url, &tok, json!({"priority_override": 99}))
                .await,
        )
        .await;
        assert_eq!(s, 402);
        assert_eq!(status_of(&app, &tok, &id).await, "draft");
        assert_eq!(total_jobs(&app, &tok, &id).await, 0);
        // 404 and 400 come before 402.
        let (s, _) = action(&app, &tok, &CampaignId::new().to_string(), "start").await;
        assert_eq!(s, 404);
        let (s, v) = action(&app, &tok, &running, "start").await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (400, Some("Campaign is already running"))
        );

        // Unlimited minutes (≤ 0) never gate.
        app.store.admin_set_minutes(tenant, 0).await.unwrap();
        let (s, v) = action(&app, &tok, &id, "start").await;
        assert_eq!((s, v["jobs_enqueued"].as_i64()), (200, Some(1)), "{v}");
    });
}

#[tokio::test]
async fn stop_clears_jobs_and_hangs_up_live_calls() {
    for_each_engine!(|app| {
        let tok = app.register_owner("stop@example.com", "Stop").await;
        let tenant = tenant_of(&app, &tok).await;
        let id = create_campaign(&app, &tok, "Stop").await;
        let lead = add_contact(&app, &tok, &id, "+15553000001").await;
        add_contact(&app, &tok, &id, "+15553000002").await;
        add_contact(&app, &tok, &id, "+15553000003").await;
        assert_eq!(action(&app, &tok, &id, "start").await.0, 200);

        let cid: CampaignId = id.parse().unwrap();
        let lid: LeadId = lead.parse().unwrap();
        let now = app.clock.now();
        let mk = |provider_id: Option<&str>, status: CallStatus| {
            let mut c = NewCall::new("+15553000001", now);
            c.campaign_id = Some(cid);
            c.lead_id = Some(lid);
            c.status = status;
            if let Some(p) = provider_id {
                c.provider = Some("vonage".into());
                c.provider_call_id = Some(p.into());
            }
            c
        };
        app.store
            .insert_call(tenant, mk(Some("live-1"), CallStatus::Answered))
            .await
            .unwrap();
        app.store
            .insert_call(tenant, mk(None, CallStatus::Initiated))
            .await
            .unwrap();
        app.store
            .insert_call(tenant, mk(Some("done-1"), CallStatus::Completed))
            .await
            .unwrap();

        let (s, v) = action(&app, &tok, &id, "stop").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["message"], format!("Campaign {id} stopped"));
        assert_eq!(v["jobs_cleared"], 3);
        assert_eq!(
            v["calls_hung_up"], 1,
            "only the live call with a provider id can be hung up now"
        );
        assert_eq!(v["campaign"]["status"], "stopped");
        assert!(v["campaign"]["completed_at"].is_string());
        let hung: Vec<_> = app
            .carrier
            .hangups()
            .into_iter()
            .map(|c| c.provider_call_id)
            .collect();
        assert_eq!(hung, ["live-1"]);

        let st = stats(&app, &tok, &id).await;
        assert_eq!(st["job_status_counts"]["skipped"], 3);
        assert_eq!(st["job_status_counts"]["pending"], 0);
        let (_, v) = json(
            app.get_auth(&format!("/api/v1/campaigns/{id}/jobs?status=skipped"), &tok)
                .await,
        )
        .await;
        assert!(
            v["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|j| j["last_error"] == "Campaign stopped"),
            "{v}"
        );

        // Stopping again is a no-op for jobs; a later start enqueues the still-pending leads.
        let (s, v) = action(&app, &tok, &id, "stop").await;
        assert_eq!((s, v["jobs_cleared"].as_i64()), (200, Some(0)));
        let (s, v) = action(&app, &tok, &id, "start").await;
        assert_eq!((s, v["jobs_enqueued"].as_i64()), (200, Some(3)), "{v}");
    });
}
