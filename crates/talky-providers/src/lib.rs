//! Talky's real provider clients: mail (SMTP and the local outbox), speech-to-text,
//! LLM and text-to-speech. Each implements a port trait from `talky-core`.

pub mod cartesia;
pub mod deepgram;
pub mod llm;
pub mod mail;
pub mod storage;
pub mod telephony;
