//! The vocabulary of campaigns, leads, jobs and calls: closed enums stored as snake_case
//! text, plus the outcome policy table (behaviour.md E16), which is the one place that says
//! what each outcome means for retries and DNC.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Error for a stored or submitted value outside an enum's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value: {value}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident : $kind:literal { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(UnknownValue { kind: $kind, value: other.to_string() }),
                }
            }
        }
    };
}

text_enum!(
    /// A user's role inside their tenant (A9).
    Role: "role" { Owner = "owner", Member = "member" }
);

text_enum!(
    /// What a magic link does when verified (A3).
    LinkPurpose: "link purpose" { Login = "login", Register = "register", Invite = "invite" }
);

text_enum!(
    /// Campaign lifecycle (E2).
    CampaignStatus: "campaign status" {
        Draft = "draft", Running = "running", Paused = "paused", Stopped = "stopped", Completed = "completed",
    }
);

text_enum!(
    /// Lead lifecycle (D12, E16).
    LeadStatus: "lead status" {
        Pending = "pending", Queued = "queued", Contacted = "contacted", Called = "called",
        Completed = "completed", Dnc = "dnc", Deleted = "deleted",
    }
);

text_enum!(
    /// Dialer job lifecycle (E5).
    JobStatus: "job status" {
        Pending = "pending", RetryScheduled = "retry_scheduled", Processing = "processing",
        Completed = "completed", GoalAchieved = "goal_achieved", Exhausted = "exhausted",
        Dnc = "dnc", Skipped = "skipped",
    }
);

impl JobStatus {
    /// Active statuses: at most one active job per lead (E5).
    pub const ACTIVE: &'static [JobStatus] = &[
        JobStatus::Pending,
        JobStatus::RetryScheduled,
        JobStatus::Processing,
    ];

    pub fn is_active(&self) -> bool {
        Self::ACTIVE.contains(self)
    }
}

text_enum!(
    /// Call status as the carrier reports it (F1–F3).
    CallStatus: "call status" {
        Initiated = "initiated", Ringing = "ringing", Answered = "answered", InProgress = "in_progress",
        Completed = "completed", Busy = "busy", NoAnswer = "no_answer", Failed = "failed",
        Cancelled = "cancelled", Rejected = "rejected", Timeout = "timeout",
    }
);

impl CallStatus {
    /// The one list of live statuses (E13).
    pub const LIVE: &'static [CallStatus] = &[
        CallStatus::Initiated,
        CallStatus::Ringing,
        CallStatus::Answered,
        CallStatus::InProgress,
    ];

    pub fn is_live(&self) -> bool {
        Self::LIVE.contains(self)
    }
}

text_enum!(
    /// Where a DNC entry came from (E19).
    DncSource: "dnc source" {
        OptOut = "opt_out", Spam = "spam", Invalid = "invalid", Unavailable = "unavailable",
        Manual = "manual", Import = "import",
    }
);

text_enum!(
    /// The outcome of a call (E16).
    Outcome: "outcome" {
        GoalAchieved = "goal_achieved", GoalNotAchieved = "goal_not_achieved", Declined = "declined",
        Answered = "answered", CallbackRequested = "callback_requested", AgentError = "agent_error",
        OptedOut = "opted_out", Voicemail = "voicemail", Busy = "busy", NoAnswer = "no_answer",
        Failed = "failed", Timeout = "timeout", Cancelled = "cancelled", Rejected = "rejected",
        Invalid = "invalid", Unavailable = "unavailable", Spam = "spam",
    }
);

/// What an outcome means for the lead's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeClass {
    /// The job ends; `success` marks `goal_achieved`.
    Terminal { success: bool },
    /// Book another attempt after `delays[min(n, len) - 1]` seconds, up to `cap` dials.
    Retry { delays: &'static [i64], cap: u32 },
    /// The number joins the DNC list and the job ends `dnc`.
    Dnc,
}

/// One row of the outcome table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomePolicy {
    pub connected: bool,
    pub class: OutcomeClass,
}

const MIN: i64 = 60;
const HOUR: i64 = 3600;

impl Outcome {
    /// The outcome policy table (E16). A `match` makes it total by construction.
    pub fn policy(&self) -> OutcomePolicy {
        use OutcomeClass::*;
        let (connected, class) = match self {
            Outcome::GoalAchieved => (true, Terminal { success: true }),
            Outcome::GoalNotAchieved | Outcome::Declined | Outcome::Answered => {
                (true, Terminal { success: false })
            }
            Outcome::CallbackRequested => (
                true,
                Retry {
                    delays: &[24 * HOUR],
                    cap: 3,
                },
            ),
            Outcome::AgentError => (
                true,
                Retry {
                    delays: &[15 * MIN],
                    cap: 3,
                },
            ),
            Outcome::OptedOut => (true, Dnc),
            Outcome::Voicemail => (
                false,
                Retry {
                    delays: &[24 * HOUR],
                    cap: 2,
                },
            ),
            Outcome::Busy => (
                false,
                Retry {
                    delays: &[5 * MIN, 15 * MIN, 45 * MIN],
                    cap: 4,
                },
            ),
            Outcome::NoAnswer => (
                false,
                Retry {
                    delays: &[24 * HOUR, 24 * HOUR],
                    cap: 3,
                },
            ),
            Outcome::Failed | Outcome::Timeout => (
                false,
                Retry {
                    delays: &[30, 2 * MIN],
                    cap: 3,
                },
            ),
            Outcome::Cancelled => (
                false,
                Retry {
                    delays: &[2 * MIN],
                    cap: 3,
                },
            ),
            Outcome::Rejected => (false, Terminal { success: false }),
            Outcome::Invalid | Outcome::Unavailable | Outcome::Spam => (false, Dnc),
        };
        OutcomePolicy { connected, class }
    }

    /// True when the outcome means a person (or machine) answered (C5 "answered").
    pub fn is_connected(&self) -> bool {
        self.policy().connected
    }

    /// Retry delay in seconds after attempt `n` (1-based); the last delay repeats.
    pub fn retry_delay(&self, attempt: u32) -> Option<i64> {
        match self.policy().class {
            OutcomeClass::Retry { delays, .. } => {
                let i = (attempt.max(1) as usize - 1).min(delays.len() - 1);
                Some(delays[i])
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_table_is_a_total_disjoint_partition() {
        let (mut terminal, mut retry, mut dnc) = (0, 0, 0);
        for o in Outcome::ALL {
            match o.policy().class {
                OutcomeClass::Terminal { .. } => terminal += 1,
                OutcomeClass::Retry { delays, cap } => {
                    assert!(!delays.is_empty() && cap > 0, "{o}");
                    retry += 1
                }
                OutcomeClass::Dnc => dnc += 1,
            }
        }
        assert_eq!(terminal + retry + dnc, Outcome::ALL.len());
        assert_eq!((terminal, retry, dnc), (5, 8, 4));
    }

    #[test]
    fn retry_delays_follow_the_schedule() {
        assert_eq!(Outcome::Busy.retry_delay(1), Some(300));
        assert_eq!(Outcome::Busy.retry_delay(3), Some(2700));
        assert_eq!(Outcome::Busy.retry_delay(9), Some(2700));
        assert_eq!(Outcome::Failed.retry_delay(2), Some(120));
        assert_eq!(Outcome::Answered.retry_delay(1), None);
    }

    #[test]
    fn text_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), *s);
        }
        assert!("bogus".parse::<CallStatus>().is_err());
        assert_eq!(
            serde_json::to_string(&Outcome::NoAnswer).unwrap(),
            "\"no_answer\""
        );
    }
}
