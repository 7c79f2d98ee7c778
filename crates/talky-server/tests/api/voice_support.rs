//! Shared setup of the voice tests: the three provider mocks wired into a test app, a tenant
//! with a demo campaign, test calls, and a media-socket client speaking the Vonage protocol
//! (JSON text events, 640-byte 16 kHz s16le binary frames).

use crate::helpers::{json, spawn_app_with, Options, TestApp};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use talky_core::ports::store::{NewCampaign, Page, Transcript};
use talky_core::{CallId, CampaignId, TenantId};
use talky_providers::cartesia::{CartesiaConfig, CartesiaTts};
use talky_providers::deepgram::{DeepgramConfig, DeepgramStt};
use talky_providers::llm::{LlmConfig, OpenAiCompatLlm};
use talky_testkit::{cartesia, deepgram, openai};
use tokio_tungstenite::tungstenite::Message;

/// Upper bound for any awaited event (a failing test fails, a slow machine still passes).
pub const WAIT: Duration = Duration::from_secs(20);

/// How long the socket must stay quiet before the agent counts as finished speaking: the
/// server sends audio at most 300 ms ahead of playout and the session treats the agent as
/// audible for 200 ms after that, so caller audio sent later is a turn, not a barge-in.
const AGENT_QUIET: Duration = Duration::from_millis(800);

/// The campaign opener of [`demo_tenant`].
pub const OPENER: &str = "Hi, this is Sam from Acme. Got a minute?";

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The provider mocks of one test.
pub struct VoiceMocks {
    pub stt: deepgram::MockDeepgram,
    pub llm: openai::MockLlm,
    pub tts: cartesia::MockCartesia,
}

impl VoiceMocks {
    pub async fn spawn(
        stt: deepgram::MockDeepgramConfig,
        llm: openai::MockLlmConfig,
        tts: cartesia::MockCartesiaConfig,
    ) -> Self {
        Self {
            stt: deepgram::MockDeepgram::spawn(stt).await,
            llm: openai::MockLlm::spawn(llm).await,
            tts: cartesia::MockCartesia::spawn(tts).await,
        }
    }

    /// Mocks that hand out `transcripts` one per caller utterance, answer every LLM request
    /// with `reply` unless another reply was pushed, and speak `ms_per_char` per character.
    pub async fn scripted(
        transcripts: &[&str],
        reply: openai::MockReply,
        ms_per_char: u32,
    ) -> Self {
        Self::spawn(
            deepgram::MockDeepgramConfig::with_transcripts(transcripts.iter().copied()),
            openai::MockLlmConfig {
                default_reply: reply,
                ..Default::default()
            },
            cartesia::MockCartesiaConfig {
                ms_per_char,
                ..Default::default()
            },
        )
        .await
    }

    /// The real provider clients, pointed at the mocks.
    fn providers(&self) -> talky_server::voice::VoiceProviders {
        talky_server::voice::VoiceProviders {
            stt: Arc::new(
                DeepgramStt::new(DeepgramConfig::v1("test-key").with_base_url(self.stt.base_url()))
                    .unwrap(),
            ),
            llm: Arc::new(
                OpenAiCompatLlm::new(LlmConfig {
                    base_url: self.llm.base_url(),
                    api_key: Some("test-key".into()),
                    ..LlmConfig::default()
                })
                .unwrap(),
            ),
            tts: Arc::new(
                CartesiaTts::new(CartesiaConfig {
                    base_url: self.tts.base_url(),
                    api_key: "test-key".into(),
                    voice_id: "voice-1".into(),
                    ..CartesiaConfig::default()
                })
                .unwrap(),
            ),
        }
    }

    /// Every transcript the TTS mock was asked to speak, in order.
    pub fn spoken(&self) -> Vec<String> {
        self.tts
            .log()
            .into_iter()
            .filter_map(|e| match e {
                cartesia::CartesiaLogEntry::Request { transcript, .. }
                | cartesia::CartesiaLogEntry::Http { transcript, .. } => Some(transcript),
                _ => None,
            })
            .collect()
    }
}

/// A test app on `engine` whose voice sessions use the mocks.
pub async fn spawn_voice_app(mocks: &VoiceMocks, engine: talky_store::Engine) -> TestApp {
    spawn_app_with(
        engine,
        Options {
            voice: Some(mocks.providers()),
            ..Default::default()
        },
    )
    .await
}

/// A registered tenant with one campaign whose agent is Sam from Acme.
pub struct DemoTenant {
    pub owner: String,
    pub tenant: TenantId,
    pub campaign: CampaignId,
}

