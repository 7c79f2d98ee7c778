//! A protocol-faithful mock of an OpenAI-compatible chat-completions server (`protocols.md`
//! §7): `POST /chat/completions` (also under `/v1/…`).
//!
//! Streaming requests (`"stream": true`) get `text/event-stream` chunks exactly like the real
//! servers: a role chunk, the scripted reply cut into content fragments, tool calls whose
//! arguments are split across many deltas, a final chunk with `finish_reason`, an optional usage
//! chunk (`choices: []`, `choices: null` or no `choices`) and `data: [DONE]`. Non-streaming
//! requests get one `chat.completion` object.
//!
//! Replies come from a script ([`MockLlm::push_reply`]), one per request, falling back to
//! [`MockLlmConfig::default_reply`]. Each reply may carry a fault ([`LlmFault`]): HTTP errors
//! (500, 429 with `retry-after`), stalling forever after N fragments, an empty completion, a
//! malformed chunk, a mid-stream disconnect or a mid-stream error event. Timing is configurable
//! (time to first token, delay between fragments). Every request is recorded
//! ([`RecordedLlmRequest`]) and the bearer key is checked (401 otherwise).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How one reply misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmFault {
    /// Answer with this HTTP status and an OpenAI error body; `retry_after` (seconds) adds the
    /// `retry-after` header (use with 429).
    Http {
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    /// Send N content fragments, then nothing, forever (connection stays open).
    StallAfter(usize),
    /// Zero-token completion: the role chunk, a `stop` chunk, then `[DONE]`.
    Empty,
    /// Send N fragments, then a chunk that is not JSON, then the rest of the reply.
    MalformedAfter(usize),
    /// Send N fragments, then drop the connection (no `[DONE]`, no chunked terminator).
    DisconnectAfter(usize),
    /// Send N fragments, then `data: {"error":{…}}` and end the body.
    ErrorEventAfter(usize),
}

impl LlmFault {
    /// HTTP 500 with a server-error body.
    pub fn server_error() -> Self {
        LlmFault::Http {
            status: 500,
            message: "The server had an error while processing your request.".into(),
            retry_after: None,
        }
    }
    /// HTTP 429 with `retry-after: <secs>`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        LlmFault::Http {
            status: 429,
            message: "Rate limit reached for model. Please try again later.".into(),
            retry_after: Some(retry_after_secs),
        }
    }
}

/// A scripted tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockToolCall {
    pub name: String,
    pub arguments_json: String,
}

/// One scripted reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MockReply {
    /// Assistant text.
    pub text: String,
    /// Explicit content fragments; `None` = cut `text` every
    /// [`MockLlmConfig::fragment_chars`] characters.
    pub fragments: Option<Vec<String>>,
    /// Tool calls, streamed after the text.
    pub tool_calls: Vec<MockToolCall>,
    /// Override of `finish_reason` (default `tool_calls` when there are calls, else `stop`).
    pub finish_reason: Option<String>,
    pub fault: Option<LlmFault>,
}

impl MockReply {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
    /// A reply streamed as exactly these fragments.
    pub fn fragments<I, S>(fragments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let fragments: Vec<String> = fragments.into_iter().map(Into::into).collect();
        Self {
            text: fragments.concat(),
            fragments: Some(fragments),
            ..Self::default()
        }
    }
    /// A reply that only faults.
    pub fn fault(fault: LlmFault) -> Self {
        Self {
            fault: Some(fault),
            ..Self::default()
        }
    }
    /// Adds a tool call.
    pub fn with_tool_call(
        mut self,
        name: impl Into<String>,
        arguments_json: impl Into<String>,
    ) -> Self {
        self.tool_calls.push(MockToolCall {
            name: name.into(),
            arguments_json: arguments_json.into(),
        });
        self
    }
    pub fn with_fault(mut self, fault: LlmFault) -> Self {
        self.fault = Some(fault);
        self
    }
    pub fn with_finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }
}

/// Shape of the usage chunk sent when the request asked for `include_usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageStyle {
    /// `"choices": []` (OpenAI).
    #[default]
    EmptyChoices,
    /// `"choices": null`.
    NullChoices,
    /// No `choices` key.
    NoChoices,
    /// Never send a usage chunk.
    Off,
}

