//! Frames: the closed vocabulary of everything that moves through one call's voice pipeline.
//!
//! Every stage of a call (carrier audio in, speech/turn detection, transcripts, LLM text,
//! sentences, synthesised audio, agent decisions, lifecycle) talks in [`Frame`]s, so the
//! session controller has one place that decides what is still current. The rule (behaviour
//! G13, architecture §5):
//!
//! * **System** frames (interruptions, errors, lifecycle) are never dropped: they jump the queue
//!   and survive an interruption.
//! * **Data** and **control** frames carry the turn [`Epoch`] they were produced for. When an
//!   accepted caller turn or an interruption bumps the epoch, every in-flight data/control frame
//!   of the old epoch is stale and is dropped on arrival ([`Frame::is_stale`]).
//!
//! Frames are cheap: audio is [`Bytes`] (reference counted), text is owned once.

use std::fmt;

use bytes::Bytes;
use talky_core::ports::llm::AgentTool;
use tokio::time::Instant;

/// The call's turn counter (G13). Bumped by every accepted caller turn and by every interrupt;
/// work created for an older epoch is discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The following epoch.
    #[must_use]
    pub fn next(self) -> Self {
        Epoch(self.0 + 1)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// Identifies one agent utterance (a reply, the opener, a nudge…). Used in TTS context ids and
/// in carrier `notify` payloads (`"u7"`), so late provider chunks and marks can be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UtteranceId(pub u64);

impl fmt::Display for UtteranceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "u{}", self.0)
    }
}

impl UtteranceId {
    /// Parses the `"u<n>"` form used in notify payloads.
    pub fn parse(s: &str) -> Option<Self> {
        s.strip_prefix('u')?.parse().ok().map(UtteranceId)
    }
}

/// How a frame is scheduled and whether an interruption drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameClass {
    /// Interruptions, errors, lifecycle: handled first, never dropped.
    System,
    /// Audio and text: ordered, dropped when their epoch is stale.
    Data,
    /// Agent decisions and measurements tied to a turn: ordered, dropped when stale.
    Control,
}

/// What kind of agent line a sentence belongs to. Drives transcript grouping (H6), disclosure
/// delivery (H5) and nudge bookkeeping (G23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// The recording notice (H5).
    Disclosure,
    /// The first line of the call (G4).
    Opener,
    /// LLM-generated reply text.
    Reply,
    /// "Are you still there?" (G23).
    Nudge,
    /// The fixed line spoken after an empty/failed LLM turn (G15, G16).
    Recovery,
    /// A fixed closing line (G23 no response, G24 maximum, opt-out acknowledgement, G20).
    Goodbye,
}

/// Who detected the start of caller speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechSource {
    /// Flux `StartOfTurn`.
    SttStartOfTurn,
    /// Deepgram v1 `SpeechStarted`.
    SttSpeechStarted,
    /// Local energy VAD on inbound frames (G8).
    Vad,
}

/// A latency checkpoint reported by an utterance task (J1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimingMark {
    /// The LLM request was sent.
    LlmRequest,
    /// The first LLM text fragment (or tool call) arrived.
    LlmFirstToken,
    /// The first complete sentence left the splitter.
    FirstSentence,
    /// The first TTS request was sent.
    TtsRequest,
    /// The first TTS audio byte arrived.
    TtsFirstByte,
}

/// How an utterance's text generation ended (G15). Each silent turn gets exactly one verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UtteranceVerdict {
    /// Text was produced and handed to TTS.
    Spoken,
    /// The model only called tools (e.g. `end_call`) and said nothing.
    ActionOnly,
    /// The LLM produced nothing speakable and nobody stopped it; the recovery line was used.
    ProviderEmptyStream,
    /// The LLM missed a G16 deadline before any sentence; the apology line was used.
    TimeoutBeforeSpeech,
    /// The LLM missed a deadline after some sentences; the turn ended with what it had.
    TimeoutAfterSpeech,
    /// The LLM failed (HTTP/transport/protocol) before any sentence; the recovery line was used.
    LlmFailed(String),
    /// TTS produced no audio for any sentence of this utterance (G17).
    NoAudio,
}

