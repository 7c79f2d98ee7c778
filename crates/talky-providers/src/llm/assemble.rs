//! Turns chat-completion chunks into [`LlmEvent`]s (protocols §7.2): text fragments, tool calls
//! merged by `index`, finish reason, usage, and the completion state at the end.

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use serde_json::Value;
use talky_core::ports::llm::{FinishReason, LlmError, LlmEvent, ToolCall, Usage};

/// `usage` as servers send it (fields may be missing or null).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

impl WireUsage {
    pub(crate) fn into_usage(self) -> Usage {
        let p = self.prompt_tokens.unwrap_or(0) as u32;
        let c = self.completion_tokens.unwrap_or(0) as u32;
        Usage {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: self.total_tokens.map(|t| t as u32).unwrap_or(p + c),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct XGroq {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
    /// Legacy single function call.
    #[serde(default)]
    function_call: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    x_groq: Option<XGroq>,
    #[serde(default)]
    error: Option<Value>,
}

/// What the caller should do after feeding one data payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    /// `[DONE]` seen: call [`Assembler::finish`].
    Done,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Stateful chunk → event converter for one completion.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    events: VecDeque<LlmEvent>,
    calls: BTreeMap<u64, PartialCall>,
    text_seen: bool,
    tools_seen: bool,
    finish: Option<String>,
    usage: Option<Usage>,
    /// Content and tool-call deltas received (progress, for the G16 deadlines).
    fragments: u64,
}

/// Key used for the legacy `function_call` delta (never a real index).
const LEGACY_FUNCTION_INDEX: u64 = u64::MAX;

impl Assembler {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn pop(&mut self) -> Option<LlmEvent> {
        self.events.pop_front()
    }

    /// Number of content / tool-call deltas received so far.
    pub(crate) fn fragments(&self) -> u64 {
        self.fragments
    }

    pub(crate) fn finish_seen(&self) -> bool {
        self.finish.is_some()
    }

    /// Feeds one SSE `data` payload.
    pub(crate) fn on_data(&mut self, data: &str) -> Result<Step, LlmError> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(Step::Done);
        }
        if data.is_empty() {
            return Ok(Step::Continue);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            LlmError::Protocol(format!("malformed chunk ({e}): {}", truncate(data, 200)))
        })?;
        if let Some(err) = chunk.error {
            return Err(LlmError::Broken(format!(
                "error event mid-stream: {}",
                error_message(&err)
            )));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u.into_usage());
        } else if let Some(u) = chunk.x_groq.and_then(|x| x.usage) {
            self.usage.get_or_insert(u.into_usage());
        }
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                self.on_delta(delta);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(reason);
                self.flush_calls();
            }
        }
        Ok(Step::Continue)
    }

    fn on_delta(&mut self, delta: Delta) {
        if let Some(text) = delta.content {
            if !text.is_empty() {
                self.fragments += 1;
                self.text_seen = true;
                self.events.push_back(LlmEvent::Token(text));
            }
        }
        for tc in delta.tool_calls.unwrap_or_default() {
            self.fragments += 1;
            let index = match tc.index {
                Some(i) => i,
                // Servers that omit `index`: a new id starts a new call, otherwise continue
                // the most recent one.
                None => match (&tc.id, self.calls.iter().next_back()) {
                    (Some(id), Some((_, last))) if &last.id != id => self.next_index(),
                    (_, Some((&k, _))) => k,
                    (_, None) => 0,
                },
            };
            let call = self.calls.entry(index).or_default();
            if let Some(id) = tc.id.filter(|s| !s.is_empty()) {
                call.id = id;
            }
            if let Some(f) = tc.function {
                merge_function(call, f);
            }
        }
        if let Some(f) = delta.function_call {
            self.fragments += 1;
            let call = self.calls.entry(LEGACY_FUNCTION_INDEX).or_default();
            merge_function(call, f);
        }
    }

    fn next_index(&self) -> u64 {
        self.calls
            .keys()
            .filter(|&&k| k != LEGACY_FUNCTION_INDEX)
            .max()
            .map_or(0, |k| k + 1)
    }

    /// Emits every assembled call (in index order) and forgets them.
    fn flush_calls(&mut self) {
        for (index, call) in std::mem::take(&mut self.calls) {
            if call.name.is_empty() {
                tracing::warn!(index, "dropping tool call without a name");
                continue;
            }
            self.tools_seen = true;
            let id = if call.id.is_empty() {
                format!("call_{index}")
            } else {
                call.id
            };
            let arguments_json = if call.arguments.trim().is_empty() {
                "{}".to_string()
            } else {
                call.arguments
            };
            self.events.push_back(LlmEvent::ToolCall {
                id,
                name: call.name,
                arguments_json,
            });
        }
    }

    /// End of the completion (`[DONE]`, or end of body after a finish reason): queues pending
    /// tool calls and the final `Done` with the completion state.
    pub(crate) fn finish(&mut self) {
        self.flush_calls();
        let reported = self.finish.as_deref().map(FinishReason::from_wire);
        let finish_reason = match reported {
            None | Some(FinishReason::Stop) if self.tools_seen => FinishReason::ToolCalls,
            None | Some(FinishReason::Stop) if !self.text_seen => FinishReason::Empty,
            None => FinishReason::Stop,
            Some(r) => r,
        };
        self.events.push_back(LlmEvent::Done {
            finish_reason,
            usage: self.usage,
        });
    }
}