/// Mock behaviour. `Default` gives the values named on each field.
#[derive(Debug, Clone)]
pub struct MockLlmConfig {
    /// Expected bearer key (`Authorization: Bearer <key>`, 401 otherwise). `None` accepts any
    /// request, with or without the header. Default `Some("test-key")`.
    pub api_key: Option<String>,
    /// Reply used when the script is empty. Default `"Hello! How can I help you today?"`.
    pub default_reply: MockReply,
    /// Delay before the first content fragment (the role chunk goes out at once). Default 0.
    pub time_to_first_token: Duration,
    /// Delay before each further fragment (content and tool-argument deltas). Default 0.
    pub inter_token_delay: Duration,
    /// Characters per content fragment when a reply has no explicit fragments. Default 4.
    pub fragment_chars: usize,
    /// Characters per tool-argument fragment. Default 3.
    pub argument_fragment_chars: usize,
    /// Usage chunk shape. Default [`UsageStyle::EmptyChoices`].
    pub usage_style: UsageStyle,
    /// Send a `: keep-alive` comment before the first fragment. Default true.
    pub keepalive_comment: bool,
}

impl Default for MockLlmConfig {
    fn default() -> Self {
        Self {
            api_key: Some("test-key".into()),
            default_reply: MockReply::text("Hello! How can I help you today?"),
            time_to_first_token: Duration::ZERO,
            inter_token_delay: Duration::ZERO,
            fragment_chars: 4,
            argument_fragment_chars: 3,
            usage_style: UsageStyle::EmptyChoices,
            keepalive_comment: true,
        }
    }
}

/// One request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedLlmRequest {
    /// Request path (`/chat/completions` or `/v1/chat/completions`).
    pub path: String,
    /// The `Authorization` header, verbatim.
    pub authorization: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// Parsed JSON body (`Value::Null` if it did not parse).
    pub body: Value,
    /// Whether the key check passed.
    pub authorized: bool,
}

impl RecordedLlmRequest {
    /// `body.stream == true`.
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }
    /// `(role, content)` of every message in the body (content `""` when null).
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        (
                            m.get("role")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            m.get("content")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

struct Inner {
    script: VecDeque<MockReply>,
    default_reply: MockReply,
    requests: Vec<RecordedLlmRequest>,
    served: u64,
}

struct Shared {
    config: MockLlmConfig,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Shared {
    fn new(config: MockLlmConfig) -> Arc<Shared> {
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                script: VecDeque::new(),
                default_reply: config.default_reply.clone(),
                requests: Vec::new(),
                served: 0,
            }),
            config,
        })
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/chat/completions", post(chat_completions))
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(shared)
}

/// The mock's routes (`/chat/completions`, `/v1/chat/completions`) for serving several
/// mocks on one port.
pub fn router(config: MockLlmConfig) -> Router {
    routes(Shared::new(config))
}

/// A running mock server. Stops when dropped.
pub struct MockLlm {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockLlm {
    /// Binds 127.0.0.1:0 and serves until dropped. Must run inside a tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn spawn(config: MockLlmConfig) -> MockLlm {
        let shared = Shared::new(config);
        let (addr, task) = crate::serve_on_loopback(routes(shared.clone()), "llm").await;
        MockLlm { addr, shared, task }
    }

    /// `http://127.0.0.1:<port>/v1`: use as the LLM `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a reply for the next request (FIFO).
    pub fn push_reply(&self, reply: MockReply) {
        self.shared.lock().script.push_back(reply);
    }

    /// Replaces the fallback reply.
    pub fn set_default_reply(&self, reply: MockReply) {
        self.shared.lock().default_reply = reply;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedLlmRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn last_request(&self) -> Option<RecordedLlmRequest> {
        self.shared.lock().requests.last().cloned()
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "code": code}})
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let authorized = match &shared.config.api_key {
        None => true,
        Some(key) => authorization.as_deref() == Some(format!("Bearer {key}").as_str()),
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (reply, serial) = {
        let mut inner = shared.lock();
        inner.requests.push(RecordedLlmRequest {
            path: uri.path().to_string(),
            authorization,
            accept: headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: parsed.clone(),
            authorized,
        });
        if !authorized {
            drop(inner);
            return json_response(
                StatusCode::UNAUTHORIZED,
                error_body(
                    "Invalid API Key",
                    "invalid_request_error",
                    Some("invalid_api_key"),
                ),
            );
        }
        if parsed.get("messages").and_then(Value::as_array).is_none()
            || parsed.get("model").and_then(Value::as_str).is_none()
        {
            drop(inner);
            return json_response(
                StatusCode::BAD_REQUEST,
                error_body(
                    "'messages' and 'model' are required",
                    "invalid_request_error",
                    None,
                ),
            );
        }
        inner.served += 1;
        let reply = inner
            .script
            .pop_front()
            .unwrap_or_else(|| inner.default_reply.clone());
        (reply, inner.served)
    };

    if let Some(LlmFault::Http {
        status,
        message,
        retry_after,
    }) = &reply.fault
    {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = if status == StatusCode::TOO_MANY_REQUESTS {
            ("rate_limit_exceeded", Some("rate_limit_exceeded"))
        } else if status.is_server_error() {
            ("server_error", None)
        } else {
            ("invalid_request_error", None)
        };
        let mut resp = json_response(status, error_body(message, kind.0, kind.1));
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                secs.to_string().parse().expect("numeric header"),
            );
        }
        return resp;
    }

    let model = parsed["model"].as_str().unwrap_or("mock").to_string();
    let prompt_tokens = parsed["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| m["content"].as_str().map_or(0, |c| c.chars().count()))
                .sum::<usize>()
                / 4
        })
        .unwrap_or(0) as u64;
    let plan = Plan::new(&shared.config, reply, model, serial, prompt_tokens);
    if parsed.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = parsed
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        stream_response(shared.config.clone(), plan, include_usage)
    } else {
        complete_response(shared.config.clone(), plan).await
    }
}

