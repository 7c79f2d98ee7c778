//! Fakes and a harness for driving a real voice session on tokio's paused clock.
//!
//! Every port is a small in-memory fake the test can script and inspect: STT streams are driven
//! by hand (the test sends `SttEvent`s), the LLM replays scripted steps (tokens, waits, tool
//! calls, failures, stalls), TTS returns constant-valued audio whose length follows the text (so
//! each outbound frame can be traced back to its sentence), the carrier records hang-ups and
//! closes the socket like Vonage does, and the sink keeps every report.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use talky_core::ports::llm::{ChatRequest, FinishReason, Llm, LlmError, LlmEvent, Role};
use talky_core::ports::stt::{
    stt_stream_pair, Stt, SttCommand, SttError, SttEvent, SttOptions, SttStream, SttStreamBackend,
    SttStreamInfo,
};
use talky_core::ports::telephony::{CarrierCall, Telephony, TelephonyError};
use talky_core::ports::tts::{
    tts_session_pair, Tts, TtsChunk, TtsCommand, TtsEncoding, TtsError, TtsRequest, TtsSession,
    TtsSessionOptions,
};
use talky_core::Clock;
use talky_voice::audio::{rms_s16le, tone_s16le};
use talky_voice::session::{
    spawn_session, Outbound, SessionConfig, SessionDeps, SessionHandle, SessionReport, SessionSink,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const CONNECTED: &str =
    r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}"#;
pub const DISCLOSURE: &str = "This call may be recorded.";
pub const OPENER: &str = "Hi, it's Maya from Acme about your order. Got a minute?";

// ------------------------------------------------------------------------------------------
// Clock
// ------------------------------------------------------------------------------------------

pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

// ------------------------------------------------------------------------------------------
// STT
// ------------------------------------------------------------------------------------------

/// Hands every opened stream's backend to the test. `fail_from` makes connects number
/// `n >= fail_from` fail.
#[derive(Default)]
pub struct FakeStt {
    pub backends: Mutex<Vec<SttStreamBackend>>,
    pub connects: Mutex<u32>,
    pub fail_from: Mutex<Option<u32>>,
}

#[async_trait]
impl Stt for FakeStt {
    fn name(&self) -> &str {
        "fake-flux"
    }

    async fn connect(&self, _opts: SttOptions) -> Result<SttStream, SttError> {
        let n = {
            let mut c = self.connects.lock().unwrap();
            *c += 1;
            *c
        };
        if self.fail_from.lock().unwrap().is_some_and(|f| n >= f) {
            return Err(SttError::Rejected {
                status: 503,
                body: "unavailable".into(),
            });
        }
        let (stream, backend) = stt_stream_pair(SttStreamInfo {
            provider: "fake-flux".into(),
            turn_events: true,
            request_id: None,
        });
        self.backends.lock().unwrap().push(backend);
        Ok(stream)
    }
}

impl FakeStt {
    /// Sends an event on the most recent stream.
    pub fn send(&self, ev: SttEvent) {
        let b = self.backends.lock().unwrap();
        b.last()
            .expect("no STT stream open")
            .events
            .unbounded_send(ev)
            .expect("STT receiver dropped");
    }

    /// Audio bytes received on the most recent stream so far.
    pub fn audio_received(&self) -> usize {
        let mut b = self.backends.lock().unwrap();
        let backend = b.last_mut().expect("no STT stream open");
        let mut n = 0;
        while let Ok(cmd) = backend.commands.try_recv() {
            if let SttCommand::Audio(a) = cmd {
                n += a.len();
            }
        }
        n
    }

    /// Sizes of the audio messages received on the most recent stream so far, with `0`
    /// standing for each `Flush`.
    pub fn audio_messages(&self) -> Vec<usize> {
        let mut b = self.backends.lock().unwrap();
        let backend = b.last_mut().expect("no STT stream open");
        let mut sizes = Vec::new();
        while let Ok(cmd) = backend.commands.try_recv() {
            match cmd {
                SttCommand::Audio(a) => sizes.push(a.len()),
                SttCommand::Flush => sizes.push(0),
                _ => {}
            }
        }
        sizes
    }

    pub fn end_of_turn(&self, text: &str) {
        self.send(SttEvent::EndOfTurn {
            turn_index: 0,
            text: text.into(),
            confidence: 0.9,
            words: Vec::new(),
            audio_window_start: 0.0,
            audio_window_end: 0.0,
            manual: false,
        });
    }

    pub fn start_of_turn(&self) {
        self.send(SttEvent::StartOfTurn {
            turn_index: 0,
            text: String::new(),
        });
    }
}

