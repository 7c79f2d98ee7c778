//! A protocol-faithful mock of Deepgram streaming STT: v1 (`/v1/listen`) and Flux
//! (`/v2/listen`), as specified in `protocols.md` §4 and §5.
//!
//! The mock is **driven by the audio it receives**, not by wall time: it cuts the incoming
//! stream into 20 ms frames, measures each frame's RMS (s16 scale, voiced when ≥
//! [`MockDeepgramConfig::voiced_rms`]), and runs a small endpointer over them. Voice onset raises
//! `SpeechStarted` (v1) / `StartOfTurn` (Flux); while the caller speaks it sends interim
//! `Results` / `Update`s; after [`MockDeepgramConfig::end_silence_ms`] of silence it emits the
//! next scripted transcript as a final `Results` with `speech_final` (+ `UtteranceEnd` after
//! `utterance_end_ms` of silence) on v1, or `EndOfTurn` on Flux. A test that stops sending audio
//! therefore stops the script, like the real service.
//!
//! The upgrade is checked like the provider does: `Authorization: Token <key>` (401 otherwise)
//! and the query string (unknown parameters or out-of-range values → 400). Idle connections
//! are closed with 1011 / `NET-0001`. Fault modes ([`MockFault`]) reject the upgrade, close or
//! fail after a delay, or go silent. Everything received and sent is recorded per connection
//! ([`ConnectionRecord`]) for assertions.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

/// Length of the analysis frame.
const FRAME_MS: u32 = 20;

/// How a connection misbehaves. Read when a connection is upgraded, so
/// [`MockDeepgram::set_fault`] affects the *next* connections only.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MockFault {
    /// Behave.
    #[default]
    None,
    /// Answer the upgrade with this HTTP status (e.g. 401, 400, 500) and a Deepgram-style body.
    RejectUpgrade { status: u16 },
    /// Accept, then close with `code` after `after` of wall time (e.g. 1011).
    CloseAfter { after: Duration, code: u16 },
    /// Accept, then after `after` send an `Error` message and close with 1011.
    ErrorAfter { after: Duration },
    /// "Silent death": accept and record audio, never send anything, never close.
    Silent,
}

/// Mock behaviour. `Default` gives the values named on each field.
#[derive(Debug, Clone)]
pub struct MockDeepgramConfig {
    /// Expected key: requests must carry `Authorization: Token <api_key>`. Default `test-key`.
    pub api_key: String,
    /// Transcripts to hand out, one per detected utterance/turn, in order (shared by all
    /// connections). When it runs dry, utterances produce an empty transcript.
    pub transcripts: Vec<String>,
    /// A 20 ms frame is voiced when its RMS (s16 scale) is at least this. Default 500.
    pub voiced_rms: f64,
    /// Consecutive voiced audio needed for an onset. Default 40 ms.
    pub min_voiced_ms: u32,
    /// Silence (audio time) after voice that ends an utterance. Default 500 ms.
    pub end_silence_ms: u32,
    /// Interim `Results` (v1) / `Update` (Flux) cadence while speech is open. Default 250 ms.
    pub interim_every_ms: u32,
    /// Flux: when the client set `eager_eot_threshold`, send `EagerEndOfTurn` after half of
    /// `end_silence_ms`; voice before the end yields `TurnResumed`. Default true.
    pub eager_end_of_turn: bool,
    /// Wall-clock delay applied to every message the mock sends. Default 0.
    pub latency: Duration,
    /// Close with 1011 / `NET-0001` when nothing (audio or text) arrives for this long.
    /// Default 10 s; `None` disables.
    pub idle_timeout: Option<Duration>,
    /// Fault mode for new connections.
    pub fault: MockFault,
    /// Keep every received audio byte (otherwise only counts). Default true.
    pub record_audio: bool,
}

impl Default for MockDeepgramConfig {
    fn default() -> Self {
        Self {
            api_key: "test-key".to_string(),
            transcripts: Vec::new(),
            voiced_rms: 500.0,
            min_voiced_ms: 40,
            end_silence_ms: 500,
            interim_every_ms: 250,
            eager_end_of_turn: true,
            latency: Duration::ZERO,
            idle_timeout: Some(Duration::from_secs(10)),
            fault: MockFault::None,
            record_audio: true,
        }
    }
}

