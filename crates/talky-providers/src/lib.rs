//! Talky's real provider clients: mail (SMTP and the local outbox), speech-to-text,
//! LLM and text-to-speech. Each implements a port trait from `talky-core`.

pub mod cartesia;
pub mod deepgram;
pub mod llm;
pub mod mail;
pub mod storage;
pub mod telephony;

/// Socket settings for the per-call provider WebSockets (Deepgram, Cartesia). Every live call
/// holds one of each, so tungstenite's 128 KiB default read buffer (allocated up front) and
/// 128 KiB write batching would dominate a call's memory; messages are small (20 ms audio
/// chunks, JSON events), so 16 KiB reads and unbatched writes cost nothing in speed.
pub(crate) fn call_socket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
}
