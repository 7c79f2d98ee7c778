//! Streaming sentence splitter (behaviour G7).
//!
//! LLM fragments arrive as arbitrary substrings ("Hel", "lo. How", " are you?"). TTS wants whole
//! sentences, and the first one as early as possible, because first audio must never wait for
//! the whole reply. The splitter therefore emits a sentence the moment its terminator is
//! followed by whitespace, and keeps everything else buffered.
//!
//! A sentence ends at `.`, `!`, `?` or `…` (runs like `?!` or `...` and closing quotes or
//! brackets stay attached) followed by whitespace or the end of the stream — but not after the
//! abbreviations `Mr Mrs Ms Dr St e.g i.e etc vs a.m p.m`, not between digits (`3.5`) and not
//! inside e-mail addresses or URLs (both are covered by the whitespace rule: their inner dots
//! are followed by a letter). A first sentence longer than 120 characters is cut at its last
//! `,`/`;` after character 40, so a rambling opening clause does not delay first audio.

/// Abbreviations after which a `.` does not end a sentence (compared case-insensitively,
/// without the final dot).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "e.g", "i.e", "etc", "vs", "a.m", "p.m",
];

/// First sentences longer than this (in chars) are cut at a comma/semicolon.
const FIRST_SENTENCE_MAX_CHARS: usize = 120;
/// The cut must come after this many chars.
const FIRST_SENTENCE_MIN_CUT: usize = 40;

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '»')
}

/// Tokens in, complete sentences out. See the module docs for the rules.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    buf: String,
    /// Byte offset in `buf` from which terminators have not been examined yet.
    scan_from: usize,
    /// Sentences emitted so far.
    emitted: usize,
}

impl SentenceSplitter {
    /// A fresh splitter for one reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of sentences emitted so far.
    pub fn emitted(&self) -> usize {
        self.emitted
    }

    /// Text buffered but not yet emitted.
    pub fn pending(&self) -> &str {
        &self.buf
    }

    /// Appends a fragment and pushes every sentence it completes onto `out` (trimmed, non-empty).
    pub fn push(&mut self, fragment: &str, out: &mut Vec<String>) {
        self.buf.push_str(fragment);
        while let Some((end, resume)) = self.find_boundary(false) {
            self.emit(end, resume, out);
        }
        self.maybe_cut_long_first(out);
    }

    /// Ends the stream: pushes the remaining sentences (including an unterminated tail) onto
    /// `out`.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        while let Some((end, resume)) = self.find_boundary(true) {
            self.emit(end, resume, out);
        }
        if self.emitted == 0 && self.buf.trim().chars().count() > FIRST_SENTENCE_MAX_CHARS {
            self.cut_first(out);
        }
        let tail = self.buf.trim();
        if !tail.is_empty() {
            out.push(tail.to_string());
            self.emitted += 1;
        }
        self.buf.clear();
        self.scan_from = 0;
    }

    /// Returns `(end, resume)`: the sentence is `buf[..end]`, scanning resumes at `resume`.
    fn find_boundary(&mut self, at_eos: bool) -> Option<(usize, usize)> {
        let buf = self.buf.as_str();
        let mut iter = buf[self.scan_from..].char_indices().peekable();
        while let Some((rel, c)) = iter.next() {
            if !is_terminator(c) {
                continue;
            }
            let start = self.scan_from + rel;
            // Extend over the terminator run and closing quotes/brackets.
            let mut end = start + c.len_utf8();
            let mut run_len = 1;
            while let Some(&(r, n)) = iter.peek() {
                if is_terminator(n) || is_closer(n) {
                    if is_terminator(n) {
                        run_len += 1;
                    }
                    end = self.scan_from + r + n.len_utf8();
                    iter.next();
                } else {
                    break;
                }
            }
            match buf[end..].chars().next() {
                None if !at_eos => {
                    // Undecided until the next character arrives.
                    self.scan_from = start;
                    return None;
                }
                None => return Some((end, end)),
                Some(next) if next.is_whitespace() => {
                    if c == '.' && run_len == 1 && is_abbreviation(&buf[..start]) {
                        continue;
                    }
                    return Some((end, end));
                }
                Some(_) => continue, // "3.5", "example.com", "a.m" inner dot
            }
        }
        self.scan_from = buf.len();
        None
    }

    fn emit(&mut self, end: usize, resume: usize, out: &mut Vec<String>) {
        let sentence = self.buf[..end].trim();
        if !sentence.is_empty() {
            if self.emitted == 0 && sentence.chars().count() > FIRST_SENTENCE_MAX_CHARS {
                let (head, tail) = split_long(sentence);
                out.push(head.to_string());
                self.emitted += 1;
                if !tail.is_empty() {
                    out.push(tail.to_string());
                    self.emitted += 1;
                }
            } else {
                out.push(sentence.to_string());
                self.emitted += 1;
            }
        }
        self.buf.drain(..resume);
        self.scan_from = 0;
    }

    /// While the first sentence is still open and already longer than the limit, cut it early.
    fn maybe_cut_long_first(&mut self, out: &mut Vec<String>) {
        if self.emitted == 0 && self.buf.trim().chars().count() > FIRST_SENTENCE_MAX_CHARS {
            self.cut_first(out);
        }
    }

    fn cut_first(&mut self, out: &mut Vec<String>) {
        let lead = self.buf.len() - self.buf.trim_start().len();
        if let Some(cut) = long_cut_point(&self.buf[lead..]) {
            let head = self.buf[lead..lead + cut].trim().to_string();
            self.buf.drain(..lead + cut);
            self.scan_from = 0;
            if !head.is_empty() {
                out.push(head);
                self.emitted += 1;
            }
        }
    }
}

