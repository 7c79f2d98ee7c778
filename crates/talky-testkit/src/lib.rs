//! Dev tooling for Talky (never linked into `talky`): protocol-faithful mocks of the
//! providers — Deepgram STT v1 and Flux, an OpenAI-compatible chat endpoint, Cartesia TTS —
//! each with configurable latency, scripts and fault modes; the `talky-mock` binary serves
//! them all on one port.
pub mod cartesia;
pub mod deepgram;
pub mod openai;
