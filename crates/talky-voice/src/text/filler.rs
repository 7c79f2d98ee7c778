//! Leading-filler stripping (behaviour G28).
//!
//! Chat models like to open with "Um," or "Great question!", which sounds robotic when spoken
//! on every turn. Before TTS, one leading filler (`Um,` `Uh,` `Well,` `So,` `Sure!`
//! `Of course!` `Great question!`) is removed when it is followed by a space or the end of the
//! text, unless nothing speakable (a letter or digit) would remain; the first remaining letter
//! is upper-cased. Because "Sure!" on its own is a complete sentence for the splitter, the
//! stripping has to happen on the *stream* before splitting: [`FillerGate`] holds back the first
//! few characters of a reply until it can decide.

/// Fillers, lower case, including their punctuation.
const FILLERS: &[&str] = &[
    "um,",
    "uh,",
    "well,",
    "so,",
    "sure!",
    "of course!",
    "great question!",
];

/// True when `text` contains a letter or digit (anything a TTS engine can say).
pub fn has_speakable(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// Length in bytes of a leading filler of `text` (which must not start with whitespace), if
/// one is present and followed by whitespace or the end of the text.
fn filler_len(text: &str) -> Option<usize> {
    FILLERS.iter().find_map(|f| {
        let head = text.get(..f.len())?;
        if !head.eq_ignore_ascii_case(f) {
            return None;
        }
        match text[f.len()..].chars().next() {
            None => Some(f.len()),
            Some(c) if c.is_whitespace() => Some(f.len()),
            Some(_) => None,
        }
    })
}

/// Removes one leading filler (G28). Returns the text unchanged when there is none or when the
/// result would not be speakable.
pub fn strip_leading_filler(text: &str) -> String {
    let trimmed = text.trim_start();
    let Some(len) = filler_len(trimmed) else {
        return text.to_string();
    };
    let rest = trimmed[len..].trim_start();
    if !has_speakable(rest) {
        return text.to_string();
    }
    upper_first_letter(rest)
}

/// Upper-cases the first letter when it starts the remaining text ("9 am works." is left
/// alone rather than becoming "9 Am works.").
fn upper_first_letter(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = false;
    for c in text.chars() {
        if !done && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
            done = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest filler plus the one character that decides it.
const DECISION_LEN: usize = 16;

/// Streaming form of [`strip_leading_filler`] for the start of a reply: buffers fragments until
/// the leading filler question is decided, then passes everything through.
#[derive(Debug, Default)]
pub struct FillerGate {
    buf: String,
    decided: bool,
}

impl FillerGate {
    /// A gate for one reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a fragment; returns the text that may go on to the splitter now.
    pub fn push(&mut self, fragment: &str) -> String {
        if self.decided {
            return fragment.to_string();
        }
        self.buf.push_str(fragment);
        let head = self.buf.trim_start();
        if head.is_empty() {
            return String::new();
        }
        let lower_prefix_possible = FILLERS.iter().any(|f| {
            let n = head.len().min(f.len());
            head.get(..n)
                .is_some_and(|h| h.eq_ignore_ascii_case(&f[..n]))
        });
        // Decide when no filler can match, or when enough text is here to see the character
        // after the longest possible filler.
        if !lower_prefix_possible || head.len() >= DECISION_LEN || self.filler_decided(head) {
            self.decided = true;
            return self.release();
        }
        String::new()
    }

    /// True when a complete filler plus its following character (or more text) is buffered.
    fn filler_decided(&self, head: &str) -> bool {
        FILLERS.iter().any(|f| {
            head.len() > f.len()
                && head
                    .get(..f.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(f))
        })
    }

    fn release(&mut self) -> String {
        let buf = std::mem::take(&mut self.buf);
        let trimmed = buf.trim_start();
        match filler_len(trimmed) {
            Some(len) => {
                let rest = &trimmed[len..];
                // Whether anything speakable remains is only known at the end of the reply;
                // keep the filler if the rest so far is blank, and decide at `finish`.
                if !has_speakable(rest) {
                    self.decided = false;
                    self.buf = buf;
                    if self.buf.len() > 256 {
                        // Give up waiting: speak as is.
                        self.decided = true;
                        return std::mem::take(&mut self.buf);
                    }
                    return String::new();
                }
                upper_first_letter(rest.trim_start())
            }
            None => buf,
        }
    }

    /// Ends the reply: returns anything still held (the filler is kept if nothing else came).
    pub fn finish(&mut self) -> String {
        self.decided = true;
        let buf = std::mem::take(&mut self.buf);
        if buf.trim().is_empty() {
            return String::new();
        }
        strip_leading_filler(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        for keep in ["Yes.", "Okay.", "Got it.", "Sure thing."] {
            assert_eq!(strip_leading_filler(keep), keep);
        }
        assert_eq!(
            strip_leading_filler("Um, the office opens at nine."),
            "The office opens at nine."
        );
        assert_eq!(
            strip_leading_filler("Great question! we open at 9."),
            "We open at 9."
        );
        assert_eq!(strip_leading_filler("Sure!"), "Sure!");
        assert_eq!(strip_leading_filler("Of course! ..."), "Of course! ...");
        assert_eq!(strip_leading_filler("So,that"), "So,that");
        assert_eq!(strip_leading_filler("Well, 9 am works."), "9 am works.");
        assert!(!has_speakable("?! ..."));
        assert!(has_speakable("9"));
    }

    fn gate(tokens: &[&str]) -> String {
        let mut g = FillerGate::new();
        let mut out = String::new();
        for t in tokens {
            out.push_str(&g.push(t));
        }
        out.push_str(&g.finish());
        out
    }

    #[test]
    fn streaming_gate_matches_whole_text_rule() {
        assert_eq!(
            gate(&["Su", "re! The off", "ice opens."]),
            "The office opens."
        );
        assert_eq!(gate(&["Sure", " thing."]), "Sure thing.");
        assert_eq!(gate(&["Um", ",", " ", "the office."]), "The office.");
        assert_eq!(gate(&["Yes", ". I can."]), "Yes. I can.");
        assert_eq!(gate(&["Sure!"]), "Sure!");
        assert_eq!(gate(&["Sure! ", "", "Ok"]), "Ok");
    }

    #[test]
    fn gate_passes_through_early_when_no_filler_is_possible() {
        let mut g = FillerGate::new();
        assert_eq!(g.push("Hello"), "Hello");
        assert_eq!(g.push(" there"), " there");
    }
}