fn merge_function(call: &mut PartialCall, f: FunctionDelta) {
    if let Some(name) = f.name.filter(|s| !s.is_empty()) {
        if call.name.is_empty() {
            call.name = name;
        } else if call.name != name {
            // Some servers stream the name in pieces.
            call.name.push_str(&name);
        }
    }
    if let Some(args) = f.arguments {
        call.arguments.push_str(&args);
    }
}

/// The `message` of an OpenAI error object (`{"message","type","code"}`) or the JSON itself.
pub(crate) fn error_message(err: &Value) -> String {
    let msg = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| err.as_str().map(str::to_string))
        .unwrap_or_else(|| err.to_string());
    let code = err
        .get("code")
        .filter(|c| !c.is_null())
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string));
    match code {
        Some(code) => truncate(&format!("{msg} [{code}]"), 500),
        None => truncate(&msg, 500),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Converts a complete tool call list from a non-streamed `message.tool_calls`.
pub(crate) fn message_tool_calls(message: &Value) -> Vec<ToolCall> {
    message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let f = c.get("function")?;
                    let name = f.get("name")?.as_str()?.to_string();
                    let arguments_json = match f.get("arguments") {
                        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                        Some(Value::Object(o)) => Value::Object(o.clone()).to_string(),
                        _ => "{}".to_string(),
                    };
                    let id = c
                        .get("id")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("call_{i}"), str::to_string);
                    Some(ToolCall {
                        id,
                        name,
                        arguments_json,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> Result<Vec<LlmEvent>, LlmError> {
        let mut a = Assembler::new();
        let mut out = Vec::new();
        for c in chunks {
            if a.on_data(c)? == Step::Done {
                a.finish();
            }
            while let Some(e) = a.pop() {
                out.push(e);
            }
        }
        Ok(out)
    }

    #[test]
    fn interleaved_tool_calls_merge_by_index() {
        let ev = run(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"end_call","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"mark_goal","arguments":"{\"achi"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"outcome\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"eved\":true}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"done\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":null,"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
            "[DONE]",
        ])
        .unwrap();
        assert_eq!(
            ev,
            vec![
                LlmEvent::ToolCall {
                    id: "call_a".into(),
                    name: "end_call".into(),
                    arguments_json: r#"{"outcome":"done"}"#.into()
                },
                LlmEvent::ToolCall {
                    id: "call_b".into(),
                    name: "mark_goal".into(),
                    arguments_json: r#"{"achieved":true}"#.into()
                },
                LlmEvent::Done {
                    finish_reason: FinishReason::ToolCalls,
                    usage: Some(Usage {
                        prompt_tokens: 3,
                        completion_tokens: 4,
                        total_tokens: 7
                    })
                },
            ]
        );
    }

    #[test]
    fn empty_completion_and_groq_usage() {
        let ev = run(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":0}}}"#,
            "[DONE]",
        ])
        .unwrap();
        assert_eq!(
            ev,
            vec![LlmEvent::Done {
                finish_reason: FinishReason::Empty,
                usage: Some(Usage {
                    prompt_tokens: 1,
                    completion_tokens: 0,
                    total_tokens: 1
                })
            }]
        );
    }

    #[test]
    fn text_length_and_legacy_function_call() {
        let ev = run(&[
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"extra":1}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            "[DONE]",
        ])
        .unwrap();
        assert_eq!(ev[0], LlmEvent::Token("Hi".into()));
        assert!(matches!(
            ev[1],
            LlmEvent::Done {
                finish_reason: FinishReason::Length,
                ..
            }
        ));
        let ev = run(&[
            r#"{"choices":[{"delta":{"function_call":{"name":"end_call","arguments":"{}"}}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"function_call"}]}"#,
            "[DONE]",
        ])
        .unwrap();
        assert!(matches!(&ev[0], LlmEvent::ToolCall { name, .. } if name == "end_call"));
        assert!(matches!(
            ev[1],
            LlmEvent::Done {
                finish_reason: FinishReason::ToolCalls,
                ..
            }
        ));
    }

    #[test]
    fn malformed_and_error_events() {
        assert!(matches!(run(&["{nope"]), Err(LlmError::Protocol(_))));
        assert!(matches!(
            run(&[r#"{"error":{"message":"overloaded","type":"server_error","code":null}}"#]),
            Err(LlmError::Broken(m)) if m.contains("overloaded")
        ));
    }
}