/// Where a reported error came from (J2 counters, H8 error records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// Speech-to-text.
    Stt,
    /// The chat model.
    Llm,
    /// Text-to-speech.
    Tts,
    /// An audio format conversion.
    Conversion,
    /// The carrier media socket or REST API.
    Carrier,
}

/// Everything that moves through a call's pipeline, grouped by phase.
#[derive(Debug, Clone)]
pub enum Frame {
    // --- input audio -------------------------------------------------------------------------
    /// One 20 ms caller frame (s16le, 16 kHz) with its RMS level.
    InputAudio {
        /// The frame.
        audio: Bytes,
        /// RMS on the s16 scale (protocols §1.5).
        rms: f32,
    },

    // --- VAD / turn events -------------------------------------------------------------------
    /// The caller started speaking (sets the caller-speaking flag, G21; may trigger barge-in).
    UserStartedSpeaking {
        /// Who saw it.
        source: SpeechSource,
    },
    /// The caller-speaking flag cleared (end of turn or 700 ms of quiet).
    UserStoppedSpeaking,
    /// The interrupt operation ran for `epoch` (G9). System: never dropped.
    Interruption {
        /// The epoch that was interrupted.
        epoch: Epoch,
        /// Whether the agent was audible (counts as a barge-in).
        audible: bool,
    },

    // --- transcripts -------------------------------------------------------------------------
    /// A running, replaceable transcript.
    InterimTranscript {
        /// Current text.
        text: String,
    },
    /// An accepted caller turn (opens `epoch`).
    UserTurn {
        /// The epoch this turn opened.
        epoch: Epoch,
        /// Final transcript.
        text: String,
        /// Mean word confidence, when known.
        confidence: Option<f32>,
    },

    // --- LLM tokens --------------------------------------------------------------------------
    /// A text fragment from the model.
    LlmToken {
        /// Turn epoch.
        epoch: Epoch,
        /// Utterance being generated.
        utterance: UtteranceId,
        /// The fragment.
        text: String,
    },

    // --- sentences ---------------------------------------------------------------------------
    /// A complete sentence was handed to TTS.
    Sentence {
        /// Turn epoch.
        epoch: Epoch,
        /// Utterance it belongs to.
        utterance: UtteranceId,
        /// 0-based index within the utterance.
        index: u32,
        /// Line kind.
        kind: LineKind,
        /// The text as sent to TTS.
        text: String,
    },

    // --- TTS audio ---------------------------------------------------------------------------
    /// Synthesised audio for a sentence: s16le 16 kHz, a whole number of samples, any length.
    TtsAudio {
        /// Turn epoch.
        epoch: Epoch,
        /// Utterance.
        utterance: UtteranceId,
        /// Sentence index.
        sentence: u32,
        /// The audio.
        audio: Bytes,
    },
    /// All audio of a sentence has been delivered (`audio_bytes == 0` means TTS failed).
    SentenceEnd {
        /// Turn epoch.
        epoch: Epoch,
        /// Utterance.
        utterance: UtteranceId,
        /// Sentence index.
        sentence: u32,
        /// Total audio bytes produced for the sentence.
        audio_bytes: usize,
    },

    // --- control -----------------------------------------------------------------------------
    /// The agent asked for something (tool call or text control envelope, G26). Never voiced.
    AgentAction {
        /// Turn epoch.
        epoch: Epoch,
        /// Utterance that carried it.
        utterance: UtteranceId,
        /// The parsed action.
        action: AgentTool,
    },
    /// A J1 latency checkpoint.
    Timing {
        /// Turn epoch.
        epoch: Epoch,
        /// Utterance.
        utterance: UtteranceId,
        /// Which checkpoint.
        mark: TimingMark,
        /// When it happened.
        at: Instant,
    },

    // --- lifecycle ---------------------------------------------------------------------------
    /// An utterance task finished generating (its audio may still be queued or playing).
    UtteranceDone {
        /// Turn epoch.
        epoch: Epoch,
        /// Utterance.
        utterance: UtteranceId,
        /// How generation ended.
        verdict: UtteranceVerdict,
    },
    /// Something failed. System: recorded even if the epoch moved on.
    Error {
        /// Component.
        source: ErrorSource,
        /// Human-readable message (never contains secrets).
        message: String,
        /// The component is unusable until recovered.
        fatal: bool,
    },
    /// The session is ending (teardown starts).
    End,
}

