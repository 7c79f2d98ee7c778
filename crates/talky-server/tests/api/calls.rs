//! `/calls`, `/calls/{id}`, `/calls/{id}/transcript` (H6, H7, K3) and `/calls/{id}/metrics`
//! (J1, J2). Calls are created by the dialer and the voice session, so these tests write them
//! through the store. The seeding helpers here are shared with the other read-route tests.

use crate::for_each_engine;
use crate::helpers::{json, TestApp};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use talky_core::ids::{CallId, CampaignId, TenantId};
use talky_core::model::{CallStatus, Outcome};
use talky_core::phone::E164;
use talky_core::ports::store::{
    NewCall, NewCampaign, NewLead, NewTranscript, SessionEnd, TranscriptTurn, TurnMetric, TurnRole,
};

/// Parses an RFC 3339 instant.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Moves the test clock to `t` (call before registering, so tokens are issued at `t`).
pub fn set_clock(app: &TestApp, t: DateTime<Utc>) {
    use talky_core::Clock;
    app.clock.advance(t - app.clock.now());
}

/// The tenant of the user behind `token`.
pub async fn tenant_of(app: &TestApp, token: &str) -> TenantId {
    let (s, me) = json(app.get_auth("/api/v1/auth/me", token).await).await;
    assert_eq!(s, 200, "{me}");
    me["tenant_id"].as_str().unwrap().parse().unwrap()
}

/// Inserts a finished (or live) call created at `created`.
pub async fn seed_call(
    app: &TestApp,
    tenant: TenantId,
    created: DateTime<Utc>,
    status: CallStatus,
    outcome: Option<Outcome>,
    duration: i64,
) -> CallId {
    let mut c = NewCall::new("+15551234567", created);
    c.status = status;
    c.outcome = outcome;
    c.duration_seconds = duration;
    app.store.insert_call(tenant, c).await.unwrap()
}

/// A `draft` campaign made through the store.
pub async fn seed_campaign(app: &TestApp, tenant: TenantId, name: &str) -> CampaignId {
    let new = NewCampaign {
        name: name.into(),
        system_prompt: "You are helpful.".into(),
        ..Default::default()
    };
    use talky_core::Clock;
    app.store
        .create_campaign(tenant, new, app.clock.now())
        .await
        .unwrap()
        .id
}