pub async fn demo_tenant(app: &TestApp, email: &str) -> DemoTenant {
    let owner = app.register_owner(email, "Voice Co").await;
    let (_, me) = json(app.get_auth("/api/v1/auth/me", &owner).await).await;
    let tenant: TenantId = me["tenant_id"].as_str().unwrap().parse().unwrap();
    let campaign = app
        .store
        .create_campaign(
            tenant,
            NewCampaign {
                name: "Demo".into(),
                system_prompt: "You are Sam from Acme. Be brief.".into(),
                agent_name: Some("Sam".into()),
                company_name: Some("Acme".into()),
                opener: Some(OPENER.into()),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    DemoTenant {
        owner,
        tenant,
        campaign: campaign.id,
    }
}

/// `POST /campaigns/{id}/test-call` as the owner: the call and its media socket URL.
pub async fn start_test_call(app: &TestApp, t: &DemoTenant) -> (CallId, String) {
    let (s, v) = json(
        app.post_auth(
            &format!("/api/v1/campaigns/{}/test-call", t.campaign),
            &t.owner,
            serde_json::json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let call_id = v["call_id"].as_str().unwrap().parse().unwrap();
    (call_id, v["ws_url"].as_str().unwrap().to_string())
}

/// Opens the media socket and announces the audio format, as Vonage does.
pub async fn connect(ws_url: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    ws.send(Message::Text(
        r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}"#.into(),
    ))
    .await
    .unwrap();
    ws
}

/// The next message from the server (fails the test if none comes or the socket ends).
pub async fn next_message(ws: &mut Ws) -> Message {
    match tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a message from the media socket")
    {
        Some(Ok(m)) => m,
        other => panic!("media socket ended early: {other:?}"),
    }
}

/// Connects to the media socket and lets the opener play out.
pub async fn answer(ws_url: &str) -> Ws {
    let mut ws = connect(ws_url).await;
    until_agent_quiet(&mut ws).await;
    ws
}

/// A test call of the demo campaign with its media socket open, once the opener has played.
pub async fn answered_test_call(app: &TestApp, t: &DemoTenant) -> (CallId, Ws) {
    let (call_id, ws_url) = start_test_call(app, t).await;
    (call_id, answer(&ws_url).await)
}

/// Sends caller audio as 640-byte frames.
pub async fn send_audio(ws: &mut Ws, pcm: &[u8]) {
    for f in pcm.chunks(640) {
        ws.send(Message::Binary(Bytes::copy_from_slice(f)))
            .await
            .unwrap();
    }
}

/// A caller turn for the mock STT: `voiced_ms` of voice, then enough silence to end it.
pub fn caller_turn(voiced_ms: u32) -> Vec<u8> {
    let mut pcm = deepgram::voiced_pcm(voiced_ms);
    pcm.extend(deepgram::silent_pcm(900));
    pcm
}

/// Reads agent audio until the agent has finished speaking (the socket stays quiet for
/// [`AGENT_QUIET`] after at least one frame). Returns the number of frames read.
pub async fn until_agent_quiet(ws: &mut Ws) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut frames = 0usize;
    loop {
        let next = if frames == 0 {
            tokio::time::timeout_at(deadline, ws.next()).await
        } else {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the agent never stopped"
            );
            tokio::time::timeout(AGENT_QUIET, ws.next()).await
        };
        match next {
            Err(_) => {
                assert!(frames > 0, "no agent audio");
                return frames;
            }
            Ok(Some(Ok(Message::Binary(b)))) => {
                assert_eq!(b.len(), 640, "exact 640-byte frames");
                frames += 1;
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("media socket ended early: {other:?}"),
        }
    }
}

/// Reads until the server closes the socket (the session ended on its own). Returns the
/// binary frames and text messages received on the way.
pub async fn until_server_closes(ws: &mut Ws) -> (usize, Vec<String>) {
    let (mut frames, mut texts) = (0, Vec::new());
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the server ends the call")
        {
            Some(Ok(Message::Binary(_))) => frames += 1,
            Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code));
                assert_eq!(code, Some(1000), "normal close");
                return (frames, texts);
            }
            Some(Ok(_)) => {}
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    }
}

/// Whether a text message is the Vonage `clear` action.
pub fn is_clear(text: &str) -> bool {
    serde_json::from_str::<Value>(text).ok() == Some(serde_json::json!({"action":"clear"}))
}

/// The next call whose session ended and was persisted.
pub async fn next_session_end(app: &TestApp) -> CallId {
    tokio::time::timeout(WAIT, async {
        app.session_ended.lock().await.recv().await.unwrap()
    })
    .await
    .expect("session end")
}

/// The call's saved transcript.
pub async fn transcript(app: &TestApp, tenant: TenantId, call: CallId) -> Transcript {
    app.store
        .get_transcript(tenant, call)
        .await
        .unwrap()
        .expect("transcript saved")
}

/// The call has exactly one completed recording, and its WAV file matches the row.
pub async fn assert_recording_persisted(app: &TestApp, tenant: TenantId, call: CallId) {
    let (recs, _) = app
        .store
        .list_recordings(tenant, Some(call), Page::new(1, 10))
        .await
        .unwrap();
    assert_eq!(recs.len(), 1, "recording persisted");
    let rec = app.store.get_recording(tenant, recs[0].id).await.unwrap();
    let wav = std::fs::read(app.recordings_dir.join(&rec.storage_path)).unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(wav.len() as i64, rec.file_size_bytes);
}
