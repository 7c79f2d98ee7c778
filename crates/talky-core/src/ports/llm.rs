//! The chat-LLM port (protocols §7, behaviour G7/G16/G26).
//!
//! One trait, [`Llm`], covers every OpenAI-compatible server (Groq, OpenAI, Ollama, vLLM,
//! llama.cpp) and test fakes. A streamed reply is a stream of [`LlmEvent`]s: text fragments as
//! they arrive, fully assembled tool calls, then exactly one `Done`. A stream that ends with an
//! `Err` is *broken* (§7.2): the text received so far is usable, the turn is marked errored.
//!
//! Deadlines (G16) are enforced by implementations while the consumer is waiting on the stream
//! (`poll_next`), so time the consumer spends on playback back-pressure is not counted. Every
//! implementation reports an expired deadline with the one shared [`LlmError::Timeout`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Author of a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    /// The wire name (`"system"`, `"user"`, `"assistant"`, `"tool"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// A tool call made by the assistant (assembled; `arguments_json` is the raw argument string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned call id (`call_…`); echoed back in the tool result message.
    pub id: String,
    pub name: String,
    pub arguments_json: String,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Only on assistant messages that called tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Only on `Role::Tool` messages: the id of the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
    /// An assistant message that carried tool calls (content may be empty).
    pub fn assistant_with_tools(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: Some(calls),
            ..Self::new(Role::Assistant, content)
        }
    }
    /// The result of a tool call, sent after the assistant message that carried it.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new(Role::Tool, content)
        }
    }
}

/// A function the model may call (`tools[].function`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

impl ToolDefinition {
    /// `end_call{outcome, reason?}` (G26).
    pub fn end_call() -> Self {
        Self {
            name: "end_call".into(),
            description: "End the phone call after your final line has been spoken. Use when the \
                          conversation is finished, the person asks to stop, or continuing is \
                          pointless."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "outcome": {"type": "string", "description": "Short outcome label, e.g. goal_achieved, not_interested, wrong_number, opt_out, callback"},
                    "reason": {"type": "string", "description": "One sentence explaining why the call ends"}
                },
                "required": ["outcome"]
            }),
        }
    }

    /// `mark_goal{achieved, detail?}` (G26).
    pub fn mark_goal() -> Self {
        Self {
            name: "mark_goal".into(),
            description: "Record whether the campaign goal was achieved on this call.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "achieved": {"type": "boolean"},
                    "detail": {"type": "string", "description": "What was agreed, e.g. the booked slot"}
                },
                "required": ["achieved"]
            }),
        }
    }

    /// `request_callback{when?}` (G26).
    pub fn request_callback() -> Self {
        Self {
            name: "request_callback".into(),
            description: "The person asked to be called back later.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "when": {"type": "string", "description": "When to call back, as said by the person or as an ISO 8601 time"}
                }
            }),
        }
    }

    /// The three agent tools of G26, in a stable order.
    pub fn agent_tools() -> Vec<Self> {
        vec![
            Self::end_call(),
            Self::mark_goal(),
            Self::request_callback(),
        ]
    }
}

/// A parsed agent tool call (G26).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentTool {
    EndCall {
        outcome: String,
        reason: Option<String>,
    },
    MarkGoal {
        achieved: bool,
        detail: Option<String>,
    },
    RequestCallback {
        when: Option<String>,
    },
}

impl AgentTool {
    /// Parses a tool call. Names are compared letters-only and case-insensitively (`end_call`,
    /// `endCall`, `end-call`, `end_session` all mean end). An empty argument string counts as
    /// `{}`. Returns `None` for unknown tools or arguments that are not a JSON object.
    pub fn parse(name: &str, arguments_json: &str) -> Option<Self> {
        let key: String = name
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let args: Value = if arguments_json.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments_json).ok()?
        };
        let obj = args.as_object()?;
        let text = |k: &str| -> Option<String> {
            match obj.get(k)? {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Value::Null => None,
                Value::String(_) => None,
                other => Some(other.to_string()),
            }
        };
        match key.as_str() {
            "endcall" | "endsession" | "hangup" | "end" => Some(AgentTool::EndCall {
                outcome: text("outcome").unwrap_or_else(|| "completed".into()),
                reason: text("reason"),
            }),
            "markgoal" => {
                let achieved = match obj.get("achieved") {
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) => {
                        matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1")
                    }
                    Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
                    _ => false,
                };
                Some(AgentTool::MarkGoal {
                    achieved,
                    detail: text("detail"),
                })
            }
            "requestcallback" | "callback" | "callbacklater" => {
                Some(AgentTool::RequestCallback { when: text("when") })
            }
            _ => None,
        }
    }

    /// Parses an assembled [`ToolCall`].
    pub fn from_call(call: &ToolCall) -> Option<Self> {
        Self::parse(&call.name, &call.arguments_json)
    }
}

/// How the model may use tools (`tool_choice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    Required,
}

/// Per-request deadlines (G16). `None` fields fall back to the client's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LlmDeadlines {
    /// Time waiting for the first event (response headers included). G16 default 5 s.
    pub first_token: Option<Duration>,
    /// Time waiting for each further event. G16 default 3 s.
    pub inter_token: Option<Duration>,
}

/// One chat-completion request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Tools offered to the model; empty = no `tools` field is sent.
    pub tools: Vec<ToolDefinition>,
    pub tool_choice: ToolChoice,
    /// Overrides the configured model.
    pub model: Option<String>,
    /// Overrides the configured temperature.
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub deadlines: LlmDeadlines,
}

