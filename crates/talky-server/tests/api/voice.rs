//! A real voice session through the media socket against the provider mocks (issue 4):
//! test-call → socket → opener audio → a caller turn answered with streamed audio →
//! caller hang-up → transcript, recording and the finalised call persisted.

use crate::helpers::json;
use crate::voice_support::*;
use futures::StreamExt;
use talky_testkit::openai;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_test_call_talks_and_persists_on_caller_hangup() {
    for engine in talky_store::testing::engines() {
        caller_hangup_flow(engine).await;
    }
}

async fn caller_hangup_flow(engine: talky_store::Engine) {
    let mocks = VoiceMocks::scripted(
        &["Yes, tell me more please."],
        openai::MockReply::text("Great. We book appointments for you. Would a demo help?"),
        5,
    )
    .await;
    let (llm, app) = (&mocks.llm, spawn_voice_app(&mocks, engine).await);
    let t = demo_tenant(&app, "voice@example.com").await;
    let (tenant, campaign) = (t.tenant, t.campaign);

    // A foreign or unknown campaign gets no test call.
    let other = app.register_owner("other-voice@example.com", "Other").await;
    let r = app
        .post_auth(
            &format!("/api/v1/campaigns/{campaign}/test-call"),
            &other,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 404);

    let (call_id, ws_url) = start_test_call(&app, &t).await;
    assert!(ws_url.starts_with("ws://"));

    // Without the token the socket is closed with 1008 and no session starts.
    let bare = ws_url.split('?').next().unwrap().to_string();
    let (mut ws_bad, _) = tokio_tungstenite::connect_async(&bare).await.unwrap();
    match tokio::time::timeout(WAIT, ws_bad.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected a 1008 close, got {other:?}"),
    }

    let mut ws = connect(&ws_url).await;

    // The agent speaks first: exact 640-byte frames.
    let mut agent_frames = 0usize;
    while agent_frames < 20 {
        match next_message(&mut ws).await {
            Message::Binary(b) => {
                assert_eq!(b.len(), 640);
                agent_frames += 1;
            }
            Message::Text(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let spoken = mocks.spoken();
    assert!(
        spoken.iter().any(|t| t.contains("recorded")),
        "disclosure first: {spoken:?}"
    );

    // The caller answers: 1 s of voice, then silence ends the turn at the mock STT.
    send_audio(&mut ws, &caller_turn(1000)).await;
    // The reply arrives as streamed audio after the LLM was asked with the caller's words.
    while llm.request_count() == 0 {
        next_message(&mut ws).await;
    }
    let asked = llm.last_request().unwrap();
    assert!(
        asked
            .messages()
            .iter()
            .any(|(role, text)| role == "user" && text.contains("tell me more")),
        "{:?}",
        asked.messages()
    );
    let mut reply_frames = 0;
    while reply_frames < 10 {
        if let Message::Binary(b) = next_message(&mut ws).await {
            assert_eq!(b.len(), 640);
            reply_frames += 1;
        }
    }

    // The caller hangs up.
    ws.close(None).await.unwrap();
    assert_eq!(next_session_end(&app).await, call_id);

    let detail = app.store.get_call(tenant, call_id).await.unwrap();
    assert_eq!(detail.status, talky_core::model::CallStatus::Completed);
    assert_eq!(detail.end_reason.as_deref(), Some("caller_hangup"));
    assert!(detail.answered_at.is_some());
    let transcript = transcript(&app, tenant, call_id).await;
    assert!(
        transcript
            .full_text
            .contains("User: Yes, tell me more please."),
        "{}",
        transcript.full_text
    );
    assert!(transcript.full_text.contains("Assistant:"));
    assert_recording_persisted(&app, tenant, call_id).await;

    // E9: stopping the campaign ends a live in-process session (a test call has no carrier).
    let (second, ws_url) = start_test_call(&app, &t).await;
    let mut ws2 = connect(&ws_url).await;
    while !matches!(next_message(&mut ws2).await, Message::Binary(_)) {}
    let (s, v) = json(
        app.post_auth(
            &format!("/api/v1/campaigns/{campaign}/stop"),
            &t.owner,
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["calls_hung_up"], 1, "{v}");
    assert_eq!(next_session_end(&app).await, second, "stopped session ends");
    let detail = app.store.get_call(tenant, second).await.unwrap();
    assert_eq!(detail.end_reason.as_deref(), Some("campaign_stopped"));
    app.cleanup().await;
}
