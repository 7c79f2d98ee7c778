//! Speech-to-text port.
//!
//! A streaming STT provider (Deepgram v1, Deepgram Flux, a local engine, a test fake) is reached
//! through the [`Stt`] trait: [`Stt::connect`] opens one stream for one call leg and hands back an
//! [`SttStream`], which is two runtime-free channel ends:
//!
//! * [`SttAudioSender`] — the caller pushes inbound audio (`Bytes`, s16le mono at the rate named in
//!   [`SttOptions`]) and the control requests `finalize` / `close`. Every method is
//!   **non-blocking** and takes `&self`, so the voice session's reader task never waits on the
//!   provider's network. The queue is unbounded on purpose: at 32 kB/s a stalled socket costs a
//!   few hundred kB before the session's STT watchdog (behaviour G19) replaces the stream.
//! * [`SttEventReceiver`] — a `futures` stream of [`SttEvent`]s in the order the provider produced
//!   them. It also supports `try_recv()` for polling without awaiting.
//!
//! ## Event contract
//!
//! * Events of both provider families share one enum. A v1 stream (no turn detection) produces
//!   `SpeechStarted`, `Interim`, `Final`, `UtteranceEnd`, `Metadata`; a turn-detecting stream
//!   (Flux) produces `Connected`, `StartOfTurn`, `Interim` (Flux `Update`), `EagerEndOfTurn`,
//!   `TurnResumed`, `EndOfTurn`. [`SttStreamInfo::turn_events`] says which family to expect.
//! * Transcripts may be empty (providers report silence as empty results). Empty events are still
//!   delivered because every event proves the stream is alive (watchdog, G19); consumers ignore
//!   empty text where it does not matter.
//! * [`SttEvent::Closed`] is always the **last** event of a stream, exactly once. A close the caller
//!   did not ask for (server close, dropped TCP, fatal provider error, socket write failure) is
//!   always preceded by an [`SttEvent::Error`] with `fatal: true`, so "got a fatal error" is the
//!   single signal to reconnect (G20).
//! * Dropping the [`SttAudioSender`] (all clones) is the same as [`SttAudioSender::close`]; dropping
//!   the receiver makes the provider tear the connection down.
//!
//! Timestamps (`audio_start`, `audio_end`, `audio_window_*`, `timestamp`) are seconds of audio
//! since the stream began, as counted by the provider.

use async_trait::async_trait;
use bytes::Bytes;
use futures::channel::mpsc;

/// A streaming speech-to-text provider. One implementation instance serves many calls; each
/// [`connect`](Stt::connect) opens an independent stream.
#[async_trait]
pub trait Stt: Send + Sync {
    /// Short provider name for logs and metrics, e.g. `"deepgram"` or `"deepgram-flux"`.
    fn name(&self) -> &str;

    /// Opens a stream. Returns once the provider accepted the connection (WebSocket upgrade done),
    /// so an authentication or parameter error is reported here as an [`SttError`], never as an
    /// event. Failures after this point arrive as [`SttEvent::Error`] / [`SttEvent::Closed`].
    async fn connect(&self, opts: SttOptions) -> Result<SttStream, SttError>;
}

/// Audio encoding of the bytes pushed into a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SttEncoding {
    /// Signed 16-bit little-endian PCM (Talky's canonical format).
    #[default]
    Linear16,
    /// G.711 μ-law, one byte per sample (raw Twilio audio).
    Mulaw,
}

impl SttEncoding {
    /// Bytes per sample.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            SttEncoding::Linear16 => 2,
            SttEncoding::Mulaw => 1,
        }
    }
}

/// Per-stream options. Provider-wide settings (model, thresholds, key) belong to the provider's
/// own configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SttOptions {
    /// Encoding of the audio that will be pushed.
    pub encoding: SttEncoding,
    /// Sample rate in Hz (16000 for canonical audio).
    pub sample_rate: u32,
    /// BCP-47 language, if the provider should not use its default.
    pub language: Option<String>,
    /// Key terms (product names, the agent's name) to boost.
    pub keyterms: Vec<String>,
}

