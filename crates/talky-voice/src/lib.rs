//! talky-voice: everything that happens on a live call, from carrier frames to the agent's
//! voice and back, without any network or database code of its own.
//!
//! * [`audio`]: sample formats, framing, resampling, codecs, recordings (protocols §1);
//! * [`frame`]: the closed [`Frame`](frame::Frame) vocabulary and turn epochs (G13);
//! * [`text`]: sentence splitting, filler stripping, control envelopes, opener and opt-out rules;
//! * [`vonage`]: the Vonage media-socket wire format (protocols §2.9);
//! * [`pacer`]: the outbound writer logic (exact frames, ≤ 1 s lead, clear, playout tracking);
//! * [`session`]: one voice session per call, driven through ports only.

pub mod audio;
pub mod frame;
pub mod pacer;
pub mod session;
pub mod text;
pub mod vonage;
