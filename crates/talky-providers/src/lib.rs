//! Talky's real provider clients: mail (SMTP and the local outbox), speech-to-text,
//! LLM and text-to-speech. Each implements a port trait from `talky-core`.

pub mod cartesia;
pub mod deepgram;
pub mod llm;
pub mod mail;
pub mod storage;
pub mod telephony;

/// Socket settings for the per-call provider WebSockets (Deepgram, Cartesia). Every live call
/// holds one of each. tungstenite allocates its read buffer up front and zero-fills all of
/// its free capacity before every read, so its 128 KiB default costs both memory per call and
/// a 128 KiB memset per received message; writes are flushed per message anyway, so batching
/// buys nothing. `read_buffer` is sized to the socket's usual message (a larger message
/// still arrives whole, over several reads).
pub(crate) fn call_socket_config(
    read_buffer: usize,
) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
}
