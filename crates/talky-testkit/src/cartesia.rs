//! A protocol-faithful mock of Cartesia TTS (`protocols.md` §6): the WebSocket
//! (`/tts/websocket`) with contexts, `continue`, `cancel`, `chunk`/`timestamps`/`done`/`error`
//! messages, and the HTTP fallback (`POST /tts/bytes`, raw PCM body).
//!
//! **Audio is deterministic:** every character of the (trimmed) transcript becomes
//! [`MockCartesiaConfig::ms_per_char`] of sound — silence for whitespace, otherwise a sine tone
//! whose pitch encodes the character index — so a test can compute the exact bytes with
//! [`mock_audio`] and tell which text was played. Chunks can be cut at odd byte counts
//! ([`MockCartesiaConfig::odd_chunks`]) to exercise byte carry.
//!
//! Auth is checked like the provider: `X-API-Key` + `Cartesia-Version` headers, or (WebSocket
//! only) `api_key` + `cartesia_version` query parameters; 401/400 otherwise. Fault modes
//! ([`CartesiaFault`]) produce `error` messages, zero-chunk `done`s, a socket dropped or a
//! generation stalled mid-context, rejected upgrades/requests; after a `cancel`,
//! [`MockCartesiaConfig::late_chunks_after_cancel`] chunks may still be sent, as the real service
//! does. Everything received is logged ([`CartesiaLogEntry`]) and the audio sent per context is
//! counted.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How the mock misbehaves. Read when a transcript is processed (WebSocket) or a request
/// arrives (HTTP), so [`MockCartesia::set_fault`] takes effect immediately.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CartesiaFault {
    #[default]
    None,
    /// WebSocket: answer each transcript with `{"type":"error",…}` for its context (and ignore
    /// the context afterwards). HTTP: answer with this status and a JSON error.
    Error { status: u16, message: String },
    /// WebSocket: `done` without any chunk (an empty stream). HTTP: 200 with an empty body.
    EmptyDone,
    /// Drop the connection (no close frame / no chunked terminator) after N audio chunks
    /// (counted per connection / per request).
    CloseAfterChunks(usize),
    /// Stop sending after N audio chunks, keep the connection open.
    StallAfterChunks(usize),
    /// Refuse the WebSocket upgrade / HTTP request with this status.
    Reject { status: u16 },
}

/// Mock behaviour. `Default` gives the values named on each field.
#[derive(Debug, Clone)]
pub struct MockCartesiaConfig {
    /// Expected key. Default `test-key`.
    pub api_key: String,
    /// Audio per transcript character. Default 60 ms.
    pub ms_per_char: u32,
    /// Audio bytes per chunk message. Default 3200 (100 ms at 16 kHz s16le).
    pub chunk_bytes: usize,
    /// Alternate chunk sizes `chunk_bytes + 1` / `chunk_bytes - 1` (odd lengths). Default false.
    pub odd_chunks: bool,
    /// Delay before the first chunk of each context / HTTP request. Default 0.
    pub first_audio_delay: Duration,
    /// Delay before every further chunk. Default 0.
    pub inter_chunk_delay: Duration,
    /// Send a `timestamps` message before each transcript's audio. Default true.
    pub send_timestamps: bool,
    /// Chunks still sent for a context after its `cancel` (if it was generating). Default 0.
    pub late_chunks_after_cancel: usize,
    pub fault: CartesiaFault,
}

impl Default for MockCartesiaConfig {
    fn default() -> Self {
        Self {
            api_key: "test-key".into(),
            ms_per_char: 60,
            chunk_bytes: 3200,
            odd_chunks: false,
            first_audio_delay: Duration::ZERO,
            inter_chunk_delay: Duration::ZERO,
            send_timestamps: true,
            late_chunks_after_cancel: 0,
            fault: CartesiaFault::None,
        }
    }
}

