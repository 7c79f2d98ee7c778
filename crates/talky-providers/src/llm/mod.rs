//! OpenAI-compatible chat completions (protocols §7): Groq, OpenAI, Ollama, vLLM, llama.cpp.
//!
//! [`OpenAiCompatLlm`] implements the core [`Llm`] port over `reqwest`:
//!
//! * `POST {base_url}/chat/completions` with `Authorization: Bearer <key>` (no header when no
//!   key is configured, for local servers), `stream: true` and `stream_options.include_usage`.
//! * The body is decoded as server-sent events ([`sse`]); chunks become tokens, tool calls merged
//!   across deltas by `index`, and a final `Done` carrying the completion state ([`assemble`]).
//! * Non-2xx answers map to typed [`LlmError`]s (429 → `RateLimited` with `retry-after`).
//! * G16 deadlines: `first_token_timeout` covers the request until the first event,
//!   `inter_token_timeout` each further event. Both only run while the consumer is polling the
//!   stream, so playback back-pressure is never counted. Expiry → [`LlmError::Timeout`].

mod assemble;
pub mod sse;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{json, Map, Value};
use talky_core::ports::llm::{
    ChatMessage, ChatRequest, Llm, LlmError, LlmEvent, Role, TimeoutKind, ToolChoice,
};
use tokio::time::Instant;

use assemble::{error_message, message_tool_calls, truncate, Assembler, Step};

/// Groq's OpenAI-compatible base URL (note the `/openai` segment).
pub const DEFAULT_BASE_URL: &str = "https://api.groq.com/openai/v1";
/// Default model.
pub const DEFAULT_MODEL: &str = "llama-3.1-8b-instant";

/// Configuration of one OpenAI-compatible endpoint. `Debug` never prints the key.
#[derive(Clone, PartialEq)]
pub struct LlmConfig {
    /// Base URL up to and including the API version segment (`…/v1`); `/chat/completions` is
    /// appended. Must carry an `http://` or `https://` scheme.
    pub base_url: String,
    /// Bearer key; `None` or empty sends no `Authorization` header (Ollama, vLLM).
    pub api_key: Option<String>,
    pub model: String,
    /// Sampling temperature unless the request sets one.
    pub temperature: Option<f32>,
    /// `max_tokens` unless the request sets one.
    pub max_tokens: Option<u32>,
    /// Send `stream_options: {"include_usage": true}`.
    pub include_usage: bool,
    /// TCP/TLS connect timeout (§0.1: 3 s).
    pub connect_timeout: Duration,
    /// Total timeout of a non-streaming request (`complete`).
    pub request_timeout: Duration,
    /// G16: first event (response headers included) within this time.
    pub first_token_timeout: Duration,
    /// G16: each further event within this time.
    pub inter_token_timeout: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            api_key: None,
            model: DEFAULT_MODEL.into(),
            temperature: Some(0.4),
            max_tokens: None,
            include_usage: true,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(30),
            first_token_timeout: Duration::from_secs(5),
            inter_token_timeout: Duration::from_secs(3),
        }
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_deref().map(redact))
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("include_usage", &self.include_usage)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("inter_token_timeout", &self.inter_token_timeout)
            .finish()
    }
}

/// First 6 characters of a secret followed by `…` (§0.1).
pub(crate) fn redact(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    format!("{head}…")
}

/// The OpenAI-compatible chat client.
#[derive(Clone)]
pub struct OpenAiCompatLlm {
    config: LlmConfig,
    endpoint: String,
    http: reqwest::Client,
}

impl fmt::Debug for OpenAiCompatLlm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatLlm")
            .field("config", &self.config)
            .finish()
    }
}

