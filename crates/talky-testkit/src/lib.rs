//! talky-testkit
pub mod deepgram;