/// Something the mock received.
#[derive(Debug, Clone, PartialEq)]
pub enum CartesiaLogEntry {
    /// A WebSocket upgrade was accepted.
    Connected {
        connection: usize,
        auth_in_query: bool,
        version: String,
    },
    /// An upgrade or HTTP request was refused.
    Rejected { status: u16, reason: String },
    /// A generation request on a WebSocket.
    Request {
        connection: usize,
        context_id: String,
        transcript: String,
        /// The `continue` flag.
        more: bool,
        body: Value,
    },
    /// A cancel on a WebSocket.
    Cancel {
        connection: usize,
        context_id: String,
    },
    /// A `POST /tts/bytes`.
    Http { transcript: String, body: Value },
}

/// Deterministic s16le audio for `text` (trimmed): `ms_per_char` per character, silence for
/// whitespace, a tone of `200 + 25 × (index mod 32)` Hz otherwise.
pub fn mock_audio(text: &str, sample_rate: u32, ms_per_char: u32) -> Vec<u8> {
    let per_char = (sample_rate as u64 * ms_per_char as u64 / 1000) as usize;
    let mut out = Vec::with_capacity(text.len() * per_char * 2);
    let mut n: u64 = 0;
    for (i, c) in text.trim().chars().enumerate() {
        let freq = 200.0 + 25.0 * (i % 32) as f64;
        for _ in 0..per_char {
            let s: i16 = if c.is_whitespace() {
                0
            } else {
                let t = n as f64 / sample_rate as f64;
                (6000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
            };
            out.extend_from_slice(&s.to_le_bytes());
            n += 1;
        }
    }
    out
}

/// [`mock_audio`] in a Cartesia `output_format.encoding`: `pcm_s16le` as is, `pcm_f32le` as
/// `s / 32768`, `pcm_mulaw` / `pcm_alaw` as a deterministic 8-bit stand-in (high byte of the
/// s16 sample, **not** real G.711). `None` for unknown encodings.
pub fn mock_audio_encoded(
    text: &str,
    encoding: &str,
    sample_rate: u32,
    ms_per_char: u32,
) -> Option<Vec<u8>> {
    let s16 = mock_audio(text, sample_rate, ms_per_char);
    let samples = s16
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]));
    match encoding {
        "pcm_s16le" => Some(s16.clone()),
        "pcm_f32le" => Some(
            samples
                .flat_map(|s| (s as f32 / 32768.0).to_le_bytes())
                .collect(),
        ),
        "pcm_mulaw" | "pcm_alaw" => Some(samples.map(|s| (s >> 8) as u8).collect()),
        _ => None,
    }
}

struct Inner {
    fault: CartesiaFault,
    log: Vec<CartesiaLogEntry>,
    connections: usize,
    /// Audio bytes sent per context id (WebSocket).
    audio_sent: HashMap<String, usize>,
}

struct Shared {
    config: MockCartesiaConfig,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn fault(&self) -> CartesiaFault {
        self.lock().fault.clone()
    }
    fn log(&self, e: CartesiaLogEntry) {
        self.lock().log.push(e);
    }
}

impl Shared {
    fn new(config: MockCartesiaConfig) -> Arc<Shared> {
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                fault: config.fault.clone(),
                log: Vec::new(),
                connections: 0,
                audio_sent: HashMap::new(),
            }),
            config,
        })
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/tts/websocket", get(websocket))
        .route("/tts/bytes", post(bytes))
        .with_state(shared)
}

/// The mock's routes (`/tts/websocket`, `/tts/bytes`) for serving several mocks on one port.
pub fn router(config: MockCartesiaConfig) -> Router {
    routes(Shared::new(config))
}

/// A running mock. Stops when dropped.
pub struct MockCartesia {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for MockCartesia {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockCartesia {
    /// Binds 127.0.0.1:0 and serves until dropped. Must run inside a tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn spawn(config: MockCartesiaConfig) -> MockCartesia {
        let shared = Shared::new(config);
        let (addr, task) = crate::serve_on_loopback(routes(shared.clone()), "cartesia").await;
        MockCartesia { addr, shared, task }
    }