impl OpenAiCompatLlm {
    /// Validates the configuration and builds the HTTP client.
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let base = config.base_url.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(base)
            .map_err(|e| LlmError::Config(format!("invalid llm base_url {base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LlmError::Config(format!(
                "llm base_url {base:?} must start with http:// or https://"
            )));
        }
        if config.model.trim().is_empty() {
            return Err(LlmError::Config("llm model is empty".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| LlmError::Config(format!("http client: {e}")))?;
        Ok(Self {
            endpoint: format!("{base}/chat/completions"),
            config,
            http,
        })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// The full `…/chat/completions` URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The JSON body this client sends for `req`.
    pub fn request_body(&self, req: &ChatRequest, stream: bool) -> Value {
        let mut body = Map::new();
        body.insert(
            "model".into(),
            json!(req.model.as_deref().unwrap_or(&self.config.model)),
        );
        body.insert(
            "messages".into(),
            Value::Array(req.messages.iter().map(wire_message).collect()),
        );
        body.insert("stream".into(), json!(stream));
        if stream && self.config.include_usage {
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        if let Some(t) = req.temperature.or(self.config.temperature) {
            body.insert("temperature".into(), json!(round3(t)));
        }
        if let Some(p) = req.top_p {
            body.insert("top_p".into(), json!(round3(p)));
        }
        if let Some(m) = req.max_tokens.or(self.config.max_tokens) {
            body.insert("max_tokens".into(), json!(m));
        }
        if !req.stop.is_empty() {
            body.insert("stop".into(), json!(req.stop));
        }
        if let Some(seed) = req.seed {
            body.insert("seed".into(), json!(seed));
        }
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
            let choice = match req.tool_choice {
                ToolChoice::Auto => "auto",
                ToolChoice::None => "none",
                ToolChoice::Required => "required",
            };
            body.insert("tool_choice".into(), json!(choice));
        }
        Value::Object(body)
    }

    fn post(&self, body: &Value, stream: bool) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .post(&self.endpoint)
            .header(CONTENT_TYPE, "application/json")
            .header(
                ACCEPT,
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(body.to_string());
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            rb = rb.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        rb
    }
}

fn round3(x: f32) -> f64 {
    (x as f64 * 1000.0).round() / 1000.0
}

fn wire_message(m: &ChatMessage) -> Value {
    let mut o = Map::new();
    o.insert("role".into(), json!(m.role.as_str()));
    let calls = m.tool_calls.as_deref().unwrap_or_default();
    if m.role == Role::Assistant && !calls.is_empty() {
        o.insert(
            "content".into(),
            if m.content.is_empty() {
                Value::Null
            } else {
                json!(m.content)
            },
        );
        let calls: Vec<Value> = calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments_json}})
            })
            .collect();
        o.insert("tool_calls".into(), Value::Array(calls));
    } else {
        o.insert("content".into(), json!(m.content));
    }
    if let Some(id) = &m.tool_call_id {
        o.insert("tool_call_id".into(), json!(id));
    }
    Value::Object(o)
}

/// Maps a non-2xx response to a typed error.
/// Longest error body read (the rest is ignored).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Upper bound on reading an error body.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);

