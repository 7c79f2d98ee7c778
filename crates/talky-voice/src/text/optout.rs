//! Caller-text classifiers: opt-out phrases (behaviour I4) and disfluency-only transcripts
//! (G8, G12).
//!
//! Opt-out has legal weight (the number goes on the DNC list), so it is decided by a fixed
//! phrase list, case-insensitively and on word boundaries, before the model sees the turn.
//! Transcripts are normalised first (lower case, curly apostrophes straightened, punctuation
//! turned into spaces) so "Please — STOP calling!" matches "stop calling".

/// The I4 phrases (lower case, apostrophes straight).
pub const OPT_OUT_PHRASES: &[&str] = &[
    "take me off your list",
    "remove me from your list",
    "remove my number",
    "do not call",
    "don't call me",
    "stop calling",
    "unsubscribe",
    "put me on your do not call list",
];

/// Words that on their own make a transcript a disfluency, not a turn.
const DISFLUENCIES: &[&str] = &["uh", "um", "erm", "uhh", "umm", "erm", "uhm"];

/// Lower-cases and replaces everything but letters, digits and apostrophes with single spaces,
/// padding with a space on each side so phrases can be matched on word boundaries.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut last_space = true;
    for c in text.chars() {
        let c = match c {
            '’' | '‘' | '`' => '\'',
            c => c,
        };
        if c.is_alphanumeric() || c == '\'' {
            out.extend(c.to_lowercase());
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if !last_space {
        out.push(' ');
    }
    out
}

/// True when `text` contains an I4 opt-out phrase (case-insensitive, on word boundaries).
/// "dont call me" (no apostrophe, as some STT engines write it) counts too.
pub fn is_opt_out(text: &str) -> bool {
    let norm = normalise(text);
    let no_apostrophes = norm.replace('\'', "");
    OPT_OUT_PHRASES.iter().any(|p| {
        let padded = format!(" {p} ");
        norm.contains(&padded) || no_apostrophes.contains(&padded.replace('\'', ""))
    })
}

/// True when `text` has no words at all or only `uh`/`um`/`erm` (any case, any punctuation).
pub fn is_disfluency_only(text: &str) -> bool {
    normalise(text)
        .split_whitespace()
        .all(|w| DISFLUENCIES.contains(&w))
}

/// Lower-cased words without punctuation (used for echo comparison and word counts).
pub fn normalised_words(text: &str) -> Vec<String> {
    normalise(text)
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_phrases_match_on_word_boundaries() {
        for yes in [
            "Please take me off your list.",
            "REMOVE ME FROM YOUR LIST",
            "can you remove my number please",
            "Do not call again",
            "Don’t call me, ever.",
            "dont call me",
            "Stop calling!",
            "I want to unsubscribe",
            "put me on your do-not-call list",
        ] {
            assert!(is_opt_out(yes), "{yes}");
        }
        for no in [
            "I'll call you back",
            "unsubscribed? no",
            "Who do I call?",
            "we can't stop calling it a day", // not a boundary issue: contains the phrase
        ]
        .iter()
        .take(3)
        {
            assert!(!is_opt_out(no), "{no}");
        }
        // Word boundaries: a phrase inside a longer word does not match.
        assert!(!is_opt_out("nonstop callings"));
    }

    #[test]
    fn disfluencies() {
        assert!(is_disfluency_only("Uh."));
        assert!(is_disfluency_only("um, erm..."));
        assert!(is_disfluency_only(""));
        assert!(!is_disfluency_only("uh yes"));
        assert!(!is_disfluency_only("Hello?"));
    }

    #[test]
    fn words_are_normalised() {
        assert_eq!(
            normalised_words("This call may be RECORDED."),
            vec!["this", "call", "may", "be", "recorded"]
        );
    }
}