impl MockDeepgramConfig {
    /// Default behaviour with these transcripts.
    pub fn with_transcripts<I, S>(transcripts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            transcripts: transcripts.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// Everything one upgrade attempt did.
#[derive(Debug, Clone, Default)]
pub struct ConnectionRecord {
    /// `/v1/listen` or `/v2/listen`.
    pub path: String,
    /// Query parameters in order (repeated keys kept).
    pub query: Vec<(String, String)>,
    /// The `Authorization` header as received.
    pub authorization: Option<String>,
    /// Set when the upgrade was refused with this HTTP status.
    pub rejected: Option<u16>,
    /// Received audio (empty when `record_audio` is off).
    pub audio: Vec<u8>,
    /// Number of received audio bytes.
    pub audio_bytes: usize,
    /// Number of binary messages received.
    pub binary_messages: usize,
    /// Text messages received (control messages), raw.
    pub control: Vec<String>,
    /// Messages the mock sent, in order.
    pub sent: Vec<Value>,
    /// Close frame the mock sent (code, reason).
    pub server_close: Option<(u16, String)>,
    /// True once the client closed or the socket dropped.
    pub client_gone: bool,
}

impl ConnectionRecord {
    /// Value of the first query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `type` of each received control message (`KeepAlive`, `Finalize`, …).
    pub fn control_types(&self) -> Vec<String> {
        self.control
            .iter()
            .map(|t| {
                serde_json::from_str::<Value>(t)
                    .ok()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// How many received control messages have this `type`.
    pub fn control_count(&self, kind: &str) -> usize {
        self.control_types().iter().filter(|t| *t == kind).count()
    }

    /// Sent messages as short labels: the `type`, or `TurnInfo:<event>` for Flux turn events.
    pub fn sent_kinds(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|v| {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
                match v.get("event").and_then(Value::as_str) {
                    Some(event) if kind == "TurnInfo" => format!("TurnInfo:{event}"),
                    _ => kind.to_string(),
                }
            })
            .collect()
    }
}

struct Inner {
    transcripts: VecDeque<String>,
    fault: MockFault,
    connections: Vec<ConnectionRecord>,
}

struct Shared {
    config: MockDeepgramConfig,
    inner: Mutex<Inner>,
    kick: broadcast::Sender<(u16, String)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock only happens in a failing test; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record<R>(&self, idx: usize, f: impl FnOnce(&mut ConnectionRecord) -> R) -> R {
        f(&mut self.lock().connections[idx])
    }
}

impl Shared {
    fn new(config: MockDeepgramConfig) -> Arc<Shared> {
        let (kick, _) = broadcast::channel(16);
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                transcripts: config.transcripts.iter().cloned().collect(),
                fault: config.fault.clone(),
                connections: Vec::new(),
            }),
            config,
            kick,
        })
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/listen", get(listen_v1))
        .route("/v2/listen", get(listen_flux))
        .with_state(shared)
}

/// The mock's routes (`/v1/listen`, `/v2/listen`) for serving several mocks on one port.
pub fn router(config: MockDeepgramConfig) -> Router {
    routes(Shared::new(config))
}

/// A running mock. Dropping it stops the listener and closes open sessions (1001).
pub struct MockDeepgram {
    /// Bound address (127.0.0.1, ephemeral port).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockDeepgram {
    /// Binds 127.0.0.1:0 and serves until dropped. Must run inside a tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound (the test cannot run anyway).
    pub async fn spawn(config: MockDeepgramConfig) -> MockDeepgram {
        let shared = Shared::new(config);
        let (addr, task) = crate::serve_on_loopback(routes(shared.clone()), "deepgram").await;
        MockDeepgram { addr, shared, task }
    }

    /// `ws://127.0.0.1:<port>`: use as `DeepgramConfig::base_url`.
    pub fn base_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Snapshot of every upgrade attempt so far.
    pub fn connections(&self) -> Vec<ConnectionRecord> {
        self.shared.lock().connections.clone()
    }

    /// Snapshot of the most recent upgrade attempt.
    pub fn last_connection(&self) -> Option<ConnectionRecord> {
        self.shared.lock().connections.last().cloned()
    }

    /// Number of upgrade attempts so far (accepted or not).
    pub fn connection_count(&self) -> usize {
        self.shared.lock().connections.len()
    }

    /// Audio bytes received over all connections.
    pub fn total_audio_bytes(&self) -> usize {
        self.shared
            .lock()
            .connections
            .iter()
            .map(|c| c.audio_bytes)
            .sum()
    }

    /// Fault mode for subsequent connections.
    pub fn set_fault(&self, fault: MockFault) {
        self.shared.lock().fault = fault;
    }

    /// Appends a transcript to the script.
    pub fn push_transcript(&self, text: impl Into<String>) {
        self.shared.lock().transcripts.push_back(text.into());
    }

    /// Transcripts not yet handed out.
    pub fn remaining_transcripts(&self) -> usize {
        self.shared.lock().transcripts.len()
    }

    /// Closes every open session now with this code (e.g. 1011 to simulate a provider crash).
    pub fn kick_all(&self, code: u16, reason: &str) {
        let _ = self.shared.kick.send((code, reason.to_string()));
    }

    /// Polls the records until `check` holds or `timeout` passes; returns whether it held.
    pub async fn wait_for<F>(&self, timeout: Duration, mut check: F) -> bool
    where
        F: FnMut(&[ConnectionRecord]) -> bool,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if check(&self.shared.lock().connections) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for MockDeepgram {
    fn drop(&mut self) {
        let _ = self
            .shared
            .kick
            .send((1001, "mock deepgram shutting down".to_string()));
        self.task.abort();
    }
}

/// `ms` of a 440 Hz tone at 16 kHz s16le with the given peak amplitude (RMS ≈ 0.707 × peak).
pub fn tone_pcm(ms: u32, amplitude: i16) -> Vec<u8> {
    let samples = 16 * ms as usize;
    let mut out = Vec::with_capacity(samples * 2);
    for n in 0..samples {
        let phase = 2.0 * std::f64::consts::PI * 440.0 * n as f64 / 16_000.0;
        let s = (phase.sin() * f64::from(amplitude)) as i16;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// `ms` of voiced audio (440 Hz, RMS ≈ 5600) at 16 kHz s16le.
pub fn voiced_pcm(ms: u32) -> Vec<u8> {
    tone_pcm(ms, 8000)
}

/// `ms` of digital silence at 16 kHz s16le.
pub fn silent_pcm(ms: u32) -> Vec<u8> {
    vec![0; 32 * ms as usize]
}

/// RMS of s16le samples (a trailing odd byte is ignored).
pub fn rms_s16le(bytes: &[u8]) -> f64 {
    let n = bytes.len() / 2;
    if n == 0 {
        return 0.0;
    }
    let sum: f64 = bytes
        .chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])).powi(2))
        .sum();
    (sum / n as f64).sqrt()
}