async fn error_from_response(resp: reqwest::Response) -> LlmError {
    let status = resp.status().as_u16();
    let retry_after = parse_retry_after(resp.headers());
    let mut body = resp.bytes_stream();
    let mut raw = Vec::new();
    let read = async {
        while let Some(Ok(chunk)) = body.next().await {
            raw.extend_from_slice(&chunk);
            if raw.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(ERROR_BODY_TIMEOUT, read).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let message = match serde_json::from_str::<Value>(&text) {
        Ok(v) => match v.get("error") {
            Some(e) => error_message(e),
            None => truncate(&text, 500),
        },
        Err(_) => truncate(text.trim(), 500),
    };
    error_from_status(status, message, retry_after)
}

fn error_from_status(status: u16, message: String, retry_after: Option<Duration>) -> LlmError {
    match status {
        429 => LlmError::RateLimited {
            retry_after,
            message,
        },
        401 | 403 => LlmError::Unauthorized { status, message },
        500..=599 => LlmError::Server { status, message },
        _ => LlmError::BadRequest { status, message },
    }
}

/// `retry-after` as (possibly fractional) seconds. HTTP-date values are ignored.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

fn transport_error(e: reqwest::Error, kind: TimeoutKind) -> LlmError {
    if e.is_timeout() {
        LlmError::Timeout(kind)
    } else {
        LlmError::Connect(without_url(e).to_string())
    }
}

fn without_url(e: reqwest::Error) -> reqwest::Error {
    e.without_url()
}

/// Body → events for one streamed completion, with the G16 deadlines.
///
/// Deadlines only run inside [`ChatStream::next_event`], i.e. while the consumer is waiting:
/// the first fragment (a content or tool-call delta) must arrive within the first-token budget
/// (total waiting time, response headers included), every further fragment within
/// `inter` of the previous one. Keep-alive comments and empty chunks are not progress.
struct ChatStream {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    sse: sse::SseDecoder,
    asm: Assembler,
    body_done: bool,
    finished: bool,
    /// Waiting time left for the first fragment.
    first_left: Duration,
    inter: Duration,
    fragment_seen: bool,
}

impl ChatStream {
    /// The next event; `None` after `Done` or an error.
    async fn next_event(&mut self) -> Option<Result<LlmEvent, LlmError>> {
        let call_start = Instant::now();
        let mut deadline = call_start
            + if self.fragment_seen {
                self.inter
            } else {
                self.first_left
            };
        let out = loop {
            if let Some(ev) = self.asm.pop() {
                break Some(Ok(ev));
            }
            if self.finished {
                break None;
            }
            let data = if self.body_done {
                self.sse.finish()
            } else {
                self.sse.next_data()
            };
            match data {
                Some(Ok(data)) => {
                    let before = self.asm.fragments();
                    match self.asm.on_data(&data) {
                        Ok(Step::Continue) => {}
                        Ok(Step::Done) => {
                            self.asm.finish();
                            self.finished = true;
                        }
                        Err(e) => {
                            self.finished = true;
                            break Some(Err(e));
                        }
                    }
                    if self.asm.fragments() > before {
                        if !self.fragment_seen {
                            self.fragment_seen = true;
                            self.first_left = Duration::ZERO;
                        }
                        deadline = Instant::now() + self.inter;
                    }
                }
                Some(Err(e)) => {
                    self.finished = true;
                    break Some(Err(e));
                }
                None if self.body_done => {
                    self.finished = true;
                    if self.asm.finish_seen() {
                        // Lenient: a finish reason arrived, only `[DONE]` is missing.
                        tracing::debug!("llm stream ended without [DONE] after finish_reason");
                        self.asm.finish();
                    } else {
                        break Some(Err(LlmError::Broken(
                            "connection closed before [DONE]".into(),
                        )));
                    }
                }
                None => match tokio::time::timeout_at(deadline, self.body.next()).await {
                    Err(_) => {
                        self.finished = true;
                        let kind = if self.fragment_seen {
                            TimeoutKind::InterToken
                        } else {
                            TimeoutKind::FirstToken
                        };
                        break Some(Err(LlmError::Timeout(kind)));
                    }
                    Ok(Some(Ok(bytes))) => self.sse.push(&bytes),
                    Ok(Some(Err(e))) => {
                        self.finished = true;
                        break Some(Err(LlmError::Broken(without_url(e).to_string())));
                    }
                    Ok(None) => self.body_done = true,
                },
            }
        };
        if !self.fragment_seen {
            self.first_left = self.first_left.saturating_sub(call_start.elapsed());
        }
        out
    }

    fn into_stream(self) -> BoxStream<'static, Result<LlmEvent, LlmError>> {
        stream::unfold(self, |mut st| async move {
            let ev = st.next_event().await?;
            Some((ev, st))
        })
        .boxed()
    }
}

#[async_trait]
impl Llm for OpenAiCompatLlm {
    async fn stream_chat(
        &self,
        req: ChatRequest,
    ) -> Result<BoxStream<'static, Result<LlmEvent, LlmError>>, LlmError> {
        let first = req
            .deadlines
            .first_token
            .unwrap_or(self.config.first_token_timeout);
        let inter = req
            .deadlines
            .inter_token
            .unwrap_or(self.config.inter_token_timeout);
        let body = self.request_body(&req, true);
        let started = Instant::now();
        let resp = match tokio::time::timeout(first, self.post(&body, true).send()).await {
            Err(_) => return Err(LlmError::Timeout(TimeoutKind::FirstToken)),
            Ok(Err(e)) => return Err(transport_error(e, TimeoutKind::FirstToken)),
            Ok(Ok(resp)) => resp,
        };
        if !resp.status().is_success() {
            return Err(error_from_response(resp).await);
        }
        let remaining = first.saturating_sub(started.elapsed());
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if is_json {
            // A server that ignored `stream: true`: replay the whole completion as events.
            let text = match tokio::time::timeout(remaining, resp.text()).await {
                Err(_) => return Err(LlmError::Timeout(TimeoutKind::FirstToken)),
                Ok(Err(e)) => return Err(LlmError::Broken(without_url(e).to_string())),
                Ok(Ok(t)) => t,
            };
            let events = completion_events(&text)?;
            return Ok(stream::iter(events.into_iter().map(Ok)).boxed());
        }
        let inner = ChatStream {
            body: resp.bytes_stream().boxed(),
            sse: sse::SseDecoder::new(),
            asm: Assembler::new(),
            body_done: false,
            finished: false,
            first_left: remaining,
            inter,
            fragment_seen: false,
        };
        Ok(inner.into_stream())
    }

    async fn complete(&self, req: ChatRequest) -> Result<String, LlmError> {
        let body = self.request_body(&req, false);
        let resp = self
            .post(&body, false)
            .timeout(self.config.request_timeout)
            .send()
            .await
            .map_err(|e| transport_error(e, TimeoutKind::Request))?;
        if !resp.status().is_success() {
            return Err(error_from_response(resp).await);
        }
        let text = resp
            .text()
            .await
            .map_err(|e| transport_error(e, TimeoutKind::Request))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            LlmError::Protocol(format!(
                "malformed completion ({e}): {}",
                truncate(&text, 200)
            ))
        })?;
        if let Some(err) = v.get("error") {
            return Err(LlmError::Server {
                status: 200,
                message: error_message(err),
            });
        }
        let content = v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if content.trim().is_empty() {
            return Err(LlmError::Empty);
        }
        Ok(content.to_string())
    }
}