impl ChatRequest {
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
    /// Offers the three G26 agent tools.
    pub fn with_agent_tools(mut self) -> Self {
        self.tools = ToolDefinition::agent_tools();
        self
    }
}

/// Token accounting as reported by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// Why a completion ended (§7.2 completion states).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinishReason {
    /// Normal end.
    Stop,
    /// Truncated by `max_tokens`; the text so far is used.
    Length,
    /// The model called tools (legacy `function_call` included).
    ToolCalls,
    /// Filtered: treat the reply as empty.
    ContentFilter,
    /// The stream completed with no text and no tool call.
    Empty,
    /// Any other provider value.
    Other(String),
}

impl FinishReason {
    /// Maps a provider `finish_reason` string.
    pub fn from_wire(s: &str) -> Self {
        match s {
            "stop" | "eos" | "end_turn" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "tool_calls" | "function_call" | "tool_use" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_string()),
        }
    }
}

/// One item of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// A non-empty text fragment (arbitrary substring; may split words).
    Token(String),
    /// A fully assembled tool call (emitted once its arguments are complete).
    ToolCall {
        id: String,
        name: String,
        arguments_json: String,
    },
    /// The last event of a successful stream.
    Done {
        finish_reason: FinishReason,
        usage: Option<Usage>,
    },
}

/// Which G16 deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// No first fragment (or no response) in time.
    FirstToken,
    /// A gap between fragments was too long.
    InterToken,
    /// A whole non-streaming request took too long.
    Request,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::FirstToken => "first token",
            TimeoutKind::InterToken => "inter-token",
            TimeoutKind::Request => "request",
        })
    }
}

/// Errors of every LLM implementation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The shared G16 timeout.
    #[error("LLM {0} deadline expired")]
    Timeout(TimeoutKind),
    /// HTTP 429. `retry_after` from the `retry-after` header.
    #[error("LLM rate limited (retry after {retry_after:?}): {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// HTTP 401/403: bad or missing key.
    #[error("LLM rejected credentials ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// HTTP 400/404/413/422 and other 4xx: the request itself is wrong (model, size, schema).
    #[error("LLM rejected request ({status}): {message}")]
    BadRequest { status: u16, message: String },
    /// HTTP 5xx.
    #[error("LLM server error ({status}): {message}")]
    Server { status: u16, message: String },
    /// Could not connect / send the request.
    #[error("LLM connection failed: {0}")]
    Connect(String),
    /// The stream ended before `[DONE]`, or delivered an `error` event mid-way (§7.2 *broken*).
    #[error("LLM stream broken: {0}")]
    Broken(String),
    /// The provider sent something that is not the protocol (malformed chunk, wrong content).
    #[error("LLM protocol error: {0}")]
    Protocol(String),
    /// A non-streaming completion returned no content.
    #[error("LLM returned an empty completion")]
    Empty,
    /// Invalid configuration (e.g. a base URL without scheme).
    #[error("LLM configuration error: {0}")]
    Config(String),
}

impl LlmError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, LlmError::Timeout(_))
    }
    /// Worth retrying later (rate limit, 5xx, transport, timeout); 4xx request errors are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LlmError::Timeout(_)
                | LlmError::RateLimited { .. }
                | LlmError::Server { .. }
                | LlmError::Connect(_)
                | LlmError::Broken(_)
        )
    }
}

/// A chat model.
#[async_trait]
pub trait Llm: Send + Sync {
    /// Starts a streamed completion. Returns once the provider accepted the request (HTTP
    /// errors come back here as `Err`); the stream then yields tokens, tool calls and `Done`,
    /// or ends with an `Err` if broken or timed out. Dropping the stream aborts the request.
    async fn stream_chat(
        &self,
        req: ChatRequest,
    ) -> Result<BoxStream<'static, Result<LlmEvent, LlmError>>, LlmError>;

    /// A non-streaming completion (post-call summaries). Returns the message content.
    async fn complete(&self, req: ChatRequest) -> Result<String, LlmError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_tool_names_are_lenient() {
        assert_eq!(
            AgentTool::parse("end-Call", r#"{"outcome":"not_interested"}"#),
            Some(AgentTool::EndCall {
                outcome: "not_interested".into(),
                reason: None
            })
        );
        assert_eq!(
            AgentTool::parse("end_session", ""),
            Some(AgentTool::EndCall {
                outcome: "completed".into(),
                reason: None
            })
        );
        assert_eq!(
            AgentTool::parse("mark_goal", r#"{"achieved":"yes","detail":"Tue 3pm"}"#),
            Some(AgentTool::MarkGoal {
                achieved: true,
                detail: Some("Tue 3pm".into())
            })
        );
        assert_eq!(
            AgentTool::parse("requestCallback", r#"{"when":null}"#),
            Some(AgentTool::RequestCallback { when: None })
        );
        assert_eq!(AgentTool::parse("weather", "{}"), None);
        assert_eq!(AgentTool::parse("end_call", "{oops"), None);
    }

    #[test]
    fn finish_reasons_map() {
        assert_eq!(
            FinishReason::from_wire("function_call"),
            FinishReason::ToolCalls
        );
        assert_eq!(FinishReason::from_wire("length"), FinishReason::Length);
        assert_eq!(
            FinishReason::from_wire("weird"),
            FinishReason::Other("weird".into())
        );
    }
}