// ------------------------------------------------------------------------------------------
// LLM
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub enum Step {
    Token(&'static str),
    Wait(Duration),
    Tool(&'static str, &'static str),
    Done,
    Stall,
    Fail(LlmError),
}

/// Replays one scripted reply per request (the last script repeats when they run out).
#[derive(Default)]
pub struct FakeLlm {
    pub scripts: Mutex<VecDeque<Vec<Step>>>,
    pub requests: Mutex<Vec<ChatRequest>>,
    pub done_at: Arc<Mutex<Vec<Instant>>>,
}

impl FakeLlm {
    pub fn with(scripts: Vec<Vec<Step>>) -> Self {
        Self {
            scripts: Mutex::new(scripts.into()),
            ..Self::default()
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// (role, content) of request `i`, system prompt excluded.
    pub fn history(&self, i: usize) -> Vec<(Role, String)> {
        self.requests.lock().unwrap()[i]
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| (m.role, m.content.clone()))
            .collect()
    }
}

#[async_trait]
impl Llm for FakeLlm {
    async fn stream_chat(
        &self,
        req: ChatRequest,
    ) -> Result<BoxStream<'static, Result<LlmEvent, LlmError>>, LlmError> {
        self.requests.lock().unwrap().push(req);
        let steps = {
            let mut s = self.scripts.lock().unwrap();
            if s.len() > 1 {
                s.pop_front().unwrap()
            } else {
                s.front()
                    .cloned()
                    .unwrap_or_else(|| vec![Step::Token("Okay."), Step::Done])
            }
        };
        let done_at = self.done_at.clone();
        Ok(futures::stream::unfold(
            (steps.into_iter(), done_at),
            |(mut it, done_at)| async move {
                loop {
                    match it.next()? {
                        Step::Wait(d) => tokio::time::sleep(d).await,
                        Step::Stall => std::future::pending::<()>().await,
                        Step::Token(t) => {
                            return Some((Ok(LlmEvent::Token(t.into())), (it, done_at)))
                        }
                        Step::Tool(name, args) => {
                            return Some((
                                Ok(LlmEvent::ToolCall {
                                    id: "call_1".into(),
                                    name: name.into(),
                                    arguments_json: args.into(),
                                }),
                                (it, done_at),
                            ))
                        }
                        Step::Done => {
                            done_at.lock().unwrap().push(Instant::now());
                            return Some((
                                Ok(LlmEvent::Done {
                                    finish_reason: FinishReason::Stop,
                                    usage: None,
                                }),
                                (it, done_at),
                            ));
                        }
                        Step::Fail(e) => return Some((Err(e), (it, done_at))),
                    }
                }
            },
        )
        .boxed())
    }

    async fn complete(&self, _req: ChatRequest) -> Result<String, LlmError> {
        Ok("summary".into())
    }
}

// ------------------------------------------------------------------------------------------
// TTS
// ------------------------------------------------------------------------------------------

/// Synthesises `ms_per_char` of constant-valued audio per character. Request `i` uses sample
/// value `value_of(i)`, so frames can be traced to sentences. Texts containing a `fail`
/// substring fail. With `sessions`, `open_session` works like Cartesia's WebSocket (contexts).
pub struct FakeTts {
    pub sessions: bool,
    pub contexts: Arc<Mutex<Vec<String>>>,
    pub ms_per_char: u64,
    pub first_byte_delay: Duration,
    pub chunk_bytes: usize,
    pub fail: Mutex<Vec<String>>,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Default for FakeTts {
    fn default() -> Self {
        Self {
            sessions: false,
            contexts: Arc::new(Mutex::new(Vec::new())),
            ms_per_char: 50,
            first_byte_delay: Duration::from_millis(20),
            chunk_bytes: 1002,
            fail: Mutex::new(Vec::new()),
            requests: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

pub fn value_of(request_index: usize) -> i16 {
    3000 + (request_index as i16 % 500) * 2
}

/// Records a request in `log` and returns its audio (constant value, whole samples).
fn render(log: &Mutex<Vec<String>>, text: &str, ms_per_char: u64) -> Bytes {
    let index = {
        let mut r = log.lock().unwrap();
        r.push(text.to_string());
        r.len() - 1
    };
    let samples = text.chars().count() * ms_per_char as usize * 16;
    let value = value_of(index);
    let mut pcm = Vec::with_capacity(samples * 2);
    for _ in 0..samples {
        pcm.extend_from_slice(&value.to_le_bytes());
    }
    Bytes::from(pcm)
}

fn chunked(pcm: Bytes, size: usize) -> Vec<Bytes> {
    (0..pcm.len())
        .step_by(size)
        .map(|i| pcm.slice(i..(i + size).min(pcm.len())))
        .collect()
}

impl FakeTts {
    pub fn texts(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub fn duration_of(&self, text: &str) -> Duration {
        Duration::from_millis(text.chars().count() as u64 * self.ms_per_char)
    }
}

#[async_trait]
impl Tts for FakeTts {
    async fn synthesize_stream(
        &self,
        req: TtsRequest,
    ) -> Result<BoxStream<'static, Result<TtsChunk, TtsError>>, TtsError> {
        let pcm = render(&self.requests, &req.text, self.ms_per_char);
        if self
            .fail
            .lock()
            .unwrap()
            .iter()
            .any(|f| req.text.contains(f.as_str()))
        {
            return Err(TtsError::Http {
                status: 500,
                message: "fake failure".into(),
            });
        }
        let chunks = chunked(pcm, self.chunk_bytes);
        Ok(futures::stream::unfold(
            (chunks.into_iter(), Some(self.first_byte_delay)),
            |(mut it, delay)| async move {
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                let audio = it.next()?;
                Some((
                    Ok(TtsChunk {
                        audio,
                        sample_rate: 16_000,
                        encoding: TtsEncoding::PcmS16le,
                    }),
                    (it, None),
                ))
            },
        )
        .boxed())
    }

    async fn open_session(&self, opts: TtsSessionOptions) -> Result<TtsSession, TtsError> {
        if !self.sessions {
            return Err(TtsError::Unsupported);
        }
        let (session, mut commands) = tts_session_pair(opts);
        let contexts = self.contexts.clone();
        let requests = self.requests.clone();
        let (ms_per_char, chunk, delay) =
            (self.ms_per_char, self.chunk_bytes, self.first_byte_delay);
        // A socket task like Cartesia's: contexts by id; audio for a context's text, then done.
        tokio::spawn(async move {
            let mut sinks = std::collections::HashMap::new();
            while let Some(cmd) = commands.next().await {
                match cmd {
                    TtsCommand::Open { context_id, sink } => {
                        contexts.lock().unwrap().push(context_id.clone());
                        sinks.insert(context_id, sink);
                    }
                    TtsCommand::Text {
                        context_id, text, ..
                    } => {
                        let Some(sink) = sinks.remove(&context_id) else {
                            continue;
                        };
                        let pcm = render(&requests, &text, ms_per_char);
                        tokio::time::sleep(delay).await;
                        for audio in chunked(pcm, chunk) {
                            sink.send(Ok(TtsChunk {
                                audio,
                                sample_rate: 16_000,
                                encoding: TtsEncoding::PcmS16le,
                            }));
                        }
                        // Dropping the sink ends the context's audio stream ("done").
                    }
                    TtsCommand::Cancel { context_id } => {
                        sinks.remove(&context_id);
                    }
                    TtsCommand::Close => break,
                }
            }
        });
        Ok(session)
    }
}

// ------------------------------------------------------------------------------------------
// Carrier and sink
// ------------------------------------------------------------------------------------------

/// Records hang-ups; like Vonage, closes the media socket shortly after a hang-up.
#[derive(Default)]
pub struct FakeCarrier {
    pub hangups: Mutex<Vec<Instant>>,
    pub inbound: OnceLock<talky_voice::session::InboundSender>,
    pub fail: Mutex<bool>,
}

#[async_trait]
impl Telephony for FakeCarrier {
    async fn hang_up(&self, _call: &CarrierCall) -> Result<(), TelephonyError> {
        self.hangups.lock().unwrap().push(Instant::now());
        if *self.fail.lock().unwrap() {
            return Err(TelephonyError::Failed("carrier down".into()));
        }
        if let Some(tx) = self.inbound.get().cloned() {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                tx.closed();
            });
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct FakeSink {
    pub reports: Mutex<Vec<SessionReport>>,
}

#[async_trait]
impl SessionSink for FakeSink {
    async fn finished(&self, report: SessionReport) {
        self.reports.lock().unwrap().push(report);
    }
}

// ------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Duration,
    pub msg: Outbound,
}

pub struct Harness {
    pub t0: Instant,
    pub stt: Arc<FakeStt>,
    pub llm: Arc<FakeLlm>,
    pub tts: Arc<FakeTts>,
    pub carrier: Arc<FakeCarrier>,
    pub sink: Arc<FakeSink>,
    pub handle: Option<SessionHandle>,
    pub inbound: talky_voice::session::InboundSender,
    pub cancel: CancellationToken,
    pub log: Arc<Mutex<Vec<Sent>>>,
    pub caller: Option<tokio::task::JoinHandle<()>>,
}

pub fn config() -> SessionConfig {
    let mut cfg = SessionConfig::new("call-1", "You are Maya from Acme.", OPENER);
    cfg.agent_name = "Maya".into();
    cfg.company_name = "Acme".into();
    cfg.disclosure.text = DISCLOSURE.into();
    cfg.recording_spool =
        std::env::temp_dir().join(format!("talky-voice-tests-{}", std::process::id()));
    cfg.carrier_call = Some(CarrierCall {
        provider: "vonage".into(),
        provider_call_id: "uuid-1".into(),
    });
    cfg
}

impl Harness {
    pub fn start(cfg: SessionConfig, llm: FakeLlm) -> Self {
        Self::start_with(cfg, llm, FakeTts::default(), FakeStt::default())
    }

    pub fn start_with(cfg: SessionConfig, llm: FakeLlm, tts: FakeTts, stt: FakeStt) -> Self {
        let stt = Arc::new(stt);
        let llm = Arc::new(llm);
        let tts = Arc::new(tts);
        let carrier = Arc::new(FakeCarrier::default());
        let sink = Arc::new(FakeSink::default());
        let cancel = CancellationToken::new();
        let deps = SessionDeps {
            stt: stt.clone(),
            llm: llm.clone(),
            tts: tts.clone(),
            telephony: carrier.clone(),
            sink: sink.clone(),
            clock: Arc::new(FixedClock(
                DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
            )),
            observer: None,
        };
        let t0 = Instant::now();
        let mut handle = spawn_session(cfg, deps, &cancel);
        let inbound = handle.inbound.clone();
        let _ = carrier.inbound.set(inbound.clone());
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut outbound = std::mem::replace(&mut handle.outbound, tokio::sync::mpsc::channel(1).1);
        let sink_log = log.clone();
        tokio::spawn(async move {
            while let Some(msg) = outbound.recv().await {
                sink_log.lock().unwrap().push(Sent {
                    at: Instant::now() - t0,
                    msg,
                });
            }
        });
        Harness {
            t0,
            stt,
            llm,
            tts,
            carrier,
            sink,
            handle: Some(handle),
            inbound,
            cancel,
            log,
            caller: None,
        }
    }

    pub fn now(&self) -> Duration {
        Instant::now() - self.t0
    }

    pub async fn advance(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    pub async fn advance_ms(&self, ms: u64) {
        self.advance(Duration::from_millis(ms)).await;
    }

    pub fn connect(&self) {
        assert!(self.inbound.text(CONNECTED));
    }

    /// A simulated caller sending one 20 ms frame every 20 ms: `script` yields the amplitude
    /// of a 300 Hz tone for each frame index (0 = digital silence).
    pub fn start_caller(&mut self, amplitude: impl Fn(u64) -> i16 + Send + 'static) {
        let tx = self.inbound.clone();
        self.caller = Some(tokio::spawn(async move {
            let mut i = 0u64;
            let mut next = Instant::now();
            loop {
                let amp = amplitude(i);
                let frame = if amp == 0 {
                    Bytes::from_static(&[0u8; 640])
                } else {
                    tone_s16le(16_000, 300.0, amp, 20)
                };
                if !tx.binary(frame) {
                    return;
                }
                i += 1;
                next += Duration::from_millis(20);
                tokio::time::sleep_until(next).await;
            }
        }));
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.log.lock().unwrap().clone()
    }

    /// (time, frame) of every audio frame sent.
    pub fn audio(&self) -> Vec<(Duration, Bytes)> {
        self.sent()
            .into_iter()
            .filter_map(|s| match s.msg {
                Outbound::Audio(b) => Some((s.at, b)),
                Outbound::Text(_) => None,
            })
            .collect()
    }

    pub fn texts(&self) -> Vec<(Duration, String)> {
        self.sent()
            .into_iter()
            .filter_map(|s| match s.msg {
                Outbound::Text(t) => Some((s.at, t)),
                Outbound::Audio(_) => None,
            })
            .collect()
    }

    /// Audio frames whose samples carry TTS request `i`'s value.
    pub fn frames_of(&self, request_index: usize) -> Vec<Duration> {
        let v = value_of(request_index);
        self.audio()
            .into_iter()
            .filter(|(_, f)| i16::from_le_bytes([f[0], f[1]]) == v)
            .map(|(t, _)| t)
            .collect()
    }

    pub fn reports(&self) -> Vec<SessionReport> {
        self.sink.reports.lock().unwrap().clone()
    }

    /// Waits until the session task ended (on the paused clock) and returns its report.
    pub async fn finished(&mut self) -> SessionReport {
        let handle = self.handle.take().expect("already joined");
        let end = tokio::time::timeout(Duration::from_secs(60), handle.join)
            .await
            .expect("session did not end")
            .expect("session task panicked");
        let reports = self.reports();
        assert_eq!(reports.len(), 1, "exactly one report");
        assert_eq!(reports[0].end_reason, end.end_reason);
        if let Some(c) = self.caller.take() {
            c.abort();
        }
        reports[0].clone()
    }

    pub fn hangups(&self) -> Vec<Duration> {
        self.carrier
            .hangups
            .lock()
            .unwrap()
            .iter()
            .map(|t| *t - self.t0)
            .collect()
    }
}

/// RMS of a frame (re-exported for tests).
pub fn level(frame: &[u8]) -> f32 {
    rms_s16le(frame)
}
