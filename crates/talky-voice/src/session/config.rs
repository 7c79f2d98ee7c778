//! The per-call configuration snapshot (behaviour G2) and every session default in one place.
//!
//! The server loads call, lead and campaign when the media socket authenticates and freezes
//! what the session needs into a [`SessionConfig`]; nothing in the session reads the database
//! afterwards, so a campaign edit mid-call cannot change a live conversation. Defaults are the
//! bracketed values of behaviour.md.

use std::path::PathBuf;
use std::time::Duration;

use talky_core::ports::telephony::CarrierCall;

/// How the call is recorded (H1–H2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingMode {
    /// Not recorded.
    Off,
    /// Caller + agent summed into one channel (default).
    #[default]
    Mono,
    /// Left = caller, right = agent.
    Stereo,
}

/// The recording notice (H5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureConfig {
    /// Whether the notice must be delivered before the opener (tenant `recording.disclosure`).
    pub required: bool,
    /// The notice [`This call may be recorded.`].
    pub text: String,
}

impl Default for DisclosureConfig {
    fn default() -> Self {
        Self {
            required: true,
            text: "This call may be recorded.".into(),
        }
    }
}

/// Silence handling (G23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceConfig {
    /// Quiet time after the agent finished speaking before a nudge [7 s].
    pub nudge_after: Duration,
    /// Nudges before giving up [2].
    pub max_nudges: u32,
    /// The nudge line [`Are you still there?`].
    pub nudge_text: String,
    /// Nudges are suppressed if voiced caller audio arrived this recently [2 s].
    pub voiced_suppress: Duration,
    /// End the call if no caller turn was accepted this long after connect [60 s].
    pub no_turn_after_connect: Duration,
    /// End the call if no caller turn was accepted for this long later in the call [120 s].
    pub no_turn_later: Duration,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        Self {
            nudge_after: Duration::from_secs(7),
            max_nudges: 2,
            nudge_text: "Are you still there?".into(),
            voiced_suppress: Duration::from_secs(2),
            no_turn_after_connect: Duration::from_secs(60),
            no_turn_later: Duration::from_secs(120),
        }
    }
}

/// Fixed lines the agent may speak without the LLM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedLines {
    /// After an empty LLM turn (G15) [`Sorry, could you say that again?`].
    pub recovery: String,
    /// After an LLM timeout before any sentence (G16).
    pub apology: String,
    /// Closing line for no response / maximum duration / an end without a last line.
    pub goodbye: String,
    /// One-sentence opt-out acknowledgement (I4).
    pub opt_out_ack: String,
    /// When speech recognition cannot be recovered (G20).
    pub technical_trouble: String,
}

impl Default for FixedLines {
    fn default() -> Self {
        Self {
            recovery: "Sorry, could you say that again?".into(),
            apology: "Sorry, I missed that — could you repeat it?".into(),
            goodbye: "Thanks for your time. Goodbye!".into(),
            opt_out_ack: "Understood, we won't call you again — goodbye.".into(),
            technical_trouble: "Sorry, I'm having technical trouble hearing you, so I'll let you \
                                go. Goodbye."
                .into(),
        }
    }
}

/// Chat-model settings for this call (G16, G26).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmSettings {
    /// Overrides the configured model.
    pub model: Option<String>,
    /// Overrides the configured temperature.
    pub temperature: Option<f32>,
    /// Deadline for the first fragment [5 s].
    pub first_token_timeout: Duration,
    /// Deadline between fragments [3 s].
    pub inter_token_timeout: Duration,
    /// Offer the `end_call` / `mark_goal` / `request_callback` tools.
    pub tools: bool,
    /// Messages of history sent besides the system prompt [20].
    pub history_messages: usize,
    /// Completion token cap.
    pub max_tokens: Option<u32>,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            model: None,
            temperature: None,
            first_token_timeout: Duration::from_secs(5),
            inter_token_timeout: Duration::from_secs(3),
            tools: true,
            history_messages: 20,
            max_tokens: Some(400),
        }
    }
}

