//! Ports: the traits that the I/O crates implement (`talky-store`, `talky-providers`) and
//! that the server and voice session consume through `Arc<dyn …>`.

pub mod llm;
pub mod mail;
pub mod recording;
pub mod store;
pub mod stt;
pub mod telephony;
pub mod tts;
