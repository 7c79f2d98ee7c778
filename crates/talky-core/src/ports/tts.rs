//! The text-to-speech port (protocols §6, behaviour G7/G17).
//!
//! Two ways to synthesise:
//!
//! * [`Tts::synthesize_stream`] — one request, one audio stream. Stateless; Cartesia serves it
//!   over HTTP (`/tts/bytes`), which is also the G17 fallback.
//! * [`Tts::open_session`] — one long-lived connection per call (Cartesia WebSocket) on which
//!   many utterances are multiplexed as *contexts*. An utterance is opened with
//!   [`TtsSession::open_context`], fed sentence by sentence ([`TtsContextInput::send`], the
//!   `continue: true` messages), closed with [`TtsContextInput::finish`], and its audio read from
//!   [`TtsContextAudio`]. Everything on the caller's side is runtime-free and non-blocking, in
//!   the same shape as the STT port: commands go into an unbounded channel drained by the
//!   implementation's socket task.
//!
//! **Cancel is cheap:** [`TtsContextInput::cancel`] flips a shared flag, so the context's audio
//! stream ends at once (chunks the provider still sends for it are dropped, §6.1), and queues a
//! `cancel` for the provider. Dropping a [`TtsContextAudio`] before its end cancels the context
//! too. Nothing awaits the network.
//!
//! **Audio:** every [`TtsChunk`] holds a whole number of samples (implementations carry odd
//! bytes across provider chunks, protocols §1.3) in the declared encoding and rate.
//!
//! **End of a context:** the audio stream ends (`None`) after the provider's `done`. A `done`
//! that follows zero chunks yields `Err(TtsError::Empty)` first (§6.1: empty is not success). A
//! provider `error` or a dropped socket yields one `Err` and ends the stream.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::channel::mpsc;
use futures::stream::{BoxStream, Stream};

/// Encoding of synthesised audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtsEncoding {
    /// Signed 16-bit little-endian PCM (Talky's canonical format).
    #[default]
    PcmS16le,
    /// G.711 μ-law, one byte per sample (Twilio).
    PcmMulaw,
    /// G.711 A-law, one byte per sample.
    PcmAlaw,
}

impl TtsEncoding {
    /// Bytes per sample.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            TtsEncoding::PcmS16le => 2,
            TtsEncoding::PcmMulaw | TtsEncoding::PcmAlaw => 1,
        }
    }
}

/// One piece of synthesised audio: a whole number of samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtsChunk {
    pub audio: Bytes,
    pub sample_rate: u32,
    pub encoding: TtsEncoding,
}

impl TtsChunk {
    /// Duration of this chunk.
    pub fn duration(&self) -> Duration {
        let samples = self.audio.len() / self.encoding.bytes_per_sample();
        Duration::from_micros(samples as u64 * 1_000_000 / self.sample_rate.max(1) as u64)
    }
}

/// Voice and output format of a session (or of one request).
#[derive(Debug, Clone, PartialEq)]
pub struct TtsSessionOptions {
    /// Overrides the provider's configured voice.
    pub voice_id: Option<String>,
    /// BCP-47 / ISO language (`"en"`); `None` = provider default.
    pub language: Option<String>,
    /// Output sample rate in Hz; default 16000.
    pub output_sample_rate: u32,
    pub encoding: TtsEncoding,
    /// Speaking-rate multiplier (1.0 = normal), if the provider supports it.
    pub speed: Option<f32>,
}

impl Default for TtsSessionOptions {
    fn default() -> Self {
        Self {
            voice_id: None,
            language: None,
            output_sample_rate: 16_000,
            encoding: TtsEncoding::PcmS16le,
            speed: None,
        }
    }
}

/// One stateless synthesis request.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsRequest {
    pub text: String,
    pub voice_id: Option<String>,
    pub language: Option<String>,
    /// Output sample rate in Hz; default 16000.
    pub output_sample_rate: u32,
    pub encoding: TtsEncoding,
    pub speed: Option<f32>,
}

impl TtsRequest {
    /// Canonical output (s16le, 16 kHz) in the provider's configured voice.
    pub fn new(text: impl Into<String>) -> Self {
        Self::with_options(text, &TtsSessionOptions::default())
    }