/// What to send for one request.
struct Plan {
    id: String,
    model: String,
    created: u64,
    fragments: Vec<String>,
    tool_calls: Vec<MockToolCall>,
    finish_reason: String,
    fault: Option<LlmFault>,
    prompt_tokens: u64,
}

impl Plan {
    fn new(
        config: &MockLlmConfig,
        reply: MockReply,
        model: String,
        serial: u64,
        prompt_tokens: u64,
    ) -> Self {
        let empty = reply.fault == Some(LlmFault::Empty);
        let fragments = if empty {
            Vec::new()
        } else {
            reply
                .fragments
                .clone()
                .unwrap_or_else(|| split_chars(&reply.text, config.fragment_chars))
        };
        let tool_calls = if empty { Vec::new() } else { reply.tool_calls };
        let finish_reason = reply.finish_reason.unwrap_or_else(|| {
            if tool_calls.is_empty() {
                "stop".into()
            } else {
                "tool_calls".into()
            }
        });
        Self {
            id: format!("chatcmpl-mock{serial:06}"),
            model,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            fragments,
            tool_calls,
            finish_reason,
            fault: reply.fault,
            prompt_tokens,
        }
    }

    fn usage(&self) -> Value {
        let completion = self.fragments.len() as u64 + self.tool_calls.len() as u64;
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
               "total_tokens": self.prompt_tokens + completion})
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        let c = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        format!("data: {c}\n\n")
    }
}

