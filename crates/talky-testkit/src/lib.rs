//! talky-testkit
pub mod deepgram;
pub mod openai;
pub mod cartesia;