    /// A request in a session's voice and format (the G17 HTTP retry of one sentence).
    pub fn with_options(text: impl Into<String>, opts: &TtsSessionOptions) -> Self {
        Self {
            text: text.into(),
            voice_id: opts.voice_id.clone(),
            language: opts.language.clone(),
            output_sample_rate: opts.output_sample_rate,
            encoding: opts.encoding,
            speed: opts.speed,
        }
    }

    /// The voice/format part of this request.
    pub fn options(&self) -> TtsSessionOptions {
        TtsSessionOptions {
            voice_id: self.voice_id.clone(),
            language: self.language.clone(),
            output_sample_rate: self.output_sample_rate,
            encoding: self.encoding,
            speed: self.speed,
        }
    }
}

/// Errors of every TTS implementation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TtsError {
    /// HTTP 401/403 (also on a WebSocket upgrade).
    #[error("TTS rejected credentials ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// HTTP 429.
    #[error("TTS rate limited (retry after {retry_after:?}): {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Any other non-2xx HTTP answer (request or upgrade).
    #[error("TTS HTTP error {status}: {message}")]
    Http { status: u16, message: String },
    /// DNS/TCP/TLS/handshake failure.
    #[error("TTS connection failed: {0}")]
    Connect(String),
    /// Connect or request deadline expired.
    #[error("TTS timed out: {0}")]
    Timeout(String),
    /// The provider reported an error for this context / request.
    #[error("TTS provider error (status {status_code:?}): {message}")]
    Provider {
        status_code: Option<u16>,
        message: String,
    },
    /// The provider finished the context without sending any audio.
    #[error("TTS produced no audio")]
    Empty,
    /// The connection dropped (or the session was closed) before the context finished.
    #[error("TTS connection closed: {0}")]
    Closed(String),
    /// Unparsable provider message.
    #[error("TTS protocol error: {0}")]
    Protocol(String),
    /// The implementation has no session (multiplexed) API.
    #[error("TTS sessions are not supported by this provider")]
    Unsupported,
    /// Invalid configuration (e.g. a base URL without scheme).
    #[error("TTS configuration error: {0}")]
    Config(String),
}

impl TtsError {
    /// True when the same sentence may succeed on retry (G17 retries once over HTTP).
    pub fn is_transient(&self) -> bool {
        match self {
            TtsError::Unauthorized { .. } | TtsError::Unsupported | TtsError::Config(_) => false,
            TtsError::Http { status, .. } => *status == 408 || *status >= 500,
            _ => true,
        }
    }
}

/// A text-to-speech provider. One instance serves many calls.
#[async_trait]
pub trait Tts: Send + Sync {
    /// Synthesises one text. Returns once the provider accepted the request (HTTP errors come
    /// back here); the stream yields s16le (or the requested encoding) chunks and ends, or ends
    /// with one `Err`. An empty result is `Err(TtsError::Empty)`.
    async fn synthesize_stream(
        &self,
        req: TtsRequest,
    ) -> Result<BoxStream<'static, Result<TtsChunk, TtsError>>, TtsError>;

    /// Opens a multiplexed session (one connection per call). Returns once connected, so
    /// authentication errors come back here. Default: [`TtsError::Unsupported`] — callers then
    /// use [`Tts::synthesize_stream`] per sentence.
    async fn open_session(&self, _opts: TtsSessionOptions) -> Result<TtsSession, TtsError> {
        Err(TtsError::Unsupported)
    }
}

/// Requests from the caller to a session's implementation, in order.
#[derive(Debug)]
pub enum TtsCommand {
    /// A new context; its audio goes to `sink`. Always precedes the context's `Text`.
    Open {
        context_id: String,
        sink: TtsAudioSink,
    },
    /// Text for a context. `more: true` = `continue: true` (more text will follow).
    Text {
        context_id: String,
        text: String,
        more: bool,
    },
    /// Stop generating this context.
    Cancel { context_id: String },
    /// Close the connection; open contexts end with [`TtsError::Closed`].
    Close,
}

/// Shared state of one context.
#[derive(Debug)]
struct ContextShared {
    cancelled: AtomicBool,
}

/// The implementation's end of a context's audio channel.
#[derive(Debug)]
pub struct TtsAudioSink {
    tx: mpsc::UnboundedSender<Result<TtsChunk, TtsError>>,
    shared: Arc<ContextShared>,
}

