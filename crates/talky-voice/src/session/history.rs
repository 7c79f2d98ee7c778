//! The conversation history sent to the LLM, with strict role alternation (behaviour G14).
//!
//! Chat models behave badly on two user messages in a row or an assistant message the caller
//! never heard. So after the system prompt the history strictly alternates user/assistant:
//! adjacent same-role messages are merged; a turn that ends without assistant text (interrupted
//! before audio, LLM error, cancellation) removes its user message and carries that text into
//! the next user turn; only delivered assistant text is ever added (G11).

use talky_core::ports::llm::{ChatMessage, Role};

/// User/assistant messages in strict alternation (the system prompt is added per request).
#[derive(Debug, Default, Clone)]
pub struct History {
    messages: Vec<ChatMessage>,
    /// User text whose turn produced no assistant message, to prepend to the next user turn.
    carry: Option<String>,
}

fn join(a: &str, b: &str) -> String {
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, _) => b.trim().to_string(),
        (_, true) => a.trim().to_string(),
        _ => format!("{} {}", a.trim(), b.trim()),
    }
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages so far.
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    fn push(&mut self, role: Role, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        match self.messages.last_mut() {
            Some(last) if last.role == role => last.content = join(&last.content, text),
            _ => self.messages.push(ChatMessage::new(role, text.trim())),
        }
    }

    /// Adds a caller turn (prefixed by carried text from a turn that got no reply).
    pub fn push_user(&mut self, text: &str) {
        let text = match self.carry.take() {
            Some(carry) => join(&carry, text),
            None => text.to_string(),
        };
        self.push(Role::User, &text);
    }

    /// Adds delivered agent text.
    pub fn push_assistant(&mut self, text: &str) {
        self.push(Role::Assistant, text);
    }

    /// The turn that just ended produced no assistant text: take its user message back out and
    /// carry it into the next user turn (G14).
    pub fn drop_unanswered_user(&mut self) {
        if self.messages.last().is_some_and(|m| m.role == Role::User) {
            if let Some(m) = self.messages.pop() {
                self.carry = Some(match self.carry.take() {
                    Some(c) => join(&m.content, &c),
                    None => m.content,
                });
            }
        }
    }

    /// The request messages: system prompt + the last `window` messages, checked for
    /// alternation (adjacent same-role messages are merged again defensively).
    pub fn request_messages(&self, system_prompt: &str, window: usize) -> Vec<ChatMessage> {
        let start = self.messages.len().saturating_sub(window);
        let mut out: Vec<ChatMessage> = Vec::with_capacity(window + 1);
        out.push(ChatMessage::system(system_prompt));
        for m in &self.messages[start..] {
            match out.last_mut() {
                Some(last) if last.role == m.role => last.content = join(&last.content, &m.content),
                _ => out.push(m.clone()),
            }
        }
        debug_assert!(alternates(&out[1..]));
        out
    }
}

/// True when no two adjacent messages share a role.
pub fn alternates(messages: &[ChatMessage]) -> bool {
    messages.windows(2).all(|w| w[0].role != w[1].role)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(h: &[ChatMessage]) -> Vec<Role> {
        h.iter().map(|m| m.role).collect()
    }

    #[test]
    fn merges_and_carries() {
        let mut h = History::new();
        h.push_assistant("This call may be recorded.");
        h.push_assistant("Hi, it's Maya. Got a minute?");
        assert_eq!(h.messages().len(), 1);
        h.push_user("Who is this?");
        // The reply was interrupted before any audio: the user text is carried.
        h.drop_unanswered_user();
        assert_eq!(h.messages().len(), 1);
        h.push_user("Sorry, go on.");
        assert_eq!(h.messages()[1].content, "Who is this? Sorry, go on.");
        h.push_assistant("I'm calling about your checkup.");
        h.push_user("ok");
        h.push_user("and?");
        let req = h.request_messages("SYS", 20);
        assert_eq!(
            roles(&req),
            vec![
                Role::System,
                Role::Assistant,
                Role::User,
                Role::Assistant,
                Role::User
            ]
        );
        assert_eq!(req[4].content, "ok and?");
        assert!(alternates(&req[1..]));
    }

    #[test]
    fn window_keeps_last_messages() {
        let mut h = History::new();
        for i in 0..30 {
            h.push_user(&format!("u{i}"));
            h.push_assistant(&format!("a{i}"));
        }
        let req = h.request_messages("SYS", 20);
        assert_eq!(req.len(), 21);
        assert_eq!(req[1].content, "u20");
        assert_eq!(req[20].content, "a29");
    }
}
