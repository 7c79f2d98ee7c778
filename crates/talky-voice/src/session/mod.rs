//! One voice session per call (architecture §5, behaviour G, H).
//!
//! The server authenticates the media socket, snapshots the campaign into a
//! [`SessionConfig`], and calls [`spawn_session`]. From then on it only pumps bytes:
//!
//! ```text
//!   socket reader ──text/binary──▶ InboundSender ──▶ ┌────────────┐ ──▶ Outbound receiver ──▶ socket writer
//!                                                     │ controller │      (exact 640-byte frames,
//!   Stt / Llm / Tts / Telephony ports ◀─────────────▶ └────────────┘       clear/notify JSON)
//!                                                           │
//!                                                           ▼ once, on every end path
//!                                                     SessionSink::finished(SessionReport)
//! ```
//!
//! Inside, one controller task owns all state and never awaits provider work; each agent
//! utterance runs in its own task (see `utterance`), STT connects and the carrier hang-up run
//! in background tasks. The server's socket writer should close the socket when the outbound
//! receiver yields `None` (the session ended, after it asked the carrier to hang up).

pub mod config;
mod controller;
pub mod history;
pub mod io;
pub mod recorder;
pub mod report;
mod utterance;

use std::sync::Arc;

use talky_core::ports::llm::Llm;
use talky_core::ports::stt::Stt;
use talky_core::ports::telephony::Telephony;
use talky_core::ports::tts::Tts;
use talky_core::Clock;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{
    BargeInConfig, DisclosureConfig, FixedLines, LlmSettings, RecordingMode, SessionConfig,
    SilenceConfig,
};
pub use io::{Inbound, InboundSender, Outbound, INBOUND_AUDIO_CAPACITY, OUTBOUND_CAPACITY};
pub use report::{
    DtmfRecord, EndReason, HangupStatus, OutcomeHints, RecordingResult, SessionCounters,
    SessionEnd, SessionErrorRecord, SessionReport, SessionSink, TranscriptMetrics, TranscriptTurn,
    TurnLatency, TurnRole,
};

use crate::frame::Frame;

/// Watches every frame the controller handles, without influencing it (metrics, debugging,
/// tests). Called inline on the controller task: keep it cheap and non-blocking.
pub trait FrameObserver: Send + Sync + 'static {
    /// One frame.
    fn on_frame(&self, frame: &Frame);
}

/// The ports and sinks a session uses. Cheap to clone (all `Arc`s).
#[derive(Clone)]
pub struct SessionDeps {
    /// Speech-to-text.
    pub stt: Arc<dyn Stt>,
    /// Chat model.
    pub llm: Arc<dyn Llm>,
    /// Text-to-speech.
    pub tts: Arc<dyn Tts>,
    /// Carrier hang-up.
    pub telephony: Arc<dyn Telephony>,
    /// Where the report goes.
    pub sink: Arc<dyn SessionSink>,
    /// Wall clock for report timestamps (session timing itself uses tokio's clock).
    pub clock: Arc<dyn Clock>,
    /// Optional frame observer.
    pub observer: Option<Arc<dyn FrameObserver>>,
}

/// The server's handle on a running session.
pub struct SessionHandle {
    /// Feed socket messages here (never blocks).
    pub inbound: InboundSender,
    /// Write these to the socket, in order. `None` = the session ended.
    pub outbound: mpsc::Receiver<Outbound>,
    /// Cancels the session (child of the token passed to [`spawn_session`]); the session then
    /// hangs up through the carrier, tears down and persists.
    pub cancel: CancellationToken,
    /// Resolves after the report was handed to the sink.
    pub join: JoinHandle<SessionEnd>,
}

impl SessionHandle {
    /// Ends the call for `reason` (campaign stopped, shutdown): hang up, tear down, persist.
    pub fn stop(&self, reason: EndReason) {
        if !self.inbound.send(Inbound::Stop(reason)) {
            self.cancel.cancel();
        }
    }
}

/// Starts a session on the current tokio runtime. `parent` is usually the server's shutdown
/// token: cancelling it ends the session like [`SessionHandle::stop`] with
/// [`EndReason::AgentEnd`].
pub fn spawn_session(
    config: SessionConfig,
    deps: SessionDeps,
    parent: &CancellationToken,
) -> SessionHandle {
    let cancel = parent.child_token();
    let (inbound_tx, inbound_rx) = io::inbound_pair();
    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let (frames_tx, frames_rx) = mpsc::unbounded_channel();
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let controller = controller::Controller::new(
        Arc::new(config),
        deps,
        cancel.clone(),
        out_tx,
        frames_tx,
        internal_tx,
    );
    let join = tokio::spawn(controller.run(inbound_rx, frames_rx, internal_rx));
    SessionHandle {
        inbound: inbound_tx,
        outbound: out_rx,
        cancel,
        join,
    }
}