impl TtsAudioSink {
    /// Delivers an item. Returns false when the caller no longer wants audio (cancelled or
    /// dropped); the implementation should then forget the context.
    pub fn send(&self, item: Result<TtsChunk, TtsError>) -> bool {
        !self.is_cancelled() && self.tx.unbounded_send(item).is_ok()
    }
    /// True once the caller cancelled the context or dropped its audio stream.
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::Acquire) || self.tx.is_closed()
    }
    /// Marks the context cancelled (a session-level cancel by id).
    pub fn mark_cancelled(&self) {
        self.shared.cancelled.store(true, Ordering::Release);
    }
}

/// Caller's handle to feed and cancel one context. Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub struct TtsContextInput {
    context_id: Arc<str>,
    commands: mpsc::UnboundedSender<TtsCommand>,
    shared: Arc<ContextShared>,
}

impl TtsContextInput {
    pub fn context_id(&self) -> &str {
        &self.context_id
    }

    /// Queues a sentence; more text will follow (`continue: true`).
    pub fn send(&self, text: impl Into<String>) -> Result<(), TtsError> {
        self.text(text.into(), true)
    }

    /// Queues the last sentence of the utterance (`continue: false`).
    pub fn send_last(&self, text: impl Into<String>) -> Result<(), TtsError> {
        self.text(text.into(), false)
    }

    /// Ends the utterance without more text (an empty transcript with `continue: false`).
    pub fn finish(&self) -> Result<(), TtsError> {
        self.text(String::new(), false)
    }

    fn text(&self, text: String, more: bool) -> Result<(), TtsError> {
        if self.is_cancelled() {
            return Ok(());
        }
        self.commands
            .unbounded_send(TtsCommand::Text {
                context_id: self.context_id.to_string(),
                text,
                more,
            })
            .map_err(|_| TtsError::Closed("TTS session is closed".into()))
    }

    /// Cancels the context: its audio stream ends immediately and the provider is told to stop.
    /// Idempotent.
    pub fn cancel(&self) {
        if !self.shared.cancelled.swap(true, Ordering::AcqRel) {
            let _ = self.commands.unbounded_send(TtsCommand::Cancel {
                context_id: self.context_id.to_string(),
            });
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::Acquire)
    }
}

/// Caller's end of a context's audio. A stream of chunks; see the module docs for how it ends.
/// Dropping it before the end cancels the context.
#[derive(Debug)]
pub struct TtsContextAudio {
    rx: mpsc::UnboundedReceiver<Result<TtsChunk, TtsError>>,
    input: TtsContextInput,
    ended: bool,
}

impl TtsContextAudio {
    pub fn context_id(&self) -> &str {
        self.input.context_id()
    }
}