/// Barge-in tuning (G8–G9).
#[derive(Debug, Clone, PartialEq)]
pub struct BargeInConfig {
    /// Inbound RMS must be at least this fraction of the agent audio playing [0.5].
    pub echo_ratio: f32,
    /// Consecutive voiced inbound audio needed for a VAD barge-in [200 ms].
    pub vad_min: Duration,
    /// Triggers this close to a previous one return its verdict [350 ms].
    pub duplicate_window: Duration,
    /// The far end counts as playing until `playout_end + grace` [200 ms].
    pub audible_grace: Duration,
    /// Longest hold of ready agent audio while the caller speaks [2.5 s] (G21).
    pub hold_cap: Duration,
    /// Quiet that clears the caller-speaking flag [700 ms] (G21).
    pub quiet_release: Duration,
}

impl Default for BargeInConfig {
    fn default() -> Self {
        Self {
            echo_ratio: 0.5,
            vad_min: Duration::from_millis(200),
            duplicate_window: Duration::from_millis(350),
            audible_grace: Duration::from_millis(200),
            hold_cap: Duration::from_millis(2500),
            quiet_release: Duration::from_millis(700),
        }
    }
}

/// Everything one session needs, frozen at call start (G2).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Talky's call id (logs, TTS context ids).
    pub call_id: String,
    /// The carrier's handle for hang-up; `None` for test calls without a carrier (the session
    /// then simply ends).
    pub carrier_call: Option<CarrierCall>,
    /// The rendered system prompt.
    pub system_prompt: String,
    /// Agent name (opener check, logs).
    pub agent_name: String,
    /// Company name.
    pub company_name: String,
    /// The opener line (G4), already validated or rendered.
    pub opener: String,
    /// Recording notice policy (H5).
    pub disclosure: DisclosureConfig,
    /// TTS voice.
    pub voice_id: Option<String>,
    /// BCP-47 language for STT/TTS.
    pub language: Option<String>,
    /// STT key terms (agent, company, product names).
    pub keyterms: Vec<String>,
    /// Session maximum [7200 s] (G24).
    pub max_call_seconds: u64,
    /// Spoken sentences per reply [3] (G5).
    pub response_max_sentences: usize,
    /// Silence handling (G23).
    pub silence: SilenceConfig,
    /// Fixed lines.
    pub lines: FixedLines,
    /// Chat-model settings.
    pub llm: LlmSettings,
    /// Barge-in tuning.
    pub barge_in: BargeInConfig,
    /// Recording mode (H1–H2).
    pub recording: RecordingMode,
    /// Where the recorder spools audio while the call runs (the server uses
    /// `{data_dir}/spool`; default: a `talky-spool` folder in the system temp directory).
    pub recording_spool: PathBuf,
    /// After a hang-up request, how long to wait for the carrier to close the socket before
    /// tearing down anyway.
    pub hangup_close_grace: Duration,
    /// Wait after a final line's playout end before hanging up when no notify came (G25).
    pub delivery_grace: Duration,
}

impl SessionConfig {
    /// A configuration with every default and the three things that have none.
    pub fn new(
        call_id: impl Into<String>,
        system_prompt: impl Into<String>,
        opener: impl Into<String>,
    ) -> Self {
        Self {
            call_id: call_id.into(),
            carrier_call: None,
            system_prompt: system_prompt.into(),
            agent_name: String::new(),
            company_name: String::new(),
            opener: opener.into(),
            disclosure: DisclosureConfig::default(),
            voice_id: None,
            language: None,
            keyterms: Vec::new(),
            max_call_seconds: 7200,
            response_max_sentences: 3,
            silence: SilenceConfig::default(),
            lines: FixedLines::default(),
            llm: LlmSettings::default(),
            barge_in: BargeInConfig::default(),
            recording: RecordingMode::Mono,
            recording_spool: std::env::temp_dir().join("talky-spool"),
            hangup_close_grace: Duration::from_secs(5),
            delivery_grace: Duration::from_millis(300),
        }
    }

    /// The session maximum as a duration (never below one second).
    pub fn max_call_duration(&self) -> Duration {
        Duration::from_secs(self.max_call_seconds.max(1))
    }
}
