//! Text control envelopes (behaviour G26).
//!
//! Models without tool support — and some with it — write their decisions into the reply text:
//! `Okay, bye. {"action":"end_session"}`. None of that may ever be voiced. The
//! [`EnvelopeDetector`] sits in the LLM text stream in front of the sentence splitter: wherever
//! a `{` is followed (after optional whitespace) by an `"action"` key, speech stops at that `{`
//! and everything after it is held back; text before it is spoken. Braces that do not open an
//! `"action"` key are ordinary text and are spoken.
//!
//! At the end of the stream the held text is parsed leniently ([`parse_envelopes`]): the JSON
//! is repaired (missing closing quote, trailing comma, missing closing brace) and the action
//! name is compared letters-only and case-insensitively, so `end_session`, `endsession` and
//! `end-call` all mean "end the call".

use serde_json::{Map, Value};
use talky_core::ports::llm::AgentTool;

/// The key that marks an envelope.
const ACTION_KEY: &str = "action";

/// A parsed text envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A known agent action (same vocabulary as the tools).
    Action(AgentTool),
    /// An `"action"` the session does not know; logged, never voiced.
    Unknown(String),
}

/// Whether `rest` (the text right after a `{`) starts an action key: `Some(true)` yes,
/// `Some(false)` no, `None` not decidable yet (too short).
fn opens_action(rest: &str) -> Option<bool> {
    let rest = rest.trim_start();
    if rest.is_empty() {
        return None;
    }
    let mut chars = rest.chars();
    let quote = chars.next()?;
    if quote != '"' && quote != '\'' {
        return Some(false);
    }
    let body = &rest[1..];
    let want = ACTION_KEY.len() + 1; // key + closing quote
    let have = body.len().min(want);
    let mut expected = String::with_capacity(want);
    expected.push_str(ACTION_KEY);
    expected.push(quote);
    let Some(head) = body.get(..have) else {
        return Some(false); // a non-ASCII char where `action"` would be
    };
    if !head.eq_ignore_ascii_case(&expected[..have]) {
        return Some(false);
    }
    if have < want {
        None
    } else {
        Some(true)
    }
}

/// Streaming detector: feed LLM fragments, get back the part that may be spoken.
#[derive(Debug, Default)]
pub struct EnvelopeDetector {
    /// Text after an undecided `{` (kept until we know whether it opens an envelope).
    pending: String,
    /// Everything from the first envelope's `{` on; `Some` once an envelope was seen.
    held: Option<String>,
}

impl EnvelopeDetector {
    /// A detector for one reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once an envelope started: nothing more will be spoken from this reply.
    pub fn in_envelope(&self) -> bool {
        self.held.is_some()
    }

    /// Feeds a fragment; returns the text that is safe to speak now.
    pub fn push(&mut self, fragment: &str) -> String {
        if let Some(held) = &mut self.held {
            held.push_str(fragment);
            return String::new();
        }
        self.pending.push_str(fragment);
        let mut speak = String::new();
        let mut from = 0;
        loop {
            let Some(rel) = self.pending[from..].find('{') else {
                speak.push_str(&self.pending[from..]);
                self.pending.clear();
                return speak;
            };
            let brace = from + rel;
            match opens_action(&self.pending[brace + 1..]) {
                Some(true) => {
                    speak.push_str(&self.pending[from..brace]);
                    self.held = Some(self.pending[brace..].to_string());
                    self.pending.clear();
                    return speak;
                }
                Some(false) => {
                    // An ordinary brace: speak through it and keep looking.
                    speak.push_str(&self.pending[from..=brace]);
                    from = brace + 1;
                }
                None => {
                    speak.push_str(&self.pending[from..brace]);
                    self.pending.drain(..brace);
                    return speak;
                }
            }
        }
    }

    /// Ends the reply: returns the still-speakable tail (an undecided `{…` that never became an
    /// envelope) and the parsed envelopes.
    pub fn finish(&mut self) -> (String, Vec<Envelope>) {
        let tail = std::mem::take(&mut self.pending);
        match self.held.take() {
            Some(held) => (tail, parse_envelopes(&held)),
            None => (tail, Vec::new()),
        }
    }
}

/// Parses every envelope in `text` (held-back text starting at an envelope's `{`).
pub fn parse_envelopes(text: &str) -> Vec<Envelope> {
    let starts: Vec<usize> = text
        .match_indices('{')
        .map(|(i, _)| i)
        .filter(|&i| opens_action(&text[i + 1..]) == Some(true))
        .collect();
    let mut out = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(text.len());
        if let Some(env) = parse_one(&text[start..end]) {
            out.push(env);
        }
    }
    out
}

