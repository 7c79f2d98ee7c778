//! Text processing between the LLM and TTS, and classifiers for caller text.
//!
//! Everything here is pure and synchronous so it can be unit-tested with the spec's own
//! examples and run inline in an utterance task without allocation surprises:
//!
//! * [`sentence`]: streaming sentence splitter (G7);
//! * [`filler`]: leading-filler stripping (G28);
//! * [`envelope`]: text control envelopes (G26);
//! * [`opener`]: the opener rules (G4);
//! * [`optout`]: opt-out phrases (I4) and disfluency-only transcripts.

pub mod envelope;
pub mod filler;
pub mod opener;
pub mod optout;
pub mod sentence;

pub use envelope::{parse_envelopes, Envelope, EnvelopeDetector};
pub use filler::{has_speakable, strip_leading_filler, FillerGate};
pub use opener::{check_opener, check_reason, render_opener, word_count, OpenerProblem};
pub use optout::{is_disfluency_only, is_opt_out, normalised_words};
pub use sentence::{split_sentences, SentenceSplitter};