    /// `http://127.0.0.1:<port>`: use as the Cartesia `base_url` (the WebSocket URL is derived).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:<port>/tts/websocket`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/tts/websocket", self.addr)
    }

    /// Audio this mock produces for `text` with its configuration (s16le).
    pub fn expected_audio(&self, text: &str, sample_rate: u32) -> Vec<u8> {
        mock_audio(text, sample_rate, self.shared.config.ms_per_char)
    }

    pub fn set_fault(&self, fault: CartesiaFault) {
        self.shared.lock().fault = fault;
    }

    /// Everything received so far.
    pub fn log(&self) -> Vec<CartesiaLogEntry> {
        self.shared.lock().log.clone()
    }

    /// Accepted WebSocket connections so far.
    pub fn connection_count(&self) -> usize {
        self.shared.lock().connections
    }

    /// `(transcript, continue)` of every WebSocket request for `context_id`, in order.
    pub fn requests_for(&self, context_id: &str) -> Vec<(String, bool)> {
        self.log()
            .into_iter()
            .filter_map(|e| match e {
                CartesiaLogEntry::Request {
                    context_id: c,
                    transcript,
                    more,
                    ..
                } if c == context_id => Some((transcript, more)),
                _ => None,
            })
            .collect()
    }

    /// Context ids cancelled so far, in order.
    pub fn cancels(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter_map(|e| match e {
                CartesiaLogEntry::Cancel { context_id, .. } => Some(context_id),
                _ => None,
            })
            .collect()
    }

    /// Bodies of every `POST /tts/bytes`.
    pub fn http_requests(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter_map(|e| match e {
                CartesiaLogEntry::Http { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    }

    /// Audio bytes sent over WebSockets for `context_id` (late chunks after cancel included).
    pub fn audio_bytes_sent(&self, context_id: &str) -> usize {
        self.shared
            .lock()
            .audio_sent
            .get(context_id)
            .copied()
            .unwrap_or(0)
    }
}

fn error_json(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": message, "status_code": status.as_u16()}).to_string(),
    )
        .into_response()
}

/// Checks the key and version; `Ok(auth_in_query, version)`.
fn check_auth(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&HashMap<String, String>>,
) -> Result<(bool, String), Box<Response>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let q = |name: &str| query.and_then(|q| q.get(name).cloned());
    let (key, in_query) = match (header("x-api-key"), q("api_key")) {
        (Some(k), _) => (Some(k), false),
        (None, Some(k)) => (Some(k), true),
        (None, None) => (None, false),
    };
    if key.as_deref() != Some(shared.config.api_key.as_str()) {
        shared.log(CartesiaLogEntry::Rejected {
            status: 401,
            reason: "bad or missing API key".into(),
        });
        return Err(Box::new(error_json(
            StatusCode::UNAUTHORIZED,
            "Invalid API key",
        )));
    }
    let version = header("cartesia-version").or_else(|| q("cartesia_version"));
    match version.filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok((in_query, v)),
        None => {
            shared.log(CartesiaLogEntry::Rejected {
                status: 400,
                reason: "missing Cartesia-Version".into(),
            });
            Err(Box::new(error_json(
                StatusCode::BAD_REQUEST,
                "Cartesia-Version header is required",
            )))
        }
    }
}

/// The output format of a generation request: `(encoding, sample_rate)`.
fn output_format(body: &Value) -> Result<(String, u32), String> {
    let f = body
        .get("output_format")
        .ok_or("output_format is required")?;
    if f.get("container").and_then(Value::as_str) != Some("raw") {
        return Err("only the raw container is supported by the mock".into());
    }
    let encoding = f
        .get("encoding")
        .and_then(Value::as_str)
        .ok_or("output_format.encoding is required")?;
    let rate = f
        .get("sample_rate")
        .and_then(Value::as_u64)
        .ok_or("output_format.sample_rate is required")? as u32;
    if ![8000, 16000, 22050, 24000, 44100, 48000].contains(&rate) {
        return Err(format!("unsupported sample_rate {rate}"));
    }
    if mock_audio_encoded("", encoding, rate, 1).is_none() {
        return Err(format!("unsupported encoding {encoding}"));
    }
    Ok((encoding.to_string(), rate))
}

