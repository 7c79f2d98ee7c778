//! Voice-session flows through the real media socket against the provider mocks: a caller
//! barging in on a long reply, the agent ending the call with its `end_call` tool, and a
//! speech-to-text failure mid-call. No test sleeps: every wait is an awaited event with a
//! timeout.

use crate::voice_support::*;
use futures::SinkExt;
use talky_core::model::CallStatus;
use talky_core::ports::store::NewCall;
use talky_core::Clock;
use talky_store::Engine;
use talky_testkit::{deepgram, openai};
use tokio_tungstenite::tungstenite::Message;

/// About 5.6 s of audio at 50 ms per character, in three sentences (the per-reply maximum).
const LONG_REPLY: &str = "Sure thing. Our office opens at nine in the morning on weekdays. \
                          We also have late hours on Thursdays until eight.";
const INTERRUPTED: &str = " [interrupted by caller]";

#[tokio::test]
async fn a_caller_barging_in_clears_the_reply_and_only_the_heard_part_is_kept() {
    let mocks = VoiceMocks::scripted(
        &["When do you open?", "What about Saturday?"],
        openai::MockReply::text("Saturdays too."),
        50,
    )
    .await;
    mocks.llm.push_reply(openai::MockReply::text(LONG_REPLY));
    let app = spawn_voice_app(&mocks, Engine::Sqlite).await;
    let t = demo_tenant(&app, "barge@example.com").await;
    let (call_id, mut ws) = answered_test_call(&app, &t).await;

    // The caller asks; the long reply starts. Read about 1 s of its audio.
    send_audio(&mut ws, &caller_turn(1000)).await;
    let mut reply_frames = 0;
    while reply_frames < 50 {
        if let Message::Binary(b) = next_message(&mut ws).await {
            assert_eq!(b.len(), 640);
            if mocks.llm.request_count() == 1 {
                reply_frames += 1;
            }
        }
    }

    // The caller talks over it (the turn stays open: no trailing silence yet).
    send_audio(&mut ws, &deepgram::voiced_pcm(600)).await;
    // Frames already sent before the clear may still arrive ahead of it.
    loop {
        if let Message::Text(t) = next_message(&mut ws).await {
            if is_clear(&t) {
                break;
            }
        }
    }
    // While the caller is still talking, no frame follows the clear (an uncleared reply would
    // send one every 20 ms).
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(600), async {
        loop {
            match ws_next(&mut ws).await {
                Message::Binary(_) => return,
                other => assert!(!matches!(other, Message::Close(_)), "{other:?}"),
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "audio after the clear");

    // The caller finishes: the next LLM request follows, and still no frame of the old reply.
    send_audio(&mut ws, &deepgram::silent_pcm(900)).await;
    let mut frames_before_request = 0;
    while mocks.llm.request_count() < 2 {
        if let Message::Binary(_) = next_message(&mut ws).await {
            if mocks.llm.request_count() < 2 {
                frames_before_request += 1;
            }
        }
    }
    assert_eq!(
        frames_before_request, 0,
        "frames between the clear and the next LLM request"
    );

    // The history holds what was heard, marked as cut, and none of the unheard tail.
    let messages = mocks.llm.requests()[1].messages();
    let tail: Vec<(&str, &str)> = messages[messages.len() - 3..]
        .iter()
        .map(|(r, c)| (r.as_str(), c.as_str()))
        .collect();
    assert_eq!(tail[0], ("user", "When do you open?"), "{messages:?}");
    assert_eq!(tail[2], ("user", "What about Saturday?"), "{messages:?}");
    assert_eq!(tail[1].0, "assistant", "{messages:?}");
    let heard = tail[1]
        .1
        .strip_suffix(INTERRUPTED)
        .unwrap_or_else(|| panic!("not marked as interrupted: {:?}", tail[1].1));
    assert!(
        !heard.is_empty() && LONG_REPLY.starts_with(heard),
        "{heard:?}"
    );
    assert!(
        !heard.contains("weekdays") && !heard.contains("Thursdays"),
        "unheard tail kept: {heard:?}"
    );

    ws.close(None).await.unwrap();
    assert_eq!(next_session_end(&app).await, call_id);
    let transcript = transcript(&app, t.tenant, call_id).await;
    let cut: Vec<_> = transcript.turns.iter().filter(|t| t.interrupted).collect();
    assert_eq!(cut.len(), 1, "{:?}", transcript.turns);
    assert_eq!(cut[0].content, heard);
    assert!(
        !transcript.full_text.contains("Thursdays"),
        "{}",
        transcript.full_text
    );
    app.cleanup().await;
}

/// The next message, whatever it is (the socket must stay open).
async fn ws_next(ws: &mut Ws) -> Message {
    use futures::StreamExt;
    match ws.next().await {
        Some(Ok(m)) => m,
        other => panic!("media socket ended early: {other:?}"),
    }
}

/// A caller turn answered with a goodbye and the `end_call` tool: the session ends on its
/// own, the tool is never voiced, and the call is finalised as the agent's end. A call with a
/// carrier id (`carrier`) must also be hung up through the telephony port.
async fn agent_ends_the_call(carrier: Option<&str>, engine: Engine) {
    let goodbye = openai::MockReply::text("Great, you're all set. Goodbye!").with_tool_call(
        "end_call",
        r#"{"outcome":"goal_achieved","reason":"booked"}"#,
    );
    let mocks = VoiceMocks::scripted(&["Book me for Tuesday."], goodbye, 10).await;
    let app = spawn_voice_app(&mocks, engine).await;
    let t = demo_tenant(&app, "agent-end@example.com").await;
    let (call_id, ws_url) = match carrier {
        None => start_test_call(&app, &t).await,
        Some(provider_call_id) => {
            // A dialled call the carrier answered, and the media URL its answer webhook
            // would hand out (built like the test-call route builds it).
            let now = app.clock.now();
            let mut call = NewCall::new("+14155550123", now);
            call.campaign_id = Some(t.campaign);
            call.provider = Some("vonage".into());
            call.provider_call_id = Some(provider_call_id.to_string());
            call.status = CallStatus::Answered;
            let call_id = app.store.insert_call(t.tenant, call).await.unwrap();
            let (token, _) = talky_server::auth::media::mint(
                &app.media_key,
                t.tenant,
                call_id,
                Some(provider_call_id.to_string()),
                now.timestamp(),
            );
            let base = app.base.replacen("http://", "ws://", 1);
            (
                call_id,
                format!("{base}/api/v1/ws/voice/{call_id}?token={token}"),
            )
        }
    };
    let mut ws = answer(&ws_url).await;
    send_audio(&mut ws, &caller_turn(800)).await;
    let (frames, _) = until_server_closes(&mut ws).await;
    assert!(frames > 0, "the goodbye was spoken");
    assert_eq!(next_session_end(&app).await, call_id);

    let tools = &mocks.llm.requests()[0].body["tools"];
    assert!(
        tools
            .as_array()
            .is_some_and(|ts| ts.iter().any(|t| t["function"]["name"] == "end_call")),
        "end_call offered: {tools}"
    );
    assert_eq!(mocks.llm.request_count(), 1);
    let spoken = mocks.spoken();
    assert!(spoken.iter().any(|s| s.contains("Goodbye!")), "{spoken:?}");
    assert!(
        spoken
            .iter()
            .all(|s| !s.contains("end_call") && !s.contains("goal_achieved") && !s.contains('{')),
        "the tool call was voiced: {spoken:?}"
    );
    let detail = app.store.get_call(t.tenant, call_id).await.unwrap();
    assert_eq!(detail.status, CallStatus::Completed);
    assert_eq!(detail.end_reason.as_deref(), Some("agent_end"));
    let transcript = transcript(&app, t.tenant, call_id).await;
    assert!(
        transcript.full_text.contains("User: Book me for Tuesday.")
            && transcript
                .full_text
                .ends_with("Assistant: Great, you're all set. Goodbye!"),
        "{}",
        transcript.full_text
    );
    let hung_up: Vec<String> = app
        .carrier
        .hangups()
        .into_iter()
        .map(|c| c.provider_call_id)
        .collect();
    match carrier {
        None => assert!(
            hung_up.is_empty(),
            "a test call has no carrier: {hung_up:?}"
        ),
        Some(id) => assert_eq!(hung_up, [id], "hung up through the telephony port, once"),
    }
    app.cleanup().await;
}

#[tokio::test]
async fn the_agents_end_call_tool_ends_a_test_call() {
    agent_ends_the_call(None, Engine::Sqlite).await;
}

#[tokio::test]
async fn the_agents_end_call_tool_hangs_up_the_carrier_call() {
    for engine in talky_store::testing::engines() {
        agent_ends_the_call(Some("5b0c6d8e-2f4a-4c1e-9a7b-3d2e1f0a9b8c"), engine).await;
    }
}

#[tokio::test]
async fn an_unrecoverable_stt_failure_ends_the_call_and_persists_it() {
    for engine in talky_store::testing::engines() {
        stt_failure_flow(engine).await;
    }
}

async fn stt_failure_flow(engine: Engine) {
    let mocks = VoiceMocks::scripted(
        &["When do you open?"],
        openai::MockReply::text("We open at nine."),
        10,
    )
    .await;
    let app = spawn_voice_app(&mocks, engine).await;
    let t = demo_tenant(&app, "stt-failure@example.com").await;
    let (call_id, mut ws) = answered_test_call(&app, &t).await;
    send_audio(&mut ws, &caller_turn(800)).await;
    while mocks.llm.request_count() == 0 {
        next_message(&mut ws).await;
    }

    // Mid-call the recogniser crashes and refuses every reconnect.
    mocks
        .stt
        .set_fault(deepgram::MockFault::RejectUpgrade { status: 503 });
    mocks.stt.kick_all(1011, "mock: internal error");
    let (frames, _) = until_server_closes(&mut ws).await;
    assert!(frames > 0);
    assert_eq!(next_session_end(&app).await, call_id);

    let connections = mocks.stt.connections();
    let rejected: Vec<Option<u16>> = connections.iter().map(|c| c.rejected).collect();
    assert_eq!(
        rejected,
        [None, Some(503), Some(503), Some(503)],
        "the stream, then three failed reconnects"
    );
    assert_eq!(mocks.llm.request_count(), 1);
    let spoken = mocks.spoken();
    assert!(
        spoken.iter().any(|s| s.contains("technical trouble")),
        "{spoken:?}"
    );

    let detail = app.store.get_call(t.tenant, call_id).await.unwrap();
    assert_eq!(detail.status, CallStatus::Completed);
    assert_eq!(detail.end_reason.as_deref(), Some("error"));
    assert!(detail.ended_at.is_some());
    let transcript = transcript(&app, t.tenant, call_id).await;
    assert!(
        transcript.full_text.contains("User: When do you open?"),
        "{}",
        transcript.full_text
    );
    let last = transcript.turns.last().unwrap();
    assert!(
        last.content.contains("technical trouble"),
        "{:?}",
        transcript.turns
    );
    assert_recording_persisted(&app, t.tenant, call_id).await;
    assert!(
        app.carrier.hangups().is_empty(),
        "a test call has no carrier"
    );
    app.cleanup().await;
}

/// Bad input on the media socket (K): malformed JSON, a chunk that is not whole samples, then
/// a message over the 256 KiB limit. Nothing panics; the oversized message ends the socket,
/// and the call is still finalised with its recording and counters.
#[tokio::test]
async fn bad_media_input_is_counted_and_an_oversized_message_still_persists_the_call() {
    let mocks = VoiceMocks::scripted(&[], openai::MockReply::text("Okay."), 10).await;
    let app = spawn_voice_app(&mocks, Engine::Sqlite).await;
    let t = demo_tenant(&app, "bad-input@example.com").await;
    let (call_id, mut ws) = answered_test_call(&app, &t).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    ws.send(Message::Text(r#"{"event":"websocket:unknown"}"#.into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![1u8; 641].into()))
        .await
        .unwrap();
    send_audio(&mut ws, &deepgram::silent_pcm(200)).await;
    // Over the socket's 256 KiB message limit: the server drops the connection.
    let _ = ws.send(Message::Binary(vec![0u8; 300 * 1024].into())).await;
    assert_eq!(next_session_end(&app).await, call_id);

    let detail = app.store.get_call(t.tenant, call_id).await.unwrap();
    assert_eq!(detail.status, CallStatus::Completed);
    assert!(detail.end_reason.is_some());
    let metrics = app.store.call_metrics(t.tenant, call_id).await.unwrap();
    let counters = metrics.counters.expect("J2 counters saved");
    assert!(
        counters["bad_inbound_chunks"].as_u64().unwrap_or(0) >= 1,
        "{counters}"
    );
    assert!(
        counters["inbound_frames"].as_u64().unwrap_or(0) >= 10,
        "{counters}"
    );
    assert_recording_persisted(&app, t.tenant, call_id).await;
    app.cleanup().await;
}