/// Splits into pieces of `n` characters (never inside a UTF-8 sequence).
pub fn split_chars(text: &str, n: usize) -> Vec<String> {
    let n = n.max(1);
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

type BodyItem = Result<Bytes, std::io::Error>;

fn stream_response(config: MockLlmConfig, plan: Plan, include_usage: bool) -> Response {
    let (tx, rx) = mpsc::channel::<BodyItem>(16);
    tokio::spawn(async move {
        // Send failures mean the client went away: just stop.
        let _ = write_stream(&config, &plan, include_usage, &tx).await;
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .expect("valid response")
}

struct Gone;

async fn send(tx: &mpsc::Sender<BodyItem>, s: String) -> Result<(), Gone> {
    tx.send(Ok(Bytes::from(s))).await.map_err(|_| Gone)
}

async fn write_stream(
    config: &MockLlmConfig,
    plan: &Plan,
    include_usage: bool,
    tx: &mpsc::Sender<BodyItem>,
) -> Result<(), Gone> {
    send(
        tx,
        plan.chunk(json!({"role": "assistant", "content": ""}), None),
    )
    .await?;
    if plan.fault == Some(LlmFault::Empty) {
        return send(tx, "data: [DONE]\n\n".into()).await;
    }
    if config.keepalive_comment {
        send(tx, ": keep-alive\n\n".into()).await?;
    }
    let fault_at = match &plan.fault {
        Some(LlmFault::StallAfter(n))
        | Some(LlmFault::MalformedAfter(n))
        | Some(LlmFault::DisconnectAfter(n))
        | Some(LlmFault::ErrorEventAfter(n)) => Some(*n),
        _ => None,
    };
    let mut sent = 0usize;
    let mut first = true;
    let pause = |first: &mut bool| {
        let d = if *first {
            config.time_to_first_token
        } else {
            config.inter_token_delay
        };
        *first = false;
        d
    };

    let mut units: Vec<String> = plan
        .fragments
        .iter()
        .map(|f| plan.chunk(json!({"content": f}), None))
        .collect();
    for (i, call) in plan.tool_calls.iter().enumerate() {
        units.push(plan.chunk(
            json!({"tool_calls": [{"index": i, "id": format!("call_mock_{i}"), "type": "function",
                                   "function": {"name": call.name, "arguments": ""}}]}),
            None,
        ));
        for piece in split_chars(&call.arguments_json, config.argument_fragment_chars) {
            units.push(plan.chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                None,
            ));
        }
    }

    for unit in units {
        if fault_at == Some(sent) {
            if let Some(f) = &plan.fault {
                if !inject_fault(f, tx).await? {
                    return Ok(());
                }
            }
        }
        let d = pause(&mut first);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        send(tx, unit).await?;
        sent += 1;
    }
    if fault_at.is_some_and(|n| n >= sent) {
        // The fault point is at or past the end of the reply: apply it before finishing.
        if let Some(f) = &plan.fault {
            if !inject_fault(f, tx).await? {
                return Ok(());
            }
        }
    }
    send(tx, plan.chunk(json!({}), Some(&plan.finish_reason))).await?;
    if include_usage {
        let usage = plan.usage();
        let base = json!({"id": plan.id, "object": "chat.completion.chunk", "created": plan.created,
                          "model": plan.model, "usage": usage});
        let mut c = base.as_object().cloned().unwrap_or_default();
        match config.usage_style {
            UsageStyle::EmptyChoices => {
                c.insert("choices".into(), json!([]));
            }
            UsageStyle::NullChoices => {
                c.insert("choices".into(), Value::Null);
            }
            UsageStyle::NoChoices => {}
            UsageStyle::Off => return send(tx, "data: [DONE]\n\n".into()).await,
        }
        send(tx, format!("data: {}\n\n", Value::Object(c))).await?;
    }
    send(tx, "data: [DONE]\n\n".into()).await
}

/// Applies a mid-stream fault. `Ok(true)` = keep streaming the reply afterwards.
async fn inject_fault(fault: &LlmFault, tx: &mpsc::Sender<BodyItem>) -> Result<bool, Gone> {
    match fault {
        LlmFault::StallAfter(_) => {
            // Hold the connection open until the client gives up.
            tx.closed().await;
            Err(Gone)
        }
        LlmFault::DisconnectAfter(_) => {
            // Let the server flush what was sent so far: a real drop happens after delivery.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx
                .send(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "mock disconnect",
                )))
                .await;
            Err(Gone)
        }
        LlmFault::ErrorEventAfter(_) => {
            let e = error_body("The model is overloaded.", "server_error", None);
            send(tx, format!("data: {e}\n\n")).await?;
            Ok(false)
        }
        LlmFault::MalformedAfter(_) => {
            send(
                tx,
                "data: {\"choices\":[{\"delta\":{\"content\":\n\n".into(),
            )
            .await?;
            Ok(true)
        }
        LlmFault::Http { .. } | LlmFault::Empty => Ok(true),
    }
}

async fn complete_response(config: MockLlmConfig, plan: Plan) -> Response {
    if !config.time_to_first_token.is_zero() {
        tokio::time::sleep(config.time_to_first_token).await;
    }
    match &plan.fault {
        Some(LlmFault::StallAfter(_)) => return std::future::pending::<Response>().await,
        Some(LlmFault::DisconnectAfter(_)) => {
            let body = futures::stream::once(async {
                Err::<Bytes, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "mock disconnect",
                ))
            });
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(body))
                .expect("valid response");
        }
        Some(LlmFault::MalformedAfter(_)) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"choices\":[{\"message\":",
            )
                .into_response();
        }
        Some(LlmFault::ErrorEventAfter(_)) => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_body("The model is overloaded.", "server_error", None),
            );
        }
        _ => {}
    }
    let text: String = plan.fragments.concat();
    let mut message = json!({"role": "assistant", "content": text});
    if !plan.tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(
            plan.tool_calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    json!({"id": format!("call_mock_{i}"), "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments_json}})
                })
                .collect(),
        );
        if text.is_empty() {
            message["content"] = Value::Null;
        }
    }
    json_response(
        StatusCode::OK,
        json!({
            "id": plan.id, "object": "chat.completion", "created": plan.created,
            "model": plan.model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "message": message, "logprobs": null,
                         "finish_reason": plan.finish_reason}],
            "usage": plan.usage(),
        }),
    )
}
