//! A real voice session through the media socket against the provider mocks (issue 4):
//! test-call → socket → opener audio → a caller turn answered with streamed audio →
//! caller hang-up → transcript, recording and the finalised call persisted.

use crate::helpers::{json, spawn_app_with, Options};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use talky_core::ports::store::NewCampaign;
use talky_providers::cartesia::{CartesiaConfig, CartesiaTts};
use talky_providers::deepgram::{DeepgramConfig, DeepgramStt};
use talky_providers::llm::{LlmConfig, OpenAiCompatLlm};
use talky_testkit::{cartesia, deepgram, openai};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

fn frames(pcm: &[u8]) -> Vec<Bytes> {
    pcm.chunks(640).map(Bytes::copy_from_slice).collect()
}

#[tokio::test]
async fn a_test_call_talks_and_persists_on_caller_hangup() {
    let stt = deepgram::MockDeepgram::spawn(deepgram::MockDeepgramConfig::with_transcripts([
        "Yes, tell me more please.",
    ]))
    .await;
    let llm = openai::MockLlm::spawn(openai::MockLlmConfig {
        default_reply: openai::MockReply::text(
            "Great. We book appointments for you. Would a demo help?",
        ),
        ..Default::default()
    })
    .await;
    let tts = cartesia::MockCartesia::spawn(cartesia::MockCartesiaConfig {
        ms_per_char: 5,
        ..Default::default()
    })
    .await;
    let voice = talky_server::voice::VoiceProviders {
        stt: Arc::new(
            DeepgramStt::new(DeepgramConfig::v1("test-key").with_base_url(stt.base_url())).unwrap(),
        ),
        llm: Arc::new(
            OpenAiCompatLlm::new(LlmConfig {
                base_url: llm.base_url(),
                api_key: Some("test-key".into()),
                ..LlmConfig::default()
            })
            .unwrap(),
        ),
        tts: Arc::new(
            CartesiaTts::new(CartesiaConfig {
                base_url: tts.base_url(),
                api_key: "test-key".into(),
                voice_id: "voice-1".into(),
                ..CartesiaConfig::default()
            })
            .unwrap(),
        ),
    };
    let app = spawn_app_with(
        talky_store::Engine::Sqlite,
        Options {
            voice: Some(voice),
            ..Default::default()
        },
    )
    .await;
    let owner = app.register_owner("voice@example.com", "Voice Co").await;
    let (_, me) = json(app.get_auth("/api/v1/auth/me", &owner).await).await;
    let tenant: talky_core::TenantId = me["tenant_id"].as_str().unwrap().parse().unwrap();
    let campaign = app
        .store
        .create_campaign(
            tenant,
            NewCampaign {
                name: "Demo".into(),
                system_prompt: "You are Sam from Acme. Be brief.".into(),
                agent_name: Some("Sam".into()),
                company_name: Some("Acme".into()),
                opener: Some("Hi, this is Sam from Acme. Got a minute?".into()),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    // A foreign or unknown campaign gets no test call.
    let other = app.register_owner("other-voice@example.com", "Other").await;
    let r = app
        .post_auth(
            &format!("/api/v1/campaigns/{}/test-call", campaign.id),
            &other,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 404);

    let (s, v) = json(
        app.post_auth(
            &format!("/api/v1/campaigns/{}/test-call", campaign.id),
            &owner,
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ws_url = v["ws_url"].as_str().unwrap().to_string();
    let call_id: talky_core::CallId = v["call_id"].as_str().unwrap().parse().unwrap();
    assert!(ws_url.starts_with("ws://"));

    // Without the token the socket is closed with 1008 and no session starts.
    let bare = ws_url.split('?').next().unwrap().to_string();
    let (mut ws_bad, _) = tokio_tungstenite::connect_async(&bare).await.unwrap();
    match tokio::time::timeout(WAIT, ws_bad.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected a 1008 close, got {other:?}"),
    }

    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    ws.send(Message::Text(
        r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}"#.into(),
    ))
    .await
    .unwrap();

    // The agent speaks first: exact 640-byte frames.
    let mut agent_frames = 0usize;
    while agent_frames < 20 {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("opener audio")
            .unwrap()
            .unwrap()
        {
            Message::Binary(b) => {
                assert_eq!(b.len(), 640);
                agent_frames += 1;
            }
            Message::Text(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let spoken: Vec<String> = tts
        .log()
        .into_iter()
        .filter_map(|e| match e {
            cartesia::CartesiaLogEntry::Request { transcript, .. }
            | cartesia::CartesiaLogEntry::Http { transcript, .. } => Some(transcript),
            _ => None,
        })
        .collect();
    assert!(
        spoken.iter().any(|t| t.contains("recorded")),
        "disclosure first: {spoken:?}"
    );

    // The caller answers: 1 s of voice, then silence ends the turn at the mock STT.
    let mut caller = deepgram::voiced_pcm(1000);
    caller.extend(deepgram::silent_pcm(900));
    for f in frames(&caller) {
        ws.send(Message::Binary(f)).await.unwrap();
    }
    // The reply arrives as streamed audio after the LLM was asked with the caller's words.
    let deadline = tokio::time::Instant::now() + WAIT;
    while llm.request_count() == 0 {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("LLM request")
        {
            Some(Ok(_)) => {}
            other => panic!("socket ended early: {other:?}"),
        }
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
        if let Message::Binary(b) = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("reply audio")
            .unwrap()
            .unwrap()
        {
            assert_eq!(b.len(), 640);
            reply_frames += 1;
        }
    }

    // The caller hangs up.
    ws.close(None).await.unwrap();
    let ended = tokio::time::timeout(WAIT, async {
        app.session_ended.lock().await.recv().await.unwrap()
    })
    .await
    .expect("session end");
    assert_eq!(ended, call_id);

    let detail = app.store.get_call(tenant, call_id).await.unwrap();
    assert_eq!(detail.status, talky_core::model::CallStatus::Completed);
    assert_eq!(detail.end_reason.as_deref(), Some("caller_hangup"));
    assert!(detail.answered_at.is_some());
    let transcript = app
        .store
        .get_transcript(tenant, call_id)
        .await
        .unwrap()
        .expect("transcript saved");
    assert!(
        transcript
            .full_text
            .contains("User: Yes, tell me more please."),
        "{}",
        transcript.full_text
    );
    assert!(transcript.full_text.contains("Assistant:"));
    let (recs, _) = app
        .store
        .list_recordings(
            tenant,
            Some(call_id),
            talky_core::ports::store::Page::new(1, 10),
        )
        .await
        .unwrap();
    assert_eq!(recs.len(), 1, "recording persisted");
    let rec = app.store.get_recording(tenant, recs[0].id).await.unwrap();
    let wav = std::fs::read(app.recordings_dir.join(&rec.storage_path)).unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(wav.len() as i64, rec.file_size_bytes);

    // E9: stopping the campaign ends a live in-process session (a test call has no carrier).
    let (_, v) = json(
        app.post_auth(
            &format!("/api/v1/campaigns/{}/test-call", campaign.id),
            &owner,
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    let second: talky_core::CallId = v["call_id"].as_str().unwrap().parse().unwrap();
    let (mut ws2, _) = tokio_tungstenite::connect_async(v["ws_url"].as_str().unwrap())
        .await
        .unwrap();
    ws2.send(Message::Text(
        r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}"#.into(),
    ))
    .await
    .unwrap();
    loop {
        if let Message::Binary(_) = tokio::time::timeout(WAIT, ws2.next())
            .await
            .expect("opener")
            .unwrap()
            .unwrap()
        {
            break;
        }
    }
    let (s, v) = json(
        app.post_auth(
            &format!("/api/v1/campaigns/{}/stop", campaign.id),
            &owner,
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["calls_hung_up"], 1, "{v}");
    let ended = tokio::time::timeout(WAIT, async {
        app.session_ended.lock().await.recv().await.unwrap()
    })
    .await
    .expect("stopped session ends");
    assert_eq!(ended, second);
    let detail = app.store.get_call(tenant, second).await.unwrap();
    assert_eq!(detail.end_reason.as_deref(), Some("campaign_stopped"));
    app.cleanup().await;
}