fn validate(body: &Value) -> Result<(String, u32), String> {
    if body.get("model_id").and_then(Value::as_str).is_none() {
        return Err("model_id is required".into());
    }
    if body.pointer("/voice/id").and_then(Value::as_str).is_none() {
        return Err("voice.id is required".into());
    }
    if body.get("transcript").and_then(Value::as_str).is_none() {
        return Err("transcript is required".into());
    }
    output_format(body)
}

/// Cuts audio into chunk messages.
fn split_audio(audio: &[u8], config: &MockCartesiaConfig) -> Vec<Vec<u8>> {
    let base = config.chunk_bytes.max(2);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut odd = false;
    while pos < audio.len() {
        let size = if config.odd_chunks {
            odd = !odd;
            if odd {
                base + 1
            } else {
                base - 1
            }
        } else {
            base
        };
        let end = (pos + size).min(audio.len());
        out.push(audio[pos..end].to_vec());
        pos = end;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// WebSocket

async fn websocket(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    if let CartesiaFault::Reject { status } = shared.fault() {
        shared.log(CartesiaLogEntry::Rejected {
            status,
            reason: "fault: reject".into(),
        });
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error_json(status, "rejected by mock fault");
    }
    let (auth_in_query, version) = match check_auth(&shared, &headers, Some(&query)) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let connection = {
        let mut inner = shared.lock();
        inner.connections += 1;
        let connection = inner.connections;
        inner.log.push(CartesiaLogEntry::Connected {
            connection,
            auth_in_query,
            version,
        });
        connection
    };
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| session(socket, shared, connection))
}

#[derive(Debug)]
enum Job {
    Generate {
        context_id: String,
        transcript: String,
        more: bool,
        encoding: String,
        sample_rate: u32,
    },
    Error {
        context_id: Option<String>,
        status: u16,
        message: String,
    },
}

/// Per-connection cancel state: context id → late chunks still allowed.
type Cancels = Arc<Mutex<HashMap<String, usize>>>;

async fn session(socket: WebSocket, shared: Arc<Shared>, connection: usize) {
    let (sink, mut stream) = socket.split();
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    let (kill_tx, mut kill_rx) = oneshot::channel::<()>();
    let cancels: Cancels = Arc::new(Mutex::new(HashMap::new()));
    let generator = tokio::spawn(generate(
        sink,
        jobs_rx,
        cancels.clone(),
        shared.clone(),
        kill_tx,
    ));
    let mut auto_ids = 0usize;
    loop {
        tokio::select! {
            _ = &mut kill_rx => break,
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    on_request(text.as_str(), &shared, connection, &cancels, &jobs_tx, &mut auto_ids);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    generator.abort();
}

fn on_request(
    text: &str,
    shared: &Shared,
    connection: usize,
    cancels: &Cancels,
    jobs: &mpsc::UnboundedSender<Job>,
    auto_ids: &mut usize,
) {
    let body: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let _ = jobs.send(Job::Error {
                context_id: None,
                status: 400,
                message: format!("invalid JSON: {e}"),
            });
            return;
        }
    };
    let context_id = body
        .get("context_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if body.get("cancel").and_then(Value::as_bool) == Some(true) {
        let Some(context_id) = context_id else {
            let _ = jobs.send(Job::Error {
                context_id: None,
                status: 400,
                message: "cancel requires context_id".into(),
            });
            return;
        };
        shared.log(CartesiaLogEntry::Cancel {
            connection,
            context_id: context_id.clone(),
        });
        cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(context_id)
            .or_insert(shared.config.late_chunks_after_cancel);
        return;
    }
    let context_id = context_id.unwrap_or_else(|| {
        *auto_ids += 1;
        format!("mock-context-{auto_ids}")
    });
    let transcript = body
        .get("transcript")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let more = body.get("continue").and_then(Value::as_bool) == Some(true);
    shared.log(CartesiaLogEntry::Request {
        connection,
        context_id: context_id.clone(),
        transcript: transcript.clone(),
        more,
        body: body.clone(),
    });
    let job = match validate(&body) {
        Ok((encoding, sample_rate)) => Job::Generate {
            context_id,
            transcript,
            more,
            encoding,
            sample_rate,
        },
        Err(message) => Job::Error {
            context_id: Some(context_id),
            status: 400,
            message,
        },
    };
    let _ = jobs.send(job);
}

struct Closed;

async fn send_json(sink: &mut SplitSink<WebSocket, Message>, v: Value) -> Result<(), Closed> {
    sink.send(Message::Text(v.to_string().into()))
        .await
        .map_err(|_| Closed)
}

async fn generate(
    mut sink: SplitSink<WebSocket, Message>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    cancels: Cancels,
    shared: Arc<Shared>,
    kill: oneshot::Sender<()>,
) {
    let config = shared.config.clone();
    let mut started: HashSet<String> = HashSet::new();
    let mut failed: HashSet<String> = HashSet::new();
    let mut sent_chunks: HashMap<String, usize> = HashMap::new();
    let mut total_chunks = 0usize;
    // Returns Some(late budget) while cancelled.
    let cancelled = |id: &str| -> Option<usize> {
        cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    };

    while let Some(job) = jobs.recv().await {
        let (context_id, transcript, more, encoding, sample_rate) = match job {
            Job::Error {
                context_id,
                status,
                message,
            } => {
                let msg = json!({"type": "error", "done": true, "status_code": status,
                                 "context_id": context_id, "error": message});
                if send_json(&mut sink, msg).await.is_err() {
                    return;
                }
                continue;
            }
            Job::Generate {
                context_id,
                transcript,
                more,
                encoding,
                sample_rate,
            } => (context_id, transcript, more, encoding, sample_rate),
        };
        if cancelled(&context_id).is_some() || failed.contains(&context_id) {
            continue;
        }
        let fault = shared.fault();
        match &fault {
            CartesiaFault::Error { status, message } => {
                failed.insert(context_id.clone());
                let msg = json!({"type": "error", "done": true, "status_code": status,
                                 "context_id": context_id, "title": "Generation failed",
                                 "message": message, "error_code": "mock_fault"});
                if send_json(&mut sink, msg).await.is_err() {
                    return;
                }
                continue;
            }
            CartesiaFault::EmptyDone => {
                if !more {
                    let msg = json!({"type": "done", "done": true, "status_code": 200,
                                     "context_id": context_id});
                    if send_json(&mut sink, msg).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            _ => {}
        }

        let text = transcript.trim();
        let audio = mock_audio_encoded(text, &encoding, sample_rate, config.ms_per_char)
            .unwrap_or_default();
        if config.send_timestamps && !text.is_empty() {
            let words: Vec<&str> = text.split_whitespace().collect();
            let starts: Vec<f64> = (0..words.len()).map(|i| i as f64 * 0.3).collect();
            let ends: Vec<f64> = starts.iter().map(|s| s + 0.25).collect();
            let msg = json!({"type": "timestamps", "context_id": context_id, "status_code": 206,
                             "done": false,
                             "word_timestamps": {"words": words, "start": starts, "end": ends}});
            if send_json(&mut sink, msg).await.is_err() {
                return;
            }
        }
        for piece in split_audio(&audio, &config) {
            let delay = if started.contains(&context_id) {
                config.inter_chunk_delay
            } else {
                config.first_audio_delay
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if let Some(budget) = cancelled(&context_id) {
                if budget == 0 {
                    break;
                }
                cancels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(context_id.clone(), budget - 1);
            }
            started.insert(context_id.clone());
            let data = base64::engine::general_purpose::STANDARD.encode(&piece);
            let msg = json!({"type": "chunk", "data": data, "done": false, "status_code": 206,
                             "step_time": 12.3, "context_id": context_id});
            if send_json(&mut sink, msg).await.is_err() {
                return;
            }
            *shared
                .lock()
                .audio_sent
                .entry(context_id.clone())
                .or_default() += piece.len();
            *sent_chunks.entry(context_id.clone()).or_default() += 1;
            total_chunks += 1;
            match fault {
                CartesiaFault::CloseAfterChunks(n) if total_chunks >= n => {
                    let _ = kill.send(());
                    return;
                }
                CartesiaFault::StallAfterChunks(n) if total_chunks >= n => {
                    std::future::pending::<()>().await;
                }
                _ => {}
            }
        }
        if !more && cancelled(&context_id).is_none() {
            let msg = json!({"type": "done", "done": true, "status_code": 200,
                             "context_id": context_id});
            if send_json(&mut sink, msg).await.is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP /tts/bytes

type BodyItem = Result<Bytes, std::io::Error>;

async fn bytes(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = shared.fault();
    if let CartesiaFault::Reject { status } = fault {
        shared.log(CartesiaLogEntry::Rejected {
            status,
            reason: "fault: reject".into(),
        });
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error_json(status, "rejected by mock fault");
    }
    if let Err(resp) = check_auth(&shared, &headers, None) {
        return *resp;
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error_json(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    let transcript = body
        .get("transcript")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    shared.log(CartesiaLogEntry::Http {
        transcript: transcript.clone(),
        body: body.clone(),
    });
    if body.get("context_id").is_some() || body.get("continue").is_some() {
        return error_json(
            StatusCode::BAD_REQUEST,
            "context_id/continue are WebSocket-only fields",
        );
    }
    let (encoding, rate) = match validate(&body) {
        Ok(x) => x,
        Err(m) => return error_json(StatusCode::BAD_REQUEST, &m),
    };
    match &fault {
        CartesiaFault::Error { status, message } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error_json(status, message);
        }
        CartesiaFault::EmptyDone => {
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::empty())
                .expect("valid response");
        }
        _ => {}
    }
    let config = shared.config.clone();
    let audio = mock_audio_encoded(transcript.trim(), &encoding, rate, config.ms_per_char)
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel::<BodyItem>(8);
    tokio::spawn(async move {
        let mut sent = 0usize;
        for piece in split_audio(&audio, &config) {
            let delay = if sent == 0 {
                config.first_audio_delay
            } else {
                config.inter_chunk_delay
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                return;
            }
            sent += 1;
            match fault {
                CartesiaFault::CloseAfterChunks(n) if sent >= n => {
                    // Let the server flush what was sent, then drop the connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = tx
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "mock disconnect",
                        )))
                        .await;
                    return;
                }
                CartesiaFault::StallAfterChunks(n) if sent >= n => {
                    tx.closed().await;
                    return;
                }
                _ => {}
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from_stream(stream))
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_length_is_proportional_to_text() {
        let a = mock_audio("Hi there", 16_000, 60);
        assert_eq!(a.len(), 8 * 960 * 2);
        // The space is silent, letters are not.
        let space = &a[2 * 960 * 2..3 * 960 * 2];
        assert!(space.iter().all(|&b| b == 0));
        assert!(a[..960 * 2].iter().any(|&b| b != 0));
        assert_eq!(mock_audio("  x  ", 8000, 10).len(), 160);
        assert_eq!(
            mock_audio_encoded("ab", "pcm_mulaw", 8000, 10)
                .unwrap()
                .len(),
            160
        );
        assert!(mock_audio_encoded("ab", "opus", 8000, 10).is_none());
    }

    #[test]
    fn odd_chunks_alternate() {
        let config = MockCartesiaConfig {
            chunk_bytes: 10,
            odd_chunks: true,
            ..MockCartesiaConfig::default()
        };
        let sizes: Vec<usize> = split_audio(&[0u8; 45], &config)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![11, 9, 11, 9, 5]);
    }
}