/// Parses one envelope leniently.
fn parse_one(text: &str) -> Option<Envelope> {
    let candidate = cut_at_matching_brace(text);
    let object = serde_json::from_str::<Map<String, Value>>(candidate)
        .ok()
        .or_else(|| serde_json::from_str::<Map<String, Value>>(&repair(candidate)).ok());
    let (name, args) = match object {
        Some(mut obj) => {
            let key = obj
                .keys()
                .find(|k| k.eq_ignore_ascii_case(ACTION_KEY))
                .cloned()?;
            let name = match obj.remove(&key)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (name, Value::Object(obj).to_string())
        }
        None => (scan_action_value(candidate)?, "{}".to_string()),
    };
    if name.trim().is_empty() {
        return None;
    }
    Some(
        AgentTool::parse(&name, &args)
            .or_else(|| AgentTool::parse(&name, "{}"))
            .map(Envelope::Action)
            .unwrap_or(Envelope::Unknown(name)),
    )
}

/// The prefix of `text` up to and including the brace that closes its first `{`, or all of it.
fn cut_at_matching_brace(text: &str) -> &str {
    let mut depth = 0usize;
    let mut in_str: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' => in_str = Some(c),
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text.trim_end()
}

/// Repairs the usual damage: single quotes, an unterminated string, trailing commas and
/// missing closing braces.
fn repair(text: &str) -> String {
    let mut s: String = text.trim().to_string();
    if !s.contains('"') {
        s = s.replace('\'', "\"");
    }
    // Close an unterminated string.
    let mut in_str = false;
    let mut escaped = false;
    let mut depth = 0i32;
    for c in s.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
    }
    if in_str {
        s.push('"');
    }
    // Drop trailing commas (at the end and before a closing brace).
    loop {
        let t = s.trim_end();
        if let Some(stripped) = t.strip_suffix(',') {
            s = stripped.to_string();
        } else {
            break;
        }
    }
    s = s.replace(",}", "}").replace(", }", "}");
    // A dangling key without a value (`{"action":"x","reason"`) cannot be completed: drop it.
    for _ in 0..depth.max(0) {
        s.push('}');
    }
    s
}

/// Last resort: the value after `"action"` up to a quote, comma, brace or whitespace.
fn scan_action_value(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("action")? + ACTION_KEY.len();
    let rest = text[at..].trim_start_matches(['"', '\'']).trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let rest = rest.trim_start_matches(['"', '\'']);
    let value: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
        .collect();
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tokens: &[&str]) -> (String, Vec<Envelope>) {
        let mut d = EnvelopeDetector::new();
        let mut spoken = String::new();
        for t in tokens {
            spoken.push_str(&d.push(t));
        }
        let (tail, envs) = d.finish();
        spoken.push_str(&tail);
        (spoken, envs)
    }

    fn end_call() -> Envelope {
        Envelope::Action(AgentTool::EndCall {
            outcome: "completed".into(),
            reason: None,
        })
    }

    #[test]
    fn spec_check_only_text_before_the_envelope_is_voiced() {
        let (spoken, envs) = run(&["Okay, bye. ", "{\"action\":\"end_session\""]);
        assert_eq!(spoken, "Okay, bye. ");
        assert_eq!(envs, vec![end_call()]);
    }

    #[test]
    fn envelope_split_across_tokens_is_never_voiced() {
        let (spoken, envs) = run(&[
            "Okay, bye. {",
            " \"act",
            "ion\": \"End-Call\"",
            ", \"outcome\": \"declined\"}",
        ]);
        assert_eq!(spoken, "Okay, bye. ");
        assert_eq!(
            envs,
            vec![Envelope::Action(AgentTool::EndCall {
                outcome: "declined".into(),
                reason: None
            })]
        );
    }

    #[test]
    fn lenient_names_and_repairs() {
        for raw in [
            r#"{"action":"endsession"}"#,
            r#"{"action":"end-call",}"#,
            r#"{"action":"END_CALL"#,
            r#"{ "action" : "end_call", "#,
            r#"{'action': 'end_call'}"#,
        ] {
            assert_eq!(parse_envelopes(raw), vec![end_call()], "{raw}");
        }
        assert_eq!(
            parse_envelopes(r#"{"action":"mark_goal","achieved":true} {"action":"end_call"}"#),
            vec![
                Envelope::Action(AgentTool::MarkGoal {
                    achieved: true,
                    detail: None
                }),
                end_call()
            ]
        );
        assert_eq!(
            parse_envelopes(r#"{"action":"dance"}"#),
            vec![Envelope::Unknown("dance".into())]
        );
    }

    #[test]
    fn braces_without_action_are_spoken() {
        let (spoken, envs) = run(&["I'd say {roughly} ten", ". Or {\"x\":1}."]);
        assert_eq!(spoken, "I'd say {roughly} ten. Or {\"x\":1}.");
        assert!(envs.is_empty());
        // An undecided brace at the very end is spoken too.
        let (spoken, envs) = run(&["Bye {"]);
        assert_eq!(spoken, "Bye {");
        assert!(envs.is_empty());
    }

    #[test]
    fn text_after_an_envelope_is_held_back() {
        let (spoken, envs) = run(&["Sure. {\"action\":\"end_call\"} Goodbye!"]);
        assert_eq!(spoken, "Sure. ");
        assert_eq!(envs, vec![end_call()]);
    }
}