impl Frame {
    /// The frame's class (see the module docs).
    pub fn class(&self) -> FrameClass {
        match self {
            Frame::Interruption { .. }
            | Frame::Error { .. }
            | Frame::End
            | Frame::UserStartedSpeaking { .. }
            | Frame::UserStoppedSpeaking
            | Frame::UtteranceDone { .. } => FrameClass::System,
            Frame::InputAudio { .. }
            | Frame::InterimTranscript { .. }
            | Frame::UserTurn { .. }
            | Frame::LlmToken { .. }
            | Frame::Sentence { .. }
            | Frame::TtsAudio { .. }
            | Frame::SentenceEnd { .. } => FrameClass::Data,
            Frame::AgentAction { .. } | Frame::Timing { .. } => FrameClass::Control,
        }
    }

    /// The epoch a data/control frame was produced for (`None` for frames not tied to a turn).
    pub fn epoch(&self) -> Option<Epoch> {
        match self {
            Frame::UserTurn { epoch, .. }
            | Frame::LlmToken { epoch, .. }
            | Frame::Sentence { epoch, .. }
            | Frame::TtsAudio { epoch, .. }
            | Frame::SentenceEnd { epoch, .. }
            | Frame::AgentAction { epoch, .. }
            | Frame::Timing { epoch, .. }
            | Frame::UtteranceDone { epoch, .. }
            | Frame::Interruption { epoch, .. } => Some(*epoch),
            _ => None,
        }
    }

    /// The utterance a frame belongs to, if any.
    pub fn utterance(&self) -> Option<UtteranceId> {
        match self {
            Frame::LlmToken { utterance, .. }
            | Frame::Sentence { utterance, .. }
            | Frame::TtsAudio { utterance, .. }
            | Frame::SentenceEnd { utterance, .. }
            | Frame::AgentAction { utterance, .. }
            | Frame::Timing { utterance, .. }
            | Frame::UtteranceDone { utterance, .. } => Some(*utterance),
            _ => None,
        }
    }

    /// True when this frame must be dropped because the call moved past its epoch: system
    /// frames are never stale; data/control frames are stale unless their epoch is `current`.
    pub fn is_stale(&self, current: Epoch) -> bool {
        match self.class() {
            FrameClass::System => false,
            FrameClass::Data | FrameClass::Control => self.epoch().is_some_and(|e| e != current),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_staleness() {
        let e1 = Epoch(1);
        let audio = Frame::TtsAudio {
            epoch: e1,
            utterance: UtteranceId(3),
            sentence: 0,
            audio: Bytes::from_static(&[0, 0]),
        };
        assert_eq!(audio.class(), FrameClass::Data);
        assert!(!audio.is_stale(e1));
        assert!(audio.is_stale(e1.next()));

        let action = Frame::AgentAction {
            epoch: e1,
            utterance: UtteranceId(3),
            action: AgentTool::RequestCallback { when: None },
        };
        assert_eq!(action.class(), FrameClass::Control);
        assert!(action.is_stale(Epoch(2)));

        let err = Frame::Error {
            source: ErrorSource::Tts,
            message: "x".into(),
            fatal: false,
        };
        assert_eq!(err.class(), FrameClass::System);
        assert!(!err.is_stale(Epoch(99)));
        let done = Frame::UtteranceDone {
            epoch: e1,
            utterance: UtteranceId(3),
            verdict: UtteranceVerdict::Spoken,
        };
        assert!(
            !done.is_stale(Epoch(5)),
            "lifecycle frames survive interruptions"
        );
        // Input audio is not tied to a turn.
        let input = Frame::InputAudio {
            audio: Bytes::new(),
            rms: 0.0,
        };
        assert!(!input.is_stale(Epoch(7)));
    }

    #[test]
    fn utterance_ids_round_trip() {
        assert_eq!(UtteranceId(12).to_string(), "u12");
        assert_eq!(UtteranceId::parse("u12"), Some(UtteranceId(12)));
        assert_eq!(UtteranceId::parse("x12"), None);
        assert_eq!(Epoch(4).next(), Epoch(5));
    }
}