impl Default for SttOptions {
    fn default() -> Self {
        Self {
            encoding: SttEncoding::Linear16,
            sample_rate: 16_000,
            language: None,
            keyterms: Vec::new(),
        }
    }
}

impl SttOptions {
    /// Bytes of audio per millisecond in this format (32 for 16 kHz s16le).
    pub fn bytes_per_ms(&self) -> usize {
        (self.sample_rate as usize * self.encoding.bytes_per_sample()) / 1000
    }
}

/// One recognised word.
#[derive(Debug, Clone, PartialEq)]
pub struct SttWord {
    /// The raw word as recognised (lower case on Deepgram v1).
    pub word: String,
    /// Display form with punctuation/casing when the provider supplies one.
    pub punctuated: Option<String>,
    /// Start in seconds of stream audio, when known (v1 only).
    pub start: Option<f64>,
    /// End in seconds of stream audio, when known (v1 only).
    pub end: Option<f64>,
    /// Confidence 0.0–1.0.
    pub confidence: f32,
}

/// Something the provider reported about the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// The provider confirmed the session (Flux `Connected`; v1 has no such message).
    Connected { request_id: Option<String> },
    /// Voice activity began (v1 `SpeechStarted`): the v1 barge-in trigger.
    SpeechStarted { timestamp: f64 },
    /// Running, not yet fixed transcript. **Replaces** the previous interim (v1 interim
    /// `Results`; Flux `Update`, which may arrive outside a turn and never opens one).
    Interim { text: String },
    /// A fixed v1 segment: append it to the turn. `speech_final` means the endpointer saw a
    /// pause, which ends the turn (behaviour G, protocols §4.4).
    Final {
        text: String,
        confidence: f32,
        words: Vec<SttWord>,
        audio_start: f64,
        audio_end: f64,
        speech_final: bool,
        /// This result was produced by a `finalize` request.
        from_finalize: bool,
    },
    /// v1 word gap of `utterance_end_ms`: ends the turn if no `speech_final` did.
    UtteranceEnd { last_word_end: Option<f64> },
    /// Flux: the caller began a turn (barge-in / caller-speaking flag).
    StartOfTurn { turn_index: u32, text: String },
    /// Flux: probable end of turn; start a speculative reply. `text` is never empty.
    EagerEndOfTurn {
        turn_index: u32,
        text: String,
        confidence: f32,
    },
    /// Flux: the caller continued after `EagerEndOfTurn`; cancel speculative work only.
    TurnResumed { turn_index: u32, text: String },
    /// Flux: the turn is over; `text` is the final transcript of the turn.
    EndOfTurn {
        turn_index: u32,
        text: String,
        confidence: f32,
        words: Vec<SttWord>,
        audio_window_start: f64,
        audio_window_end: f64,
        /// Ended by a `finalize` (Flux `ForceEndTurn`) rather than by the model.
        manual: bool,
    },
    /// Session summary sent by v1 after `close` (request id, seconds of audio processed).
    Metadata {
        request_id: Option<String>,
        duration: Option<f64>,
    },
    /// A provider or transport error. `fatal: true` means the stream is unusable and a
    /// [`SttEvent::Closed`] follows; non-fatal errors (an unparsable message, a rejected
    /// reconfiguration) leave the stream running.
    Error { message: String, fatal: bool },
    /// The stream ended. Always the last event. `code` is the WebSocket close code (1000 normal,
    /// 1011 provider-side failure or idle timeout, 1006 when the connection dropped without a
    /// close frame).
    Closed { code: u16, reason: String },
}

impl SttEvent {
    /// True for [`SttEvent::Error`] with `fatal: true`.
    pub fn is_fatal_error(&self) -> bool {
        matches!(self, SttEvent::Error { fatal: true, .. })
    }
}