fn mulaw_to_s16(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 7;
    let mantissa = i32::from(b & 0x0F);
    let magnitude = (((mantissa << 3) + 132) << exponent) - 132;
    if b & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

fn rms_mulaw(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let sum: f64 = bytes
        .iter()
        .map(|b| f64::from(mulaw_to_s16(*b)).powi(2))
        .sum();
    (sum / bytes.len() as f64).sqrt()
}

// ---------------------------------------------------------------------------------------------
// Upgrade: authentication and parameter validation.

const V1_PARAMS: &[&str] = &[
    "model",
    "encoding",
    "sample_rate",
    "channels",
    "interim_results",
    "endpointing",
    "utterance_end_ms",
    "vad_events",
    "smart_format",
    "punctuate",
    "language",
    "keyterm",
];
const FLUX_PARAMS: &[&str] = &[
    "model",
    "encoding",
    "sample_rate",
    "eot_threshold",
    "eager_eot_threshold",
    "eot_timeout_ms",
    "keyterm",
    "mip_opt_out",
    "tag",
    "language_hint",
    "token",
];

/// Stream parameters the session needs, parsed from the query.
#[derive(Debug, Clone)]
struct Params {
    flux: bool,
    mulaw: bool,
    sample_rate: u32,
    interim_results: bool,
    vad_events: bool,
    utterance_end_ms: Option<u32>,
    eager: bool,
    eot_timeout_ms: u32,
}

fn get_param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn parse_params(query: &[(String, String)], flux: bool) -> Result<Params, String> {
    let allowed = if flux { FLUX_PARAMS } else { V1_PARAMS };
    if let Some((k, _)) = query.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown or unsupported parameter: {k}"));
    }
    let encoding = get_param(query, "encoding").unwrap_or("linear16");
    let mulaw = match encoding {
        "linear16" => false,
        "mulaw" => true,
        other => return Err(format!("unsupported encoding for the mock: {other}")),
    };
    let sample_rate = match get_param(query, "sample_rate") {
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|r| (8000..=48_000).contains(r) && r.is_multiple_of(50))
            .ok_or_else(|| format!("bad sample_rate: {v}"))?,
        None => return Err("sample_rate is required for raw audio".into()),
    };
    let boolean = |key: &str| -> Result<Option<bool>, String> {
        match get_param(query, key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(format!("bad boolean for {key}: {v}")),
        }
    };
    let float = |key: &str, lo: f64, hi: f64| -> Result<Option<f64>, String> {
        match get_param(query, key) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| (lo..=hi).contains(x))
                .map(Some)
                .ok_or_else(|| format!("{key} out of range {lo}–{hi}: {v}")),
        }
    };
    if flux {
        if get_param(query, "model").is_none() {
            return Err("model is required".into());
        }
        let eot = float("eot_threshold", 0.5, 0.9)?.unwrap_or(0.7);
        let eager = float("eager_eot_threshold", 0.3, 0.9)?;
        if eager.is_some_and(|e| e > eot) {
            return Err("eager_eot_threshold must be <= eot_threshold".into());
        }
        let eot_timeout_ms = match get_param(query, "eot_timeout_ms") {
            None => 5000,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|x| (500..=10_000).contains(x))
                .ok_or_else(|| format!("eot_timeout_ms out of range: {v}"))?,
        };
        Ok(Params {
            flux,
            mulaw,
            sample_rate,
            interim_results: true,
            vad_events: false,
            utterance_end_ms: None,
            eager: eager.is_some(),
            eot_timeout_ms,
        })
    } else {
        if let Some(c) = get_param(query, "channels") {
            if c != "1" {
                return Err("the mock supports channels=1 only".into());
            }
        }
        if let Some(v) = get_param(query, "endpointing") {
            if v != "false" && v.parse::<u32>().is_err() {
                return Err(format!("bad endpointing: {v}"));
            }
        }
        let interim_results = boolean("interim_results")?.unwrap_or(false);
        let utterance_end_ms = match get_param(query, "utterance_end_ms") {
            None => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|x| *x >= 1000)
                    .ok_or_else(|| format!("bad utterance_end_ms: {v}"))?,
            ),
        };
        if utterance_end_ms.is_some() && !interim_results {
            return Err("utterance_end_ms requires interim_results=true".into());
        }
        boolean("smart_format")?;
        boolean("punctuate")?;
        Ok(Params {
            flux,
            mulaw,
            sample_rate,
            interim_results,
            vad_events: boolean("vad_events")?.unwrap_or(false),
            utterance_end_ms,
            eager: false,
            eot_timeout_ms: 0,
        })
    }
}

fn reject(status: u16, err_code: &str, message: &str, request_id: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"err_code": err_code, "err_msg": message, "request_id": request_id});
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(message) {
        response.headers_mut().insert("dg-error", v);
    }
    response
}

async fn listen_v1(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(shared, false, headers, query, ws)
}

async fn listen_flux(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(shared, true, headers, query, ws)
}

