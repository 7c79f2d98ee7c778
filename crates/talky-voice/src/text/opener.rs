//! The opener rules (behaviour G4).
//!
//! The agent's first line decides whether the person stays on the phone, so it is short and
//! fixed in shape: at most 12 whitespace-separated words, naming the agent and the company,
//! stating the reason (≤ 4 words, ≤ 30 chars) and ending with a question, e.g. "Hi, it's Maya
//! from Northwind Dental about your checkup. Got a minute?". A campaign's own opener is checked
//! with [`check_opener`] when it is saved (422 on failure); without one, [`render_opener`]
//! builds it from the agent name, company and call reason.

/// Maximum words in an opener.
pub const MAX_OPENER_WORDS: usize = 12;
/// Maximum words in a call reason.
pub const MAX_REASON_WORDS: usize = 4;
/// Maximum characters in a call reason.
pub const MAX_REASON_CHARS: usize = 30;

/// Whitespace-separated word count (the G4/H6 definition).
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Why an opener (or call reason) breaks G4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenerProblem {
    /// More than 12 words.
    #[error("the opener has {0} words; at most 12 are allowed")]
    TooManyWords(usize),
    /// Does not end with `?`.
    #[error("the opener must end with a question")]
    NotAQuestion,
    /// The agent's name is missing.
    #[error("the opener must name the agent")]
    MissingAgent,
    /// The company name is missing.
    #[error("the opener must name the company")]
    MissingCompany,
    /// Reason longer than 4 words or 30 characters.
    #[error("the call reason must be at most 4 words and 30 characters")]
    ReasonTooLong,
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    let needle = needle.trim();
    needle.is_empty() || haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Checks a campaign opener against G4. Returns every problem found (empty = valid).
pub fn check_opener(opener: &str, agent_name: &str, company_name: &str) -> Vec<OpenerProblem> {
    let mut problems = Vec::new();
    let words = word_count(opener);
    if words > MAX_OPENER_WORDS {
        problems.push(OpenerProblem::TooManyWords(words));
    }
    if !opener.trim_end().ends_with('?') {
        problems.push(OpenerProblem::NotAQuestion);
    }
    if !contains_ci(opener, agent_name) {
        problems.push(OpenerProblem::MissingAgent);
    }
    if !contains_ci(opener, company_name) {
        problems.push(OpenerProblem::MissingCompany);
    }
    problems
}

/// Checks a call reason (≤ 4 words, ≤ 30 chars).
pub fn check_reason(reason: &str) -> Result<(), OpenerProblem> {
    let reason = reason.trim();
    if word_count(reason) > MAX_REASON_WORDS || reason.chars().count() > MAX_REASON_CHARS {
        Err(OpenerProblem::ReasonTooLong)
    } else {
        Ok(())
    }
}

/// Renders the default opener: "Hi, it's {agent} from {company} about {reason}. Got a
/// minute?". The reason is dropped when it is invalid or would push the line past 12 words; the
/// company too if the line is still too long.
pub fn render_opener(agent_name: &str, company_name: &str, reason: Option<&str>) -> String {
    let agent = agent_name.trim();
    let company = company_name.trim();
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty() && check_reason(r).is_ok())
        .map(|r| r.trim_end_matches(['.', '!', '?']));
    let mut candidates = Vec::new();
    if let Some(r) = reason {
        candidates.push(format!(
            "Hi, it's {agent} from {company} about {r}. Got a minute?"
        ));
    }
    candidates.push(format!("Hi, it's {agent} from {company}. Got a minute?"));
    candidates.push(format!("Hi, it's {agent}. Got a minute?"));
    candidates
        .into_iter()
        .find(|c| word_count(c) <= MAX_OPENER_WORDS)
        .unwrap_or_else(|| "Hi there. Got a minute?".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_is_valid_and_renderable() {
        let ex = "Hi, it's Maya from Northwind Dental about your checkup. Got a minute?";
        assert_eq!(word_count(ex), 12);
        assert!(check_opener(ex, "Maya", "Northwind Dental").is_empty());
        assert_eq!(
            render_opener("Maya", "Northwind Dental", Some("your checkup")),
            ex
        );
    }

    #[test]
    fn problems_are_reported() {
        let long = "Hello there, this is Maya calling from Northwind Dental about your upcoming \
                    checkup appointment. Do you have a minute?";
        let p = check_opener(long, "Maya", "Northwind Dental");
        assert!(matches!(p[0], OpenerProblem::TooManyWords(_)));
        let p = check_opener("Hi, it's Bob from Acme.", "Maya", "Northwind");
        assert_eq!(
            p,
            vec![
                OpenerProblem::NotAQuestion,
                OpenerProblem::MissingAgent,
                OpenerProblem::MissingCompany
            ]
        );
        assert!(check_reason("your checkup").is_ok());
        assert!(check_reason("a very long reason for calling").is_err());
        assert!(check_reason("supercalifragilisticexpialidocious").is_err());
    }

    #[test]
    fn rendering_degrades_to_fit() {
        let r = render_opener(
            "Maya",
            "Northwind Family Dental Group",
            Some("your checkup"),
        );
        assert!(word_count(&r) <= 12, "{r}");
        assert_eq!(
            r,
            "Hi, it's Maya from Northwind Family Dental Group. Got a minute?"
        );
        let r = render_opener("Maya", "Acme", Some("a reason that is far too long"));
        assert_eq!(r, "Hi, it's Maya from Acme. Got a minute?");
    }
}