/// Requests from the caller to the provider, in stream order with the audio.
#[derive(Debug, Clone, PartialEq)]
pub enum SttCommand {
    /// Audio bytes in the stream's encoding.
    Audio(Bytes),
    /// Flush pending audio now (v1 `Finalize`; Flux `ForceEndTurn`).
    Finalize,
    /// Send any audio the client is batching now, without a provider message. Used while a
    /// caller turn may be ending, when every 20 ms of delay adds to the reply latency.
    Flush,
    /// Flush, deliver the last results and close normally (`CloseStream`).
    Close,
}

/// Why a push into a stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SttSendError {
    /// The stream has ended (closed, failed, or the provider task is gone); open a new one.
    #[error("STT stream is closed")]
    Closed,
}

/// Caller's end of a stream: pushes audio and control requests. Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub struct SttAudioSender {
    tx: mpsc::UnboundedSender<SttCommand>,
}

impl SttAudioSender {
    /// Wraps a command channel (used by implementations; callers get one from [`Stt::connect`]).
    pub fn new(tx: mpsc::UnboundedSender<SttCommand>) -> Self {
        Self { tx }
    }

    /// Queues audio. Empty buffers are ignored.
    pub fn send_audio(&self, audio: Bytes) -> Result<(), SttSendError> {
        if audio.is_empty() {
            return if self.tx.is_closed() {
                Err(SttSendError::Closed)
            } else {
                Ok(())
            };
        }
        self.send(SttCommand::Audio(audio))
    }

    /// Queues audio and sends it without waiting to fill a batch (see [`SttCommand::Flush`]).
    pub fn send_audio_now(&self, audio: Bytes) -> Result<(), SttSendError> {
        self.send_audio(audio)?;
        self.send(SttCommand::Flush)
    }

    /// Asks the provider to flush what it has heard so far (see [`SttCommand::Finalize`]).
    pub fn finalize(&self) -> Result<(), SttSendError> {
        self.send(SttCommand::Finalize)
    }

    /// Asks for a graceful close; remaining results, then [`SttEvent::Closed`], still arrive.
    pub fn close(&self) -> Result<(), SttSendError> {
        self.send(SttCommand::Close)
    }

    /// Queues any command.
    pub fn send(&self, cmd: SttCommand) -> Result<(), SttSendError> {
        self.tx
            .unbounded_send(cmd)
            .map_err(|_| SttSendError::Closed)
    }

    /// True once the provider side has gone away.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Caller's end of the event channel. Implements `futures::Stream<Item = SttEvent>`; ends after
/// [`SttEvent::Closed`].
pub type SttEventReceiver = mpsc::UnboundedReceiver<SttEvent>;

/// What the caller should know about an open stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SttStreamInfo {
    /// Provider name (as [`Stt::name`]).
    pub provider: String,
    /// True when the stream emits turn events (`StartOfTurn` … `EndOfTurn`); false when the
    /// caller assembles turns from `Final`/`UtteranceEnd` (protocols §4.4).
    pub turn_events: bool,
    /// Provider request id when known at connect time (for logs and support tickets).
    pub request_id: Option<String>,
}

/// An open STT stream, as returned by [`Stt::connect`].
#[derive(Debug)]
pub struct SttStream {
    /// Push audio and control requests here.
    pub audio: SttAudioSender,
    /// Read events here.
    pub events: SttEventReceiver,
    /// Facts about the stream.
    pub info: SttStreamInfo,
}

/// The implementation's end of a stream, created together with an [`SttStream`] by
/// [`stt_stream_pair`].
#[derive(Debug)]
pub struct SttStreamBackend {
    /// Commands from the caller; yields `None` once every [`SttAudioSender`] was dropped.
    pub commands: mpsc::UnboundedReceiver<SttCommand>,
    /// Where to emit events. `unbounded_send` fails once the caller dropped its receiver.
    pub events: mpsc::UnboundedSender<SttEvent>,
}