fn upgrade(
    shared: Arc<Shared>,
    flux: bool,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    ws: WebSocketUpgrade,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = uuid::Uuid::new_v4().to_string();
    let (idx, fault) = {
        let mut inner = shared.lock();
        inner.connections.push(ConnectionRecord {
            path: if flux { "/v2/listen" } else { "/v1/listen" }.to_string(),
            query: query.clone(),
            authorization: authorization.clone(),
            ..ConnectionRecord::default()
        });
        (inner.connections.len() - 1, inner.fault.clone())
    };
    let refuse = |status: u16, code: &str, message: &str| {
        shared.record(idx, |r| r.rejected = Some(status));
        reject(status, code, message, &request_id)
    };

    if let MockFault::RejectUpgrade { status } = fault {
        return refuse(status, "MOCK_FAULT", "rejected by mock fault mode");
    }
    let key = &shared.config.api_key;
    let header_ok = authorization.as_deref().is_some_and(|a| {
        a.split_once(' ')
            .is_some_and(|(scheme, k)| scheme.eq_ignore_ascii_case("token") && k.trim() == key)
    });
    let query_ok = flux && get_param(&query, "token") == Some(key.as_str());
    if !header_ok && !query_ok {
        return refuse(401, "INVALID_AUTH", "Invalid credentials.");
    }
    let params = match parse_params(&query, flux) {
        Ok(p) => p,
        Err(message) => return refuse(400, "Bad Request", &message),
    };

    let session_request_id = request_id.clone();
    // Small buffers, like Talky's own per-call sockets, so a mock serving hundreds of calls
    // does not zero-fill 128 KiB per message.
    let mut response = ws
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            run_session(socket, shared, idx, params, fault, session_request_id)
        });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("dg-request-id", v);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Session: socket plumbing around the audio-driven state machine.

enum Out {
    Json(Value),
    Close(u16, String),
}