impl Stream for TtsContextAudio {
    type Item = Result<TtsChunk, TtsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended || self.input.is_cancelled() {
            self.ended = true;
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.rx).poll_next(cx) {
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => {
                if self.input.is_cancelled() {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(item))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for TtsContextAudio {
    fn drop(&mut self) {
        if !self.ended {
            self.input.cancel();
        }
    }
}

/// One utterance on a session: feed `input`, read `audio`.
#[derive(Debug)]
pub struct TtsContext {
    pub input: TtsContextInput,
    pub audio: TtsContextAudio,
}

/// A multiplexed TTS connection (one per call). Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub struct TtsSession {
    commands: mpsc::UnboundedSender<TtsCommand>,
    options: TtsSessionOptions,
}

impl TtsSession {
    /// Opens a context (`context_id` unique per utterance, e.g. `<call>-u<n>`). No I/O happens
    /// until text is sent.
    pub fn open_context(&self, context_id: impl Into<String>) -> Result<TtsContext, TtsError> {
        let context_id: String = context_id.into();
        let shared = Arc::new(ContextShared {
            cancelled: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::unbounded();
        self.commands
            .unbounded_send(TtsCommand::Open {
                context_id: context_id.clone(),
                sink: TtsAudioSink {
                    tx,
                    shared: shared.clone(),
                },
            })
            .map_err(|_| TtsError::Closed("TTS session is closed".into()))?;
        let input = TtsContextInput {
            context_id: context_id.into(),
            commands: self.commands.clone(),
            shared,
        };
        Ok(TtsContext {
            audio: TtsContextAudio {
                rx,
                input: input.clone(),
                ended: false,
            },
            input,
        })
    }

    /// Cancels a context by id (prefer [`TtsContextInput::cancel`], which also ends the audio
    /// stream synchronously).
    pub fn cancel(&self, context_id: &str) {
        let _ = self.commands.unbounded_send(TtsCommand::Cancel {
            context_id: context_id.to_string(),
        });
    }

    /// Asks the implementation to close the connection.
    pub fn close(&self) {
        let _ = self.commands.unbounded_send(TtsCommand::Close);
    }

    /// True once the connection is gone (the implementation dropped its end): reconnect.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Voice and format every context of this session uses.
    pub fn options(&self) -> &TtsSessionOptions {
        &self.options
    }
}

/// Creates a session and the implementation's command receiver. The implementation drains
/// the receiver (it yields `None` once every [`TtsSession`] / [`TtsContextInput`] clone is
/// dropped) and drops it when the connection ends, which makes [`TtsSession::is_closed`] true.
pub fn tts_session_pair(
    options: TtsSessionOptions,
) -> (TtsSession, mpsc::UnboundedReceiver<TtsCommand>) {
    let (tx, rx) = mpsc::unbounded();
    (
        TtsSession {
            commands: tx,
            options,
        },
        rx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::StreamExt;

    fn chunk(b: &'static [u8]) -> TtsChunk {
        TtsChunk {
            audio: Bytes::from_static(b),
            sample_rate: 16_000,
            encoding: TtsEncoding::PcmS16le,
        }
    }

    #[test]
    fn context_commands_and_audio_flow() {
        let (session, mut backend) = tts_session_pair(TtsSessionOptions::default());
        let mut ctx = session.open_context("c-u1").unwrap();
        ctx.input.send("Hello there. ").unwrap();
        ctx.input.finish().unwrap();
        let sink = match backend.try_recv().ok() {
            Some(TtsCommand::Open { context_id, sink }) => {
                assert_eq!(context_id, "c-u1");
                sink
            }
            other => panic!("unexpected {other:?}"),
        };
        assert!(matches!(
            backend.try_recv().ok(),
            Some(TtsCommand::Text { more: true, .. })
        ));
        assert!(matches!(
            backend.try_recv().ok(),
            Some(TtsCommand::Text { more: false, ref text, .. }) if text.is_empty()
        ));
        assert!(sink.send(Ok(chunk(&[1, 2]))));
        drop(sink);
        let got: Vec<_> = block_on((&mut ctx.audio).collect());
        assert_eq!(got, vec![Ok(chunk(&[1, 2]))]);
        // Ended normally: dropping the audio does not cancel.
        drop(ctx.audio);
        assert!(backend.try_recv().is_err());
    }

    #[test]
    fn cancel_ends_audio_at_once_and_notifies_once() {
        let (session, mut backend) = tts_session_pair(TtsSessionOptions::default());
        let mut ctx = session.open_context("c-u2").unwrap();
        let sink = match backend.try_recv().ok() {
            Some(TtsCommand::Open { sink, .. }) => sink,
            other => panic!("unexpected {other:?}"),
        };
        assert!(sink.send(Ok(chunk(&[1, 2]))));
        ctx.input.cancel();
        ctx.input.cancel();
        // The buffered chunk is not delivered after cancel.
        assert_eq!(block_on(ctx.audio.next()), None);
        assert!(!sink.send(Ok(chunk(&[3, 4]))));
        assert!(sink.is_cancelled());
        assert!(matches!(
            backend.try_recv().ok(),
            Some(TtsCommand::Cancel { ref context_id }) if context_id == "c-u2"
        ));
        assert!(backend.try_recv().is_err());
        // Text after cancel is silently ignored.
        ctx.input.send("more").unwrap();
        assert!(backend.try_recv().is_err());
    }

    #[test]
    fn dropping_unfinished_audio_cancels() {
        let (session, mut backend) = tts_session_pair(TtsSessionOptions::default());
        let ctx = session.open_context("c-u3").unwrap();
        let _open = backend.try_recv().ok();
        drop(ctx.audio);
        assert!(matches!(
            backend.try_recv().ok(),
            Some(TtsCommand::Cancel { .. })
        ));
        drop(backend);
        assert!(session.is_closed());
        assert!(matches!(
            session.open_context("c-u4"),
            Err(TtsError::Closed(_))
        ));
    }

    #[test]
    fn chunk_duration() {
        let c = TtsChunk {
            audio: Bytes::from(vec![0u8; 640]),
            sample_rate: 16_000,
            encoding: TtsEncoding::PcmS16le,
        };
        assert_eq!(c.duration(), Duration::from_millis(20));
    }
}