/// Creates the two ends of a stream: implementations (real clients, fakes in tests) keep the
/// backend and return the [`SttStream`].
pub fn stt_stream_pair(info: SttStreamInfo) -> (SttStream, SttStreamBackend) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded();
    let (ev_tx, ev_rx) = mpsc::unbounded();
    (
        SttStream {
            audio: SttAudioSender::new(cmd_tx),
            events: ev_rx,
            info,
        },
        SttStreamBackend {
            commands: cmd_rx,
            events: ev_tx,
        },
    )
}

/// Why [`Stt::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SttError {
    /// The provider answered the upgrade with an HTTP error (400 bad parameter, 401 bad key,
    /// 5xx outage). `body` is the provider's explanation, truncated; it never contains the key.
    #[error("STT provider rejected the connection with HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    /// The connection was not established within the connect timeout.
    #[error("STT connect timed out after {after_ms} ms")]
    Timeout { after_ms: u64 },
    /// DNS, TCP, TLS or WebSocket handshake failure.
    #[error("STT connection failed: {0}")]
    Connect(String),
    /// The provider configuration or the options cannot produce a valid request.
    #[error("invalid STT configuration: {0}")]
    Config(String),
}

impl SttError {
    /// True for 401/403: the key is wrong, retrying will not help.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            SttError::Rejected {
                status: 401 | 403,
                ..
            }
        )
    }

    /// True when retrying the same request later may succeed (timeouts, network errors, 408,
    /// 429, 5xx). G20 still retries the others a bounded number of times before failing over.
    pub fn is_transient(&self) -> bool {
        match self {
            SttError::Rejected { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            SttError::Timeout { .. } | SttError::Connect(_) => true,
            SttError::Config(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn pair_carries_commands_and_events_in_order() {
        let (stream, mut backend) = stt_stream_pair(SttStreamInfo {
            provider: "fake".into(),
            turn_events: false,
            request_id: None,
        });
        stream
            .audio
            .send_audio(Bytes::from_static(&[0, 0]))
            .unwrap();
        stream.audio.send_audio(Bytes::new()).unwrap();
        stream.audio.finalize().unwrap();
        stream.audio.close().unwrap();
        assert_eq!(
            backend.commands.try_recv(),
            Ok(SttCommand::Audio(Bytes::from_static(&[0, 0])))
        );
        assert_eq!(backend.commands.try_recv(), Ok(SttCommand::Finalize));
        assert_eq!(backend.commands.try_recv(), Ok(SttCommand::Close));
        assert_eq!(
            backend.commands.try_recv(),
            Err(mpsc::TryRecvError::Empty),
            "the empty buffer was not queued"
        );

        backend
            .events
            .unbounded_send(SttEvent::Interim { text: "hi".into() })
            .unwrap();
        drop(backend);
        let mut events = stream.events;
        let got: Vec<_> = futures::executor::block_on(async { (&mut events).collect().await });
        assert_eq!(got, vec![SttEvent::Interim { text: "hi".into() }]);
        assert_eq!(
            stream.audio.send_audio(Bytes::from_static(&[1, 0])),
            Err(SttSendError::Closed)
        );
        assert!(stream.audio.is_closed());
    }

    #[test]
    fn error_classification() {
        let e = SttError::Rejected {
            status: 401,
            body: String::new(),
        };
        assert!(e.is_auth());
        assert!(!e.is_transient());
        assert!(SttError::Rejected {
            status: 503,
            body: String::new()
        }
        .is_transient());
        assert!(SttError::Timeout { after_ms: 5000 }.is_transient());
        assert!(!SttError::Config("x".into()).is_transient());
    }

    #[test]
    fn bytes_per_ms() {
        assert_eq!(SttOptions::default().bytes_per_ms(), 32);
        let mulaw = SttOptions {
            encoding: SttEncoding::Mulaw,
            sample_rate: 8000,
            ..SttOptions::default()
        };
        assert_eq!(mulaw.bytes_per_ms(), 8);
    }
}