async fn run_session(
    socket: WebSocket,
    shared: Arc<Shared>,
    idx: usize,
    params: Params,
    fault: MockFault,
    request_id: String,
) {
    let silent = fault == MockFault::Silent;
    let (sink, mut source) = socket.split();
    let (tx, rx) = mpsc::unbounded_channel::<(Instant, Out)>();
    let writer = tokio::spawn(write_loop(sink, rx, shared.clone(), idx));
    let latency = shared.config.latency;
    let send = |out: Out| {
        if !silent {
            let _ = tx.send((Instant::now() + latency, out));
        }
    };

    let mut machine = Machine::new(params.clone(), shared.clone(), request_id);
    let mut outs = Vec::new();
    if params.flux {
        machine.connected(&mut outs);
    }
    for v in outs.drain(..) {
        send(Out::Json(v));
    }

    let mut kick = shared.kick.subscribe();
    let idle_timeout = shared.config.idle_timeout.filter(|_| !silent);
    let mut idle_deadline = idle_timeout.map(|t| Instant::now() + t);
    let fault_deadline = match &fault {
        MockFault::CloseAfter { after, .. } | MockFault::ErrorAfter { after } => {
            Some(Instant::now() + *after)
        }
        _ => None,
    };
    let far = Instant::now() + Duration::from_secs(86_400);

    loop {
        tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(Message::Binary(audio))) => {
                    idle_deadline = idle_timeout.map(|t| Instant::now() + t);
                    let record_audio = shared.config.record_audio;
                    shared.record(idx, |r| {
                        r.audio_bytes += audio.len();
                        r.binary_messages += 1;
                        if record_audio {
                            r.audio.extend_from_slice(&audio);
                        }
                    });
                    if !silent {
                        machine.audio(&audio, &mut outs);
                    }
                    for v in outs.drain(..) {
                        send(Out::Json(v));
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    idle_deadline = idle_timeout.map(|t| Instant::now() + t);
                    shared.record(idx, |r| r.control.push(text.to_string()));
                    // Silent death ignores control messages too, CloseStream included.
                    let close = !silent && machine.control(text.as_str(), &mut outs);
                    for v in outs.drain(..) {
                        send(Out::Json(v));
                    }
                    if close {
                        send(Out::Close(1000, String::new()));
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    shared.record(idx, |r| r.client_gone = true);
                    break;
                }
                Some(Ok(_)) => {}
            },
            _ = sleep_until(idle_deadline.unwrap_or(far)), if idle_deadline.is_some() => {
                send(Out::Close(
                    1011,
                    "NET-0001: Deepgram did not receive audio data or a text message within the \
                     timeout window."
                        .to_string(),
                ));
                break;
            }
            _ = sleep_until(fault_deadline.unwrap_or(far)), if fault_deadline.is_some() => {
                match &fault {
                    MockFault::CloseAfter { code, .. } => {
                        send(Out::Close(*code, "mock fault: close".to_string()));
                    }
                    _ => {
                        let mut error = Vec::new();
                        machine.error("mock fault: internal error", &mut error);
                        for v in error {
                            send(Out::Json(v));
                        }
                        send(Out::Close(1011, "mock fault: internal error".to_string()));
                    }
                }
                break;
            }
            kicked = kick.recv() => {
                let (code, reason) = kicked.unwrap_or((1001, "mock deepgram shutting down".into()));
                // A kick skips the latency (it still follows messages already queued) and also
                // ends silent sessions.
                let _ = tx.send((Instant::now(), Out::Close(code, reason)));
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<(Instant, Out)>,
    shared: Arc<Shared>,
    idx: usize,
) {
    while let Some((due, out)) = rx.recv().await {
        sleep_until(due).await;
        match out {
            Out::Json(value) => {
                let text = value.to_string();
                shared.record(idx, |r| r.sent.push(value));
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            Out::Close(code, reason) => {
                shared.record(idx, |r| r.server_close = Some((code, reason.clone())));
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The audio-driven state machine (no I/O): frames in, protocol messages out.

struct Machine {
    p: Params,
    shared: Arc<Shared>,
    request_id: String,
    voiced_rms: f64,
    min_voiced_ms: u32,
    end_silence_ms: u32,
    interim_every_ms: u32,
    eager_allowed: bool,
    frame_bytes: usize,
    carry: Vec<u8>,
    /// Audio time processed, ms.
    audio_ms: u64,
    sequence_id: u64,
    turn_index: u32,
    voiced_run_ms: u32,
    speaking: bool,
    speech_start_ms: u64,
    last_voiced_end_ms: u64,
    silence_ms: u32,
    since_interim_ms: u32,
    revealed: usize,
    eager_sent: bool,
    /// v1: last word end of a final still waiting for its `UtteranceEnd`, and the gap so far.
    utterance_end: Option<(f64, u32)>,
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Lower-case word without surrounding punctuation, as v1 reports `word`.
fn bare_word(w: &str) -> String {
    w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
        .to_lowercase()
}

impl Machine {
    fn new(p: Params, shared: Arc<Shared>, request_id: String) -> Self {
        let config = &shared.config;
        let bytes_per_sample = if p.mulaw { 1 } else { 2 };
        let frame_bytes = (p.sample_rate as usize * FRAME_MS as usize / 1000) * bytes_per_sample;
        Machine {
            voiced_rms: config.voiced_rms,
            min_voiced_ms: config.min_voiced_ms.max(FRAME_MS),
            end_silence_ms: config.end_silence_ms.max(FRAME_MS),
            interim_every_ms: config.interim_every_ms.max(FRAME_MS),
            eager_allowed: config.eager_end_of_turn,
            p,
            shared,
            request_id,
            frame_bytes,
            carry: Vec::new(),
            audio_ms: 0,
            sequence_id: 0,
            turn_index: 0,
            voiced_run_ms: 0,
            speaking: false,
            speech_start_ms: 0,
            last_voiced_end_ms: 0,
            silence_ms: 0,
            since_interim_ms: 0,
            revealed: 0,
            eager_sent: false,
            utterance_end: None,
        }
    }

    /// The transcript of the open utterance. Peeked (not taken) so an utterance replayed on a
    /// new connection after a failure gets the same text.
    fn peek_transcript(&self) -> String {
        self.shared
            .lock()
            .transcripts
            .front()
            .cloned()
            .unwrap_or_default()
    }

    fn take_transcript(&self) -> String {
        self.shared
            .lock()
            .transcripts
            .pop_front()
            .unwrap_or_default()
    }

    /// Stamps a Flux message with `request_id` and the next `sequence_id`.
    fn flux_msg(&mut self, mut v: Value) -> Value {
        v["request_id"] = json!(self.request_id);
        v["sequence_id"] = json!(self.sequence_id);
        self.sequence_id += 1;
        v
    }

    fn connected(&mut self, out: &mut Vec<Value>) {
        let v = self.flux_msg(json!({"type": "Connected"}));
        out.push(v);
    }

    fn error(&mut self, message: &str, out: &mut Vec<Value>) {
        if self.p.flux {
            let v = self.flux_msg(json!({
                "type": "Error",
                "error_code": "INTERNAL_SERVER_ERROR",
                "description": message,
            }));
            out.push(v);
        } else {
            out.push(json!({
                "type": "Error",
                "variant": "INTERNAL_SERVER_ERROR",
                "description": message,
                "message": message,
            }));
        }
    }

    fn audio(&mut self, bytes: &[u8], out: &mut Vec<Value>) {
        self.carry.extend_from_slice(bytes);
        let mut offset = 0;
        while self.carry.len() - offset >= self.frame_bytes {
            let frame = &self.carry[offset..offset + self.frame_bytes];
            let rms = if self.p.mulaw {
                rms_mulaw(frame)
            } else {
                rms_s16le(frame)
            };
            offset += self.frame_bytes;
            self.frame(rms >= self.voiced_rms, out);
        }
        self.carry.drain(..offset);
    }

    fn end_after_ms(&self) -> u32 {
        if self.p.flux {
            self.end_silence_ms.min(self.p.eot_timeout_ms.max(FRAME_MS))
        } else {
            self.end_silence_ms
        }
    }

    fn frame(&mut self, voiced: bool, out: &mut Vec<Value>) {
        self.audio_ms += u64::from(FRAME_MS);
        if voiced {
            self.voiced_run_ms += FRAME_MS;
            if !self.speaking && self.voiced_run_ms >= self.min_voiced_ms {
                self.onset(out);
            }
            if self.speaking {
                self.silence_ms = 0;
                self.last_voiced_end_ms = self.audio_ms;
                if self.eager_sent {
                    self.eager_sent = false;
                    let text = self.revealed_text();
                    let v = self.turn_info("TurnResumed", &text, 0.2, None);
                    out.push(v);
                }
            }
        } else {
            self.voiced_run_ms = 0;
            if self.speaking {
                self.silence_ms += FRAME_MS;
                let end_after = self.end_after_ms();
                if self.p.flux
                    && self.eager_allowed
                    && self.p.eager
                    && !self.eager_sent
                    && self.silence_ms >= end_after / 2
                    && self.silence_ms < end_after
                {
                    let text = self.peek_transcript();
                    if !text.is_empty() {
                        self.eager_sent = true;
                        let v = self.turn_info("EagerEndOfTurn", &text, 0.6, None);
                        out.push(v);
                    }
                }
                if self.silence_ms >= end_after {
                    self.end(false, out);
                    return;
                }
            } else {
                self.tick_utterance_end(FRAME_MS, out);
            }
        }
        if self.speaking && !self.eager_sent {
            self.since_interim_ms += FRAME_MS;
            if self.since_interim_ms >= self.interim_every_ms {
                self.since_interim_ms = 0;
                self.interim(out);
            }
        }
    }

    fn tick_utterance_end(&mut self, add_ms: u32, out: &mut Vec<Value>) {
        let Some(limit) = self.p.utterance_end_ms else {
            return;
        };
        if let Some((last_word_end, gap)) = self.utterance_end.as_mut() {
            *gap += add_ms;
            if *gap >= limit {
                let last_word_end = *last_word_end;
                self.utterance_end = None;
                out.push(json!({
                    "type": "UtteranceEnd",
                    "channel": [0, 1],
                    "last_word_end": last_word_end,
                }));
            }
        }
    }

    fn onset(&mut self, out: &mut Vec<Value>) {
        self.speaking = true;
        self.speech_start_ms = self.audio_ms - u64::from(self.voiced_run_ms);
        self.silence_ms = 0;
        self.since_interim_ms = 0;
        self.revealed = 0;
        self.eager_sent = false;
        // New speech inside the word gap: no UtteranceEnd for the previous words.
        self.utterance_end = None;
        if self.p.flux {
            self.revealed = 1;
            let text = self.revealed_text();
            let v = self.turn_info("StartOfTurn", &text, 0.05, None);
            out.push(v);
        } else if self.p.vad_events {
            out.push(json!({
                "type": "SpeechStarted",
                "channel": [0],
                "timestamp": secs(self.speech_start_ms),
            }));
        }
    }

    fn revealed_text(&self) -> String {
        let text = self.peek_transcript();
        text.split_whitespace()
            .take(self.revealed)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn interim(&mut self, out: &mut Vec<Value>) {
        let total = self.peek_transcript().split_whitespace().count();
        // Reveal one more word per interim but keep the last one for the final.
        self.revealed = (self.revealed + 1).min(total.saturating_sub(1).max(total.min(1)));
        let text = self.revealed_text();
        if self.p.flux {
            let v = self.turn_info("Update", &text, 0.1, None);
            out.push(v);
        } else if self.p.interim_results {
            let words = self.v1_words(&text, self.speech_start_ms, self.audio_ms);
            out.push(self.results(false, false, false, self.audio_ms, &text, words));
        }
    }

    /// Closes the open utterance with the next scripted transcript.
    fn end(&mut self, forced: bool, out: &mut Vec<Value>) {
        let text = self.take_transcript();
        if self.p.flux {
            let v = self.turn_info(
                "EndOfTurn",
                &text,
                0.85,
                Some(if forced { "manual" } else { "model" }),
            );
            out.push(v);
            self.turn_index += 1;
        } else {
            let word_end = self.last_voiced_end_ms.max(self.speech_start_ms);
            let words = self.v1_words(&text, self.speech_start_ms, word_end);
            out.push(self.results(true, !forced, forced, self.audio_ms, &text, words));
            if !text.is_empty() && self.p.utterance_end_ms.is_some() {
                self.utterance_end = Some((secs(word_end), 0));
                let gap = self.silence_ms;
                self.tick_utterance_end(gap, out);
            }
        }
        self.speaking = false;
        self.silence_ms = 0;
        self.since_interim_ms = 0;
        self.revealed = 0;
        self.eager_sent = false;
    }

    fn v1_words(&self, text: &str, start_ms: u64, end_ms: u64) -> Vec<Value> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            return Vec::new();
        }
        let start = secs(start_ms);
        let step = secs(end_ms.saturating_sub(start_ms)) / words.len() as f64;
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                json!({
                    "word": bare_word(w),
                    "start": start + step * i as f64,
                    "end": start + step * (i + 1) as f64,
                    "confidence": 0.98,
                    "punctuated_word": w,
                })
            })
            .collect()
    }

    fn results(
        &self,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
        end_ms: u64,
        text: &str,
        words: Vec<Value>,
    ) -> Value {
        let start_ms = if self.speaking || is_final {
            self.speech_start_ms
        } else {
            end_ms
        };
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": secs(end_ms.saturating_sub(start_ms)),
            "start": secs(start_ms),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{
                "transcript": text,
                "confidence": if text.is_empty() { 0.0 } else { 0.97 },
                "words": words,
            }]},
            "metadata": {
                "request_id": self.request_id,
                "model_uuid": "00000000-0000-4000-8000-000000000000",
                "model_info": {"name": "mock", "version": "0", "arch": "mock"},
            },
        })
    }

    fn turn_info(
        &mut self,
        event: &str,
        transcript: &str,
        end_of_turn_confidence: f64,
        trigger: Option<&str>,
    ) -> Value {
        let words: Vec<Value> = transcript
            .split_whitespace()
            .map(|w| json!({"word": w, "confidence": 0.95}))
            .collect();
        let mut v = json!({
            "type": "TurnInfo",
            "event": event,
            "turn_index": self.turn_index,
            "audio_window_start": secs(self.speech_start_ms),
            "audio_window_end": secs(self.audio_ms),
            "transcript": transcript,
            "words": words,
            "end_of_turn_confidence": end_of_turn_confidence,
        });
        if let Some(trigger) = trigger {
            v["trigger"] = json!(trigger);
        }
        self.flux_msg(v)
    }

    /// Handles a client text message; returns true when the stream must close normally.
    fn control(&mut self, text: &str, out: &mut Vec<Value>) -> bool {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => return false,
        };
        match value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "KeepAlive" => false,
            "Finalize" if !self.p.flux => {
                if self.speaking {
                    self.end(true, out);
                } else {
                    out.push(self.results(true, false, true, self.audio_ms, "", Vec::new()));
                }
                false
            }
            "ForceEndTurn" if self.p.flux => {
                if self.speaking {
                    self.end(true, out);
                }
                false
            }
            "Configure" if self.p.flux => {
                self.configure(&value, out);
                false
            }
            "CloseStream" => {
                if self.speaking {
                    self.end(false, out);
                }
                if !self.p.flux {
                    out.push(json!({
                        "type": "Metadata",
                        "transaction_key": "deprecated",
                        "request_id": self.request_id,
                        "sha256": "",
                        "created": "2025-01-01T00:00:00.000Z",
                        "duration": secs(self.audio_ms),
                        "channels": 1,
                        "models": ["00000000-0000-4000-8000-000000000000"],
                        "model_info": {},
                    }));
                }
                true
            }
            _ => false,
        }
    }

    fn configure(&mut self, value: &Value, out: &mut Vec<Value>) {
        let thresholds = value.get("thresholds").cloned().unwrap_or(json!({}));
        let num = |k: &str| thresholds.get(k).and_then(Value::as_f64);
        let eot = num("eot_threshold");
        let eager = num("eager_eot_threshold");
        let timeout = num("eot_timeout_ms");
        let problem = if eot.is_some_and(|x| !(0.5..=0.9).contains(&x)) {
            Some("eot_threshold out of range 0.5-0.9")
        } else if eager.is_some_and(|x| !(0.3..=0.9).contains(&x)) {
            Some("eager_eot_threshold out of range 0.3-0.9")
        } else if eager.zip(eot).is_some_and(|(e, t)| e > t) {
            Some("eager_eot_threshold must be <= eot_threshold")
        } else if timeout.is_some_and(|x| !(500.0..=10_000.0).contains(&x)) {
            Some("eot_timeout_ms out of range 500-10000")
        } else {
            None
        };
        let v = match problem {
            Some(description) => json!({"type": "ConfigureFailure", "description": description}),
            None => {
                if eager.is_some() {
                    self.p.eager = true;
                }
                if let Some(t) = timeout {
                    self.p.eot_timeout_ms = t as u32;
                }
                json!({
                    "type": "ConfigureSuccess",
                    "thresholds": thresholds,
                    "keyterms": value.get("keyterms").cloned().unwrap_or(json!([])),
                })
            }
        };
        let v = self.flux_msg(v);
        out.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(flux: bool, transcripts: &[&str]) -> Machine {
        let query: Vec<(String, String)> = if flux {
            vec![
                ("model".into(), "flux-general-en".into()),
                ("encoding".into(), "linear16".into()),
                ("sample_rate".into(), "16000".into()),
                ("eot_threshold".into(), "0.7".into()),
                ("eager_eot_threshold".into(), "0.5".into()),
                ("eot_timeout_ms".into(), "3000".into()),
            ]
        } else {
            [
                ("model", "nova-3"),
                ("encoding", "linear16"),
                ("sample_rate", "16000"),
                ("channels", "1"),
                ("interim_results", "true"),
                ("endpointing", "300"),
                ("utterance_end_ms", "1000"),
                ("vad_events", "true"),
                ("smart_format", "true"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let params = parse_params(&query, flux).expect("valid params");
        let (kick, _) = broadcast::channel(1);
        let config = MockDeepgramConfig::with_transcripts(transcripts.iter().copied());
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                transcripts: config.transcripts.iter().cloned().collect(),
                fault: MockFault::None,
                connections: Vec::new(),
            }),
            config,
            kick,
        });
        Machine::new(params, shared, "req".into())
    }

    fn kinds(out: &[Value]) -> Vec<String> {
        ConnectionRecord {
            sent: out.to_vec(),
            ..ConnectionRecord::default()
        }
        .sent_kinds()
    }

    #[test]
    fn rms_and_mulaw() {
        assert_eq!(rms_s16le(&silent_pcm(20)), 0.0);
        let r = rms_s16le(&voiced_pcm(20));
        assert!((5000.0..6000.0).contains(&r), "{r}");
        assert_eq!(mulaw_to_s16(0xFF), 0);
        assert_eq!(mulaw_to_s16(0x00), -32124);
        assert_eq!(mulaw_to_s16(0x80), 32124);
        assert_eq!(rms_mulaw(&[0xFF; 160]), 0.0);
    }

    #[test]
    fn v1_utterance_is_driven_by_audio() {
        let mut m = machine(false, &["Hello there."]);
        let mut out = Vec::new();
        m.audio(&silent_pcm(200), &mut out);
        assert!(out.is_empty());
        m.audio(&voiced_pcm(600), &mut out);
        let k = kinds(&out);
        assert_eq!(k[0], "SpeechStarted");
        assert!(k[1..].iter().all(|k| k == "Results"), "{k:?}");
        assert!(out[1..].iter().all(|v| v["is_final"] == json!(false)));
        out.clear();
        // 400 ms of silence: not yet the end.
        m.audio(&silent_pcm(400), &mut out);
        assert!(out.iter().all(|v| v["is_final"] == json!(false)));
        out.clear();
        m.audio(&silent_pcm(100), &mut out);
        let finals: Vec<&Value> = out
            .iter()
            .filter(|v| v["is_final"] == json!(true))
            .collect();
        assert_eq!(finals.len(), 1, "{out:?}");
        assert_eq!(out.last(), Some(finals[0]), "the final comes last");
        let fin = finals[0];
        assert_eq!(fin["is_final"], json!(true));
        assert_eq!(fin["speech_final"], json!(true));
        assert_eq!(
            fin["channel"]["alternatives"][0]["transcript"],
            "Hello there."
        );
        assert_eq!(
            fin["channel"]["alternatives"][0]["words"][1]["word"],
            "there"
        );
        assert!((fin["start"].as_f64().unwrap() - 0.2).abs() < 1e-9);
        out.clear();
        // UtteranceEnd after 1000 ms of word gap in total.
        m.audio(&silent_pcm(480), &mut out);
        assert!(out.is_empty());
        m.audio(&silent_pcm(20), &mut out);
        assert_eq!(kinds(&out), vec!["UtteranceEnd"]);
        assert!((out[0]["last_word_end"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    }

    #[test]
    fn v1_frames_split_across_messages() {
        let mut m = machine(false, &["hi"]);
        let mut out = Vec::new();
        let audio = voiced_pcm(100);
        for chunk in audio.chunks(333) {
            m.audio(chunk, &mut out);
        }
        assert_eq!(m.audio_ms, 100);
        assert!(m.speaking);
        assert_eq!(kinds(&out)[0], "SpeechStarted");
    }

    #[test]
    fn v1_finalize_and_close() {
        let mut m = machine(false, &["one two"]);
        let mut out = Vec::new();
        m.audio(&voiced_pcm(300), &mut out);
        out.clear();
        assert!(!m.control(r#"{"type":"Finalize"}"#, &mut out));
        assert_eq!(out[0]["from_finalize"], json!(true));
        assert_eq!(
            out[0]["channel"]["alternatives"][0]["transcript"],
            "one two"
        );
        out.clear();
        assert!(m.control(r#"{"type":"CloseStream"}"#, &mut out));
        assert_eq!(kinds(&out), vec!["Metadata"]);
    }

    #[test]
    fn flux_turn_grammar() {
        let mut m = machine(true, &["yes please", "no"]);
        let mut out = Vec::new();
        m.connected(&mut out);
        m.audio(&voiced_pcm(500), &mut out);
        m.audio(&silent_pcm(300), &mut out); // eager at 250 ms of silence
        m.audio(&voiced_pcm(200), &mut out); // resumed
        m.audio(&silent_pcm(600), &mut out); // eager again, then end at 500 ms
        m.audio(&voiced_pcm(200), &mut out);
        m.audio(&silent_pcm(600), &mut out);
        let k: Vec<String> = kinds(&out)
            .into_iter()
            .filter(|k| k != "TurnInfo:Update")
            .collect();
        assert_eq!(
            k,
            vec![
                "Connected",
                "TurnInfo:StartOfTurn",
                "TurnInfo:EagerEndOfTurn",
                "TurnInfo:TurnResumed",
                "TurnInfo:EagerEndOfTurn",
                "TurnInfo:EndOfTurn",
                "TurnInfo:StartOfTurn",
                "TurnInfo:EagerEndOfTurn",
                "TurnInfo:EndOfTurn",
            ]
        );
        for (i, v) in out.iter().enumerate() {
            assert_eq!(v["sequence_id"], json!(i), "sequence ids are dense");
        }
        let ends: Vec<&Value> = out.iter().filter(|v| v["event"] == "EndOfTurn").collect();
        assert_eq!(ends[0]["transcript"], "yes please");
        assert_eq!(ends[0]["turn_index"], json!(0));
        assert_eq!(ends[1]["transcript"], "no");
        assert_eq!(ends[1]["turn_index"], json!(1));
        // EndOfTurn directly after EagerEndOfTurn carries the same transcript.
        let eager = out
            .iter()
            .rev()
            .find(|v| v["event"] == "EagerEndOfTurn")
            .unwrap();
        assert_eq!(eager["transcript"], ends[1]["transcript"]);
    }

    #[test]
    fn flux_force_end_and_configure() {
        let mut m = machine(true, &["stop"]);
        let mut out = Vec::new();
        m.audio(&voiced_pcm(200), &mut out);
        out.clear();
        m.control(r#"{"type":"ForceEndTurn"}"#, &mut out);
        assert_eq!(out[0]["event"], "EndOfTurn");
        assert_eq!(out[0]["trigger"], "manual");
        out.clear();
        m.control(r#"{"type":"ForceEndTurn"}"#, &mut out);
        assert!(out.is_empty(), "no effect without an open turn");
        m.control(
            r#"{"type":"Configure","thresholds":{"eot_threshold":0.75}}"#,
            &mut out,
        );
        m.control(
            r#"{"type":"Configure","thresholds":{"eot_threshold":0.95}}"#,
            &mut out,
        );
        assert_eq!(kinds(&out), vec!["ConfigureSuccess", "ConfigureFailure"]);
    }

    #[test]
    fn query_validation() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let base = [
            ("model", "nova-3"),
            ("encoding", "linear16"),
            ("sample_rate", "16000"),
        ];
        assert!(parse_params(&q(&base), false).is_ok());
        let mut bad = base.to_vec();
        bad.push(("diarize", "true"));
        assert!(parse_params(&q(&bad), false).is_err());
        let mut bad = base.to_vec();
        bad.push(("utterance_end_ms", "1000"));
        assert!(
            parse_params(&q(&bad), false).is_err(),
            "needs interim_results"
        );
        let mut flux = vec![
            ("model", "flux-general-en"),
            ("encoding", "linear16"),
            ("sample_rate", "16000"),
        ];
        assert!(parse_params(&q(&flux), true).is_ok());
        flux.push(("eot_threshold", "0.95"));
        assert!(parse_params(&q(&flux), true).is_err());
    }
}