/// Events equivalent to a non-streamed `chat.completion` body.
fn completion_events(text: &str) -> Result<Vec<LlmEvent>, LlmError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        LlmError::Protocol(format!(
            "malformed completion ({e}): {}",
            truncate(text, 200)
        ))
    })?;
    if let Some(err) = v.get("error") {
        return Err(LlmError::Broken(error_message(err)));
    }
    let message = v.pointer("/choices/0/message").cloned().unwrap_or_default();
    let mut asm = Assembler::new();
    let mut delta = Map::new();
    if let Some(c) = message.get("content").and_then(Value::as_str) {
        delta.insert("content".into(), json!(c));
    }
    let calls: Vec<Value> = message_tool_calls(&message)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"index": i, "id": c.id, "type": "function",
                   "function": {"name": c.name, "arguments": c.arguments_json}})
        })
        .collect();
    if !calls.is_empty() {
        delta.insert("tool_calls".into(), Value::Array(calls));
    }
    let chunk = json!({
        "choices": [{"index": 0, "delta": delta,
                     "finish_reason": v.pointer("/choices/0/finish_reason").cloned().unwrap_or(Value::Null)}],
        "usage": v.get("usage").cloned().unwrap_or(Value::Null),
    });
    asm.on_data(&chunk.to_string())?;
    asm.finish();
    let mut out = Vec::new();
    while let Some(e) = asm.pop() {
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use talky_core::ports::llm::{ToolCall, ToolDefinition};

    #[test]
    fn config_rejects_schemeless_base_url() {
        let cfg = LlmConfig {
            base_url: "api.groq.com/openai/v1".into(),
            ..LlmConfig::default()
        };
        assert!(matches!(
            OpenAiCompatLlm::new(cfg),
            Err(LlmError::Config(_))
        ));
        let llm = OpenAiCompatLlm::new(LlmConfig::default()).unwrap();
        assert_eq!(
            llm.endpoint(),
            "https://api.groq.com/openai/v1/chat/completions"
        );
    }

    #[test]
    fn debug_hides_key() {
        let cfg = LlmConfig {
            api_key: Some("gsk_secretsecret".into()),
            ..LlmConfig::default()
        };
        let s = format!("{cfg:?}");
        assert!(!s.contains("secretsecret"), "{s}");
        assert!(s.contains("gsk_se…"));
    }

    #[test]
    fn request_body_shape() {
        let llm = OpenAiCompatLlm::new(LlmConfig::default()).unwrap();
        let mut req = ChatRequest::new(vec![
            ChatMessage::system("sys"),
            ChatMessage::assistant_with_tools(
                "",
                vec![ToolCall {
                    id: "call_1".into(),
                    name: "mark_goal".into(),
                    arguments_json: "{\"achieved\":true}".into(),
                }],
            ),
            ChatMessage::tool_result("call_1", "ok"),
            ChatMessage::user("Who is this?"),
        ]);
        req.tools = vec![ToolDefinition::end_call()];
        req.max_tokens = Some(180);
        let b = llm.request_body(&req, true);
        assert_eq!(b["model"], "llama-3.1-8b-instant");
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["temperature"], 0.4);
        assert_eq!(b["max_tokens"], 180);
        assert_eq!(b["tool_choice"], "auto");
        assert_eq!(b["tools"][0]["function"]["name"], "end_call");
        assert_eq!(b["messages"][1]["content"], Value::Null);
        assert_eq!(b["messages"][1]["tool_calls"][0]["id"], "call_1");
        assert_eq!(b["messages"][2]["role"], "tool");
        assert_eq!(b["messages"][2]["tool_call_id"], "call_1");
        assert_eq!(b["messages"][3]["role"], "user");
        let b = llm.request_body(&ChatRequest::new(vec![]), false);
        assert!(b.get("stream_options").is_none());
        assert!(b.get("tools").is_none());
    }

    #[test]
    fn status_mapping() {
        assert!(matches!(
            error_from_status(429, "x".into(), Some(Duration::from_secs(2))),
            LlmError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            error_from_status(401, "x".into(), None),
            LlmError::Unauthorized { status: 401, .. }
        ));
        assert!(matches!(
            error_from_status(413, "x".into(), None),
            LlmError::BadRequest { status: 413, .. }
        ));
        assert!(matches!(
            error_from_status(503, "x".into(), None),
            LlmError::Server { status: 503, .. }
        ));
    }

    #[test]
    fn non_streamed_body_becomes_events() {
        let ev = completion_events(
            r#"{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
        )
        .unwrap();
        assert_eq!(ev[0], LlmEvent::Token("Hello.".into()));
        assert!(matches!(ev[1], LlmEvent::Done { usage: Some(_), .. }));
    }
}