/// Byte index just after the last `,`/`;` whose char position is ≥ 40 within the first 120
/// chars... or anywhere after char 40 if the text is longer.
fn long_cut_point(text: &str) -> Option<usize> {
    text.char_indices()
        .enumerate()
        .filter(|&(pos, (_, c))| pos >= FIRST_SENTENCE_MIN_CUT && (c == ',' || c == ';'))
        .map(|(_, (i, c))| i + c.len_utf8())
        .last()
}

fn split_long(sentence: &str) -> (&str, &str) {
    match long_cut_point(sentence) {
        Some(cut) => (sentence[..cut].trim(), sentence[cut..].trim()),
        None => (sentence, ""),
    }
}

/// True when the word right before a `.` (at the end of `before`) is a known abbreviation.
fn is_abbreviation(before: &str) -> bool {
    let word_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '.'))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let word = before[word_start..].trim_start_matches('.');
    if word.is_empty() || word.len() > 4 {
        return false;
    }
    ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(word))
}

/// Splits a whole text into sentences (non-streaming convenience).
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut s = SentenceSplitter::new();
    let mut out = Vec::new();
    s.push(text, &mut out);
    s.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(tokens: &[&str]) -> Vec<(usize, String)> {
        // (index of the token after which the sentence came out, sentence)
        let mut s = SentenceSplitter::new();
        let mut got = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let mut out = Vec::new();
            s.push(t, &mut out);
            got.extend(out.into_iter().map(|x| (i, x)));
        }
        let mut out = Vec::new();
        s.finish(&mut out);
        got.extend(out.into_iter().map(|x| (tokens.len(), x)));
        got
    }

    #[test]
    fn emits_first_sentence_as_soon_as_whitespace_follows() {
        let got = stream(&["Hel", "lo the", "re.", " How are", " you?"]);
        assert_eq!(
            got,
            vec![(3, "Hello there.".into()), (5, "How are you?".into())]
        );
    }

    #[test]
    fn abbreviations_and_decimals_do_not_split() {
        assert_eq!(
            split_sentences(
                "Dr. Smith sees you at 3.5 p.m. on Monday. Mrs. Jones, e.g. you, etc. too. Fine!"
            ),
            vec![
                "Dr. Smith sees you at 3.5 p.m. on Monday.",
                "Mrs. Jones, e.g. you, etc. too.",
                "Fine!"
            ]
        );
        assert_eq!(
            split_sentences("It costs 3.5 dollars. Ok."),
            vec!["It costs 3.5 dollars.", "Ok."]
        );
        assert_eq!(
            split_sentences("Meet me on Main St. at noon vs. later."),
            vec!["Meet me on Main St. at noon vs. later."]
        );
    }

    #[test]
    fn emails_and_urls_stay_whole() {
        assert_eq!(
            split_sentences(
                "Write to bob.smith@example.com or visit www.example.com/a.b today. Thanks."
            ),
            vec![
                "Write to bob.smith@example.com or visit www.example.com/a.b today.",
                "Thanks."
            ]
        );
    }

    #[test]
    fn decimal_split_across_tokens() {
        let got = stream(&["It is 3.", "5 km away. ", "Ok"]);
        assert_eq!(
            got,
            vec![(1, "It is 3.5 km away.".into()), (3, "Ok".into())]
        );
    }

    #[test]
    fn runs_quotes_and_ellipsis() {
        assert_eq!(
            split_sentences("Really?! He said \"yes.\" Well… maybe... Sure."),
            vec!["Really?!", "He said \"yes.\"", "Well…", "maybe...", "Sure."]
        );
    }

    #[test]
    fn end_of_stream_ends_a_sentence() {
        assert_eq!(stream(&["Okay, bye."]), vec![(1, "Okay, bye.".into())]);
        assert_eq!(stream(&["   "]), vec![]);
    }

    #[test]
    fn long_first_sentence_is_cut_at_last_comma_after_40() {
        let long = "Thanks so much for taking my call today, I really do appreciate it, \
                    because I know that everybody is busy and nobody likes getting calls; \
                    still I wanted to ask about your appointment";
        assert!(long.chars().count() > 120);
        let mut s = SentenceSplitter::new();
        let mut out = Vec::new();
        s.push(long, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].ends_with("calls;"), "{out:?}");
        s.push(". Next one.", &mut out);
        s.finish(&mut out);
        assert_eq!(out[1], "still I wanted to ask about your appointment.");
        assert_eq!(out[2], "Next one.");
        // Only the first sentence is cut.
        let second = format!("Hi. {long}.");
        let parts = split_sentences(&second);
        assert_eq!(parts.len(), 2);
    }

    #[test]
    fn short_comma_prefix_is_not_a_cut_point() {
        // Commas before char 40 do not qualify.
        let s = format!("Yes, {}", "a".repeat(130));
        assert_eq!(split_sentences(&s), vec![s.clone()]);
    }
}