/// A three-turn transcript: assistant, user (with confidence), interrupted assistant.
pub fn sample_transcript(t0: DateTime<Utc>) -> NewTranscript {
    NewTranscript::from_turns(vec![
        TranscriptTurn {
            role: TurnRole::Assistant,
            content: "Hi, this is Ann from Acme.".into(),
            timestamp: t0,
            confidence: None,
            interrupted: false,
        },
        TranscriptTurn {
            role: TurnRole::User,
            content: "hello there".into(),
            timestamp: t0 + Duration::seconds(3),
            confidence: Some(0.5),
            interrupted: false,
        },
        TranscriptTurn {
            role: TurnRole::Assistant,
            content: "Great".into(),
            timestamp: t0 + Duration::seconds(5),
            confidence: None,
            interrupted: true,
        },
    ])
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn call_list_filters_paging_and_bounds() {
    for_each_engine!(|app| {
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let token = app.register_owner("calls@example.com", "Calls").await;
        let tenant = tenant_of(&app, &token).await;

        let c1 = seed_call(
            &app,
            tenant,
            at("2025-06-01T00:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            120,
        )
        .await;
        let c2 = seed_call(
            &app,
            tenant,
            at("2025-06-10T23:59:59.999Z"),
            CallStatus::Completed,
            Some(Outcome::Declined),
            30,
        )
        .await;
        let c3 = seed_call(
            &app,
            tenant,
            at("2025-06-11T00:00:00Z"),
            CallStatus::NoAnswer,
            Some(Outcome::NoAnswer),
            0,
        )
        .await;
        let c4 = seed_call(
            &app,
            tenant,
            at("2025-05-31T23:59:59Z"),
            CallStatus::Busy,
            Some(Outcome::Busy),
            0,
        )
        .await;
        let mut later = Vec::new();
        for i in 0..21 {
            let t = at("2025-06-15T08:00:00Z") + Duration::seconds(i);
            later.push(seed_call(&app, tenant, t, CallStatus::InProgress, None, 0).await);
        }

        // Default page: 20 newest first, total over everything.
        let (s, v) = json(app.get_auth("/api/v1/calls", &token).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (
                v["page"].as_i64(),
                v["page_size"].as_i64(),
                v["total"].as_i64()
            ),
            (Some(1), Some(20), Some(25))
        );
        let got = ids(&v);
        assert_eq!(got.len(), 20);
        assert_eq!(got[0], later[20].to_string(), "newest first");
        let item = &v["items"][0];
        let mut keys: Vec<_> = item.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "duration_seconds",
                "id",
                "outcome",
                "status",
                "timestamp",
                "to_number"
            ]
        );
        assert_eq!(item["timestamp"], "2025-06-15T08:00:20Z");
        assert_eq!(item["status"], "in_progress");
        assert_eq!(item["outcome"], Value::Null);
        assert_eq!(item["to_number"], "+15551234567");

        let (_, v) = json(app.get_auth("/api/v1/calls?page=2", &token).await).await;
        let got = ids(&v);
        assert_eq!(got.len(), 5);
        assert_eq!(got.last().unwrap(), &c4.to_string(), "oldest last");
        let (_, v) = json(
            app.get_auth("/api/v1/calls?page=3&page_size=20", &token)
                .await,
        )
        .await;
        assert_eq!((ids(&v).len(), v["total"].as_i64()), (0, Some(25)));
        let (_, v) = json(app.get_auth("/api/v1/calls?page_size=100", &token).await).await;
        assert_eq!(ids(&v).len(), 25);

        // Inclusive dates: the whole `to` day counts, the next day does not.
        let (s, v) = json(
            app.get_auth("/api/v1/calls?from=2025-06-01&to=2025-06-10", &token)
                .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(ids(&v), [c2.to_string(), c1.to_string()]);
        assert_eq!(v["total"], 2);
        assert_eq!(v["items"][0]["outcome"], "declined");
        let (_, v) = json(
            app.get_auth("/api/v1/calls?from=2025-06-10&to=2025-06-10", &token)
                .await,
        )
        .await;
        assert_eq!(ids(&v), [c2.to_string()]);
        let (_, v) = json(app.get_auth("/api/v1/calls?to=2025-05-31", &token).await).await;
        assert_eq!(ids(&v), [c4.to_string()]);
        let (_, v) = json(app.get_auth("/api/v1/calls?from=2025-06-11", &token).await).await;
        assert_eq!(v["total"], 22);

        // Status filter, alone and with dates; empty values mean "not given".
        let (_, v) = json(app.get_auth("/api/v1/calls?status=no_answer", &token).await).await;
        assert_eq!(
            (ids(&v), v["total"].as_i64()),
            (vec![c3.to_string()], Some(1))
        );
        let (_, v) = json(
            app.get_auth(
                "/api/v1/calls?status=completed&from=2025-06-01&to=2025-06-30",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!(v["total"], 2);
        let (_, v) = json(
            app.get_auth(
                "/api/v1/calls?status=in_progress&page=2&page_size=15",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!((ids(&v).len(), v["total"].as_i64()), (6, Some(21)));
        let (s, v) = json(
            app.get_auth(
                "/api/v1/calls?page=1&page_size=20&status=&from=&to=",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!((s, v["total"].as_i64()), (200, Some(25)));

        // Bad input is 422 and names the parameter.
        for (q, field) in [
            ("page_size=0", "page_size"),
            ("page_size=101", "page_size"),
            ("page=0", "page"),
            ("page=-1", "page"),
            ("page=abc", "page"),
            ("status=bogus", "status"),
            ("from=2025-13-01", "from"),
            ("from=2025-06-31", "from"),
            ("from=06/01/2025", "from"),
            ("to=2025-6-1", "to"),
            ("from=2025-06-10&to=2025-06-01", "from"),
            ("nonsense=1", "nonsense"),
        ] {
            let (s, v) = json(app.get_auth(&format!("/api/v1/calls?{q}"), &token).await).await;
            assert_eq!(s, 422, "{q}: {v}");
            assert_eq!(v["code"], "validation_error", "{q}");
            assert!(v["fields"][field].is_string(), "{q}: {v}");
            assert!(v["detail"].is_string());
        }
        // Without a session: 401.
        let r = app
            .client
            .get(app.url("/api/v1/calls"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    });
}

#[tokio::test]
async fn call_detail_and_transcript() {
    for_each_engine!(|app| {
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let token = app.register_owner("detail@example.com", "Detail").await;
        let tenant = tenant_of(&app, &token).await;
        let campaign = seed_campaign(&app, tenant, "Spring").await;
        let lead = app
            .store
            .add_lead(
                tenant,
                campaign,
                NewLead::new(E164::parse("+15557654321").unwrap()),
                at("2025-06-18T12:00:00Z"),
            )
            .await
            .unwrap()
            .lead
            .id;
        let mut c = NewCall::new("+15557654321", at("2025-06-17T10:00:00Z"));
        c.campaign_id = Some(campaign);
        c.lead_id = Some(lead);
        c.status = CallStatus::Completed;
        c.outcome = Some(Outcome::GoalAchieved);
        c.end_reason = Some("caller_hangup".into());
        c.answered_at = Some(at("2025-06-17T10:00:05Z"));
        c.ended_at = Some(at("2025-06-17T10:02:05Z"));
        c.duration_seconds = 120;
        c.summary = Some("Booked a demo.".into());
        let call = app.store.insert_call(tenant, c).await.unwrap();

        let path = format!("/api/v1/calls/{call}");
        let (s, v) = json(app.get_auth(&path, &token).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v,
            json!({
                "id": call.to_string(),
                "timestamp": "2025-06-17T10:00:00Z",
                "to_number": "+15557654321",
                "status": "completed",
                "duration_seconds": 120,
                "outcome": "goal_achieved",
                "transcript": null,
                "summary": "Booked a demo.",
                "recording_id": null,
                "campaign_id": campaign.to_string(),
                "lead_id": lead.to_string(),
                "answered_at": "2025-06-17T10:00:05Z",
                "ended_at": "2025-06-17T10:02:05Z",
                "end_reason": "caller_hangup",
            })
        );

        // No transcript yet.
        let (s, v) = json(app.get_auth(&format!("{path}/transcript"), &token).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (404, Some("Transcript not found"))
        );

        app.store
            .save_transcript(
                tenant,
                call,
                sample_transcript(at("2025-06-17T10:00:06Z")),
                at("2025-06-17T10:02:06Z"),
            )
            .await
            .unwrap();
        let expected_json = json!({
            "format": "json",
            "call_id": call.to_string(),
            "turns": [
                {"role": "assistant", "content": "Hi, this is Ann from Acme.", "timestamp": "2025-06-17T10:00:06Z"},
                {"role": "user", "content": "hello there", "timestamp": "2025-06-17T10:00:09Z", "confidence": 0.5},
                {"role": "assistant", "content": "Great", "timestamp": "2025-06-17T10:00:11Z", "interrupted": true},
            ],
            "metadata": {
                "word_count": 9,
                "turn_count": 3,
                "user_word_count": 2,
                "assistant_word_count": 7,
                "created_at": "2025-06-17T10:02:06Z",
            }
        });
        for q in ["", "?format=json"] {
            let (s, v) = json(app.get_auth(&format!("{path}/transcript{q}"), &token).await).await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(v, expected_json, "{q}");
        }
        let (s, v) = json(
            app.get_auth(&format!("{path}/transcript?format=text"), &token)
                .await,
        )
        .await;
        assert_eq!(s, 200);
        let full = "Assistant: Hi, this is Ann from Acme.\nUser: hello there\nAssistant: Great";
        assert_eq!(
            v,
            json!({"format": "text", "call_id": call.to_string(), "transcript": full})
        );
        for bad in ["xml", "JSON", ""] {
            let (s, v) = json(
                app.get_auth(&format!("{path}/transcript?format={bad}"), &token)
                    .await,
            )
            .await;
            assert_eq!(s, 422, "{bad}: {v}");
            assert!(v["fields"]["format"].is_string(), "{v}");
        }

        // The detail now carries the transcript text.
        let (_, v) = json(app.get_auth(&path, &token).await).await;
        assert_eq!(v["transcript"], full);

        // Unknown ids: 404 with the route's detail; a non-UUID id is 404 too.
        let random = uuid::Uuid::new_v4();
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/calls/{random}"), &token)
                .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Call not found")));
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/calls/{random}/transcript"), &token)
                .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Call not found")));
        let (s, _) = json(app.get_auth("/api/v1/calls/not-a-uuid", &token).await).await;
        assert_eq!(s, 404);
        let (s, _) = json(
            app.get_auth("/api/v1/calls/not-a-uuid/transcript", &token)
                .await,
        )
        .await;
        assert_eq!(s, 404);
    });
}

#[tokio::test]
async fn call_metrics_after_the_session_ends() {
    for_each_engine!(|app| {
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let token = app.register_owner("metrics@example.com", "Metrics").await;
        let other = app.register_owner("metrics-b@example.com", "Other").await;
        let tenant = tenant_of(&app, &token).await;
        let call = seed_call(
            &app,
            tenant,
            at("2025-06-18T11:00:00Z"),
            CallStatus::InProgress,
            None,
            0,
        )
        .await;
        let path = format!("/api/v1/calls/{call}/metrics");

        // Live call: nothing stored yet, and no `opener_ms`.
        let (s, v) = json(app.get_auth(&path, &token).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v,
            json!({"call_id": call.to_string(), "counters": null, "turns": []})
        );

        // Teardown writes the counters and two J1 records (given out of order).
        let counters = json!({"inbound_frames": 1500, "outbound_frames": 900, "barge_ins": 1, "opener_ms": 640});
        let end = SessionEnd {
            connected_at: None,
            ended_at: at("2025-06-18T11:00:30Z"),
            outcome: Outcome::Answered,
            end_reason: "caller_hangup".into(),
            opted_out: false,
            goal_achieved: false,
            goal_detail: None,
            counters: counters.clone(),
        };
        let second = TurnMetric {
            turn_index: 1,
            speech_end: Some(at("2025-06-18T11:00:20.250Z")),
            endpoint_delay_ms: Some(12),
            stt_final_ms: Some(10),
            llm_ttft_ms: Some(101),
            first_sentence_ms: Some(103),
            tts_ttfb_ms: Some(51),
            first_frame_ms: Some(190),
            speculative: false,
        };
        let first = TurnMetric {
            turn_index: 0,
            speech_end: Some(at("2025-06-18T11:00:08Z")),
            first_frame_ms: Some(730),
            ..Default::default()
        };
        assert!(app
            .store
            .finish_session_call(tenant, call, end, vec![second, first])
            .await
            .unwrap());

        let (s, v) = json(app.get_auth(&path, &token).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v,
            json!({
                "call_id": call.to_string(),
                "counters": counters,
                "opener_ms": 640,
                "turns": [
                    {
                        "turn_index": 0,
                        "speech_end": "2025-06-18T11:00:08.000Z",
                        "endpoint_delay_ms": null,
                        "stt_final_ms": null,
                        "llm_ttft_ms": null,
                        "first_sentence_ms": null,
                        "tts_ttfb_ms": null,
                        "first_frame_ms": 730,
                        "speculative": false,
                    },
                    {
                        "turn_index": 1,
                        "speech_end": "2025-06-18T11:00:20.250Z",
                        "endpoint_delay_ms": 12,
                        "stt_final_ms": 10,
                        "llm_ttft_ms": 101,
                        "first_sentence_ms": 103,
                        "tts_ttfb_ms": 51,
                        "first_frame_ms": 190,
                        "speculative": false,
                    },
                ],
            })
        );
        // The trailing-slash form is served the same.
        let (s, _) = json(app.get_auth(&format!("{path}/"), &token).await).await;
        assert_eq!(s, 200);

        // Another tenant, an unknown id and a non-UUID id: 404 with the route's detail.
        let (s, v) = json(app.get_auth(&path, &other).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (404, Some("Call not found")),
            "{v}"
        );
        assert_eq!(v["code"], "not_found", "{v}");
        let random = uuid::Uuid::new_v4();
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/calls/{random}/metrics"), &token)
                .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Call not found")));
        let (s, _) = json(
            app.get_auth("/api/v1/calls/not-a-uuid/metrics", &token)
                .await,
        )
        .await;
        assert_eq!(s, 404);
        // Without a session: 401.
        let r = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        // Described in the OpenAPI document.
        let (_, doc) = json(
            app.client
                .get(app.url("/api/v1/openapi.json"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let op = &doc["paths"]["/api/v1/calls/{call_id}/metrics"]["get"];
        assert_eq!(op["operationId"], "get_call_metrics", "{op}");

        // Counters without `opener_ms` (no agent audio): the field is omitted.
        let quiet = seed_call(
            &app,
            tenant,
            at("2025-06-18T11:05:00Z"),
            CallStatus::InProgress,
            None,
            0,
        )
        .await;
        let end = SessionEnd {
            connected_at: None,
            ended_at: at("2025-06-18T11:05:10Z"),
            outcome: Outcome::AgentError,
            end_reason: "error".into(),
            opted_out: false,
            goal_achieved: false,
            goal_detail: None,
            counters: json!({"inbound_frames": 500}),
        };
        app.store
            .finish_session_call(tenant, quiet, end, vec![])
            .await
            .unwrap();
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/calls/{quiet}/metrics"), &token)
                .await,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v,
            json!({"call_id": quiet.to_string(), "counters": {"inbound_frames": 500}, "turns": []})
        );
    });
}
