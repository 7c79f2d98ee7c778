//! The session controller: one task per call that owns all conversational state.
//!
//! It reacts to four inputs — carrier events, STT events, frames from utterance tasks and
//! internal completions (STT connected, hang-up done) — plus one timer, and after each one
//! writes whatever the pacer says is due. Every handler is synchronous and short: the
//! controller never awaits LLM or TTS work (G6); those run in utterance tasks that report back
//! through [`Frame`]s, and stale frames are dropped by epoch (G13).
//!
//! Responsibilities, by spec item: opener and disclosure first (G4, H5); caller turns (v1
//! `Final`/`UtteranceEnd` assembly and Flux `EndOfTurn`); barge-in from STT or local VAD with
//! one idempotent interrupt (G8–G11); strict history alternation (G14); agent-initiated end with
//! delivery-then-hang-up (G25–G26); opt-out (I4); nudges and no-conversation bounds (G23);
//! maximum duration (G24); STT reconnects and the watchdog (G19–G20); TTS silence accounting
//! (G17); recording (H1) and the per-call report (H6, J1, J2); teardown once (H8–H9).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use talky_core::ports::llm::{AgentTool, ChatRequest, LlmDeadlines, ToolDefinition};
use talky_core::ports::stt::{
    SttAudioSender, SttError, SttEvent, SttEventReceiver, SttOptions, SttStream,
};
use talky_core::ports::telephony::TelephonyError;
use talky_core::ports::tts::{TtsError, TtsSession, TtsSessionOptions};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::config::{RecordingMode, SessionConfig};
use super::history::History;
use super::io::{Inbound, InboundReceiver, Outbound};
use super::recorder::Recorder;
use super::report::{
    DtmfRecord, EndReason, HangupStatus, OutcomeHints, RecordingResult, SessionCounters,
    SessionEnd, SessionErrorRecord, SessionReport, TranscriptMetrics, TranscriptTurn, TurnLatency,
    TurnRole,
};
use super::utterance::{self, Fallbacks, Script, UtteranceJob};
use super::SessionDeps;
use crate::audio::{rms_s16le, Framer, FRAME_BYTES, SAMPLE_RATE, VOICED_RMS_THRESHOLD};
use crate::frame::{
    Epoch, ErrorSource, Frame, LineKind, SpeechSource, TimingMark, UtteranceId, UtteranceVerdict,
};
use crate::pacer::{Paced, Pacer, PacerConfig, Tag, FRAME_DURATION};
use crate::text::{is_disfluency_only, is_opt_out, normalised_words, split_sentences};
use crate::vonage::{notify_action, parse_sentence_payload, sentence_payload, CLEAR_ACTION};

/// Caller audio per STT message outside a possible turn end: 80 ms of s16le 16 kHz, the
/// chunk size Deepgram recommends (protocols §4–§5).
const STT_BATCH_BYTES: usize = 2560;
/// After the caller's last voiced frame, how long caller audio goes to the STT unbatched.
const STT_EAGER_WINDOW: Duration = Duration::from_secs(2);

/// Inbound audio kept for replay into a fresh STT stream (G19: ≤ 10 s).
const REPLAY_FRAMES: usize = 500;
/// Voiced, unanswered inbound audio that declares the STT stream dead (G19) [6 s].
const WATCHDOG_FRAMES: u32 = 300;
/// Agent audio counts as "just played" this long after playout end (G19).
const WATCHDOG_AFTER_AGENT: Duration = Duration::from_millis(250);
/// STT reconnect delays (G20).
const STT_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
];
/// Guard on one STT connect attempt (the provider has its own 5 s timeout).
const STT_CONNECT_GUARD: Duration = Duration::from_secs(10);
/// Wait before re-delivering an interrupted disclosure (H5.3).
const DISCLOSURE_REDELIVER_AFTER: Duration = Duration::from_millis(1200);
/// An agent-initiated end hangs up at the latest this long after it was decided.
const END_FORCE_AFTER: Duration = Duration::from_secs(30);
/// Teardown waits at most this long for tasks (H9 step 2).
const TEARDOWN_WAIT: Duration = Duration::from_secs(2);
/// Retry interval when the outbound channel is full.
const OUTBOUND_RETRY: Duration = Duration::from_millis(5);
/// G27: echo needs at least this many words…
const ECHO_MIN_WORDS: usize = 3;
/// …and must start within this long after agent playout.
const ECHO_GRACE: Duration = Duration::from_millis(1500);
/// Errors kept in the report (later ones are only logged).
const MAX_ERROR_RECORDS: usize = 100;
/// Consecutive utterances without TTS audio before the call is abandoned (G17).
const MAX_SILENT_UTTERANCES: u32 = 2;

/// Completions of background work the controller started.
pub(crate) enum Internal {
    SttConnected {
        generation: u64,
        result: Result<SttStream, SttError>,
    },
    TtsSession(Result<TtsSession, TtsError>),
    HangUp(Result<(), TelephonyError>),
}

/// One sentence of an utterance, as the controller tracks its delivery.
#[derive(Debug)]
struct SentenceState {
    kind: LineKind,
    text: String,
    /// `SentenceEnd` arrived.
    ended: bool,
    audio_bytes: usize,
    /// Estimated playout end of its last frame (set when its notify mark was sent).
    played_by: Option<Instant>,
    /// The carrier confirmed playout (`websocket:notify`).
    notified: bool,
}

impl SentenceState {
    fn delivered_by(&self, now: Instant) -> bool {
        self.audio_bytes > 0 && (self.notified || self.played_by.is_some_and(|t| t <= now))
    }
}

/// J1 checkpoints of one reply.
#[derive(Debug, Default, Clone)]
struct LatencyDraft {
    speech_end: Option<Instant>,
    end_of_turn: Option<Instant>,
    final_text: Option<Instant>,
    llm_request: Option<Instant>,
    llm_first: Option<Instant>,
    first_sentence: Option<Instant>,
    tts_request: Option<Instant>,
    tts_first: Option<Instant>,
    first_frame: Option<Instant>,
}

/// The utterance being generated and/or played.
#[derive(Debug)]
struct Utterance {
    id: UtteranceId,
    cancel: CancellationToken,
    sentences: Vec<SentenceState>,
    verdict: Option<UtteranceVerdict>,
    first_frame_at: Option<Instant>,
    is_reply: bool,
    carries_disclosure: bool,
    end_after: bool,
    latency: Option<Box<LatencyDraft>>,
}

impl Utterance {
    /// Generation finished and every sentence's audio (if any) has left the pacer.
    fn fully_sent(&self) -> bool {
        self.verdict.is_some()
            && self
                .sentences
                .iter()
                .all(|s| s.ended && (s.audio_bytes == 0 || s.played_by.is_some()))
    }
}

/// How an utterance ended, for commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitKind {
    /// Everything was delivered.
    Completed,
    /// The caller barged in.
    Interrupted,
    /// The session cut it (goodbye, maximum, teardown) — not the caller.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SttState {
    Connecting,
    Up,
    Down { retry_at: Instant },
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disclosure {
    NotRequired,
    Pending,
    Delivered,
    NeedsRedelivery,
    Redelivering,
    Failed,
}

#[derive(Debug)]
struct Ending {
    reason: EndReason,
    force_at: Instant,
    hangup_requested: bool,
    close_deadline: Option<Instant>,
}

/// Accumulates a v1 turn from `Final` segments (protocols §4.4).
#[derive(Debug, Default)]
struct V1Turn {
    text: String,
    audio_start: Option<f64>,
    confidence_sum: f32,
    segments: u32,
    audio_end: Option<f64>,
    last_final_at: Option<Instant>,
}

/// An end-of-turn transcript with its timing.
struct CallerTurn<'a> {
    text: &'a str,
    confidence: Option<f32>,
    speech_start: Option<Instant>,
    speech_end: Option<Instant>,
    final_at: Instant,
}

/// The controller. See the module docs.
pub(crate) struct Controller {
    cfg: Arc<SessionConfig>,
    deps: SessionDeps,
    call_id: Arc<str>,
    cancel: CancellationToken,
    out: mpsc::Sender<Outbound>,
    pending_text: VecDeque<String>,
    frames_tx: mpsc::UnboundedSender<Frame>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    tasks: JoinSet<()>,
    pacer: Pacer,
    recorder: Recorder,
    history: History,
    transcript: Vec<TranscriptTurn>,
    epoch: Epoch,
    next_utterance: u64,
    current: Option<Utterance>,

    started: Instant,
    started_wall: DateTime<Utc>,
    connected: Option<Instant>,

    caller_speaking: bool,
    hold_since: Option<Instant>,
    quiet_frames: u32,
    vad_run: u32,
    last_voiced: Option<Instant>,
    inbound_framer: Framer,
    v1_turn: V1Turn,

    stt: Option<SttAudioSender>,
    stt_events: Option<SttEventReceiver>,
    stt_generation: u64,
    stt_origin: Option<Instant>,
    /// Caller audio not yet handed to the STT stream (see `on_caller_frame`).
    stt_batch: BytesMut,
    stt_state: SttState,
    stt_failures: u32,
    replay: VecDeque<Bytes>,
    watchdog_voiced: u32,
    /// Agent utterances spoken since the caller's last accepted turn (G27).
    echo_texts: Vec<String>,
    /// Undelivered sentences of the last interrupted reply (re-spoken if the interrupt was echo).
    undelivered: Vec<(LineKind, String)>,

    tts_session: Option<TtsSession>,
    tts_opts: TtsSessionOptions,
    silent_utterances: u32,

    last_turn_at: Option<Instant>,
    nudges_sent: u32,
    silence_at: Option<Instant>,
    max_at: Option<Instant>,
    last_interrupt: Option<(Instant, bool)>,
    disclosure: Disclosure,
    disclosure_redeliver_at: Option<Instant>,
    ending: Option<Ending>,
    finish: Option<EndReason>,
    hangup_on_teardown: bool,
    tearing_down: bool,
    hangup: HangupStatus,

    hints: OutcomeHints,
    counters: SessionCounters,
    latencies: Vec<TurnLatency>,
    opener_ms: Option<u64>,
    dtmf: Vec<DtmfRecord>,
    errors: Vec<SessionErrorRecord>,
}

fn ms_between(from: Option<Instant>, to: Option<Instant>) -> Option<u64> {
    Some(to?.saturating_duration_since(from?).as_millis() as u64)
}

async fn next_stt_event(events: &mut Option<SttEventReceiver>) -> Option<SttEvent> {
    match events {
        Some(rx) => rx.next().await,
        None => std::future::pending().await,
    }
}

impl Controller {
    pub(crate) fn new(
        cfg: Arc<SessionConfig>,
        deps: SessionDeps,
        cancel: CancellationToken,
        out: mpsc::Sender<Outbound>,
        frames_tx: mpsc::UnboundedSender<Frame>,
        internal_tx: mpsc::UnboundedSender<Internal>,
    ) -> Self {
        let started = Instant::now();
        let started_wall = deps.clock.now();
        let tts_opts = TtsSessionOptions {
            voice_id: cfg.voice_id.clone(),
            language: cfg.language.clone(),
            ..TtsSessionOptions::default()
        };
        let disclosure = if cfg.disclosure.required {
            Disclosure::Pending
        } else {
            Disclosure::NotRequired
        };
        Self {
            call_id: Arc::from(cfg.call_id.as_str()),
            recorder: Recorder::new(cfg.recording, cfg.recording_spool.clone(), &cfg.call_id),
            cfg,
            deps,
            cancel,
            out,
            pending_text: VecDeque::new(),
            frames_tx,
            internal_tx,
            tasks: JoinSet::new(),
            pacer: Pacer::new(PacerConfig::default()),
            history: History::new(),
            transcript: Vec::new(),
            epoch: Epoch::default(),
            next_utterance: 1,
            current: None,
            started,
            started_wall,
            connected: None,
            caller_speaking: false,
            hold_since: None,
            quiet_frames: 0,
            vad_run: 0,
            last_voiced: None,
            inbound_framer: Framer::new(FRAME_BYTES),
            v1_turn: V1Turn::default(),
            stt: None,
            stt_events: None,
            stt_generation: 0,
            stt_origin: None,
            stt_batch: BytesMut::new(),
            stt_state: SttState::Connecting,
            stt_failures: 0,
            replay: VecDeque::new(),
            watchdog_voiced: 0,
            echo_texts: Vec::new(),
            undelivered: Vec::new(),
            tts_session: None,
            tts_opts,
            silent_utterances: 0,
            last_turn_at: None,
            nudges_sent: 0,
            silence_at: None,
            max_at: None,
            last_interrupt: None,
            disclosure,
            disclosure_redeliver_at: None,
            ending: None,
            finish: None,
            hangup_on_teardown: false,
            tearing_down: false,
            hangup: HangupStatus::NotRequested,
            hints: OutcomeHints::default(),
            counters: SessionCounters::default(),
            latencies: Vec::new(),
            opener_ms: None,
            dtmf: Vec::new(),
            errors: Vec::new(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Main loop
    // ---------------------------------------------------------------------------------------

    pub(crate) async fn run(
        mut self,
        mut inbound: InboundReceiver,
        mut frames: mpsc::UnboundedReceiver<Frame>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) -> SessionEnd {
        self.start();
        let cancel = self.cancel.clone();
        let reason = loop {
            let now = Instant::now();
            self.on_timers(now);
            self.pump(now);
            if let Some(reason) = self.finish.take() {
                break reason;
            }
            let wake = self.next_wake(now);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => self.stop_requested(EndReason::AgentEnd),
                Some(frame) = frames.recv() => self.on_frame(frame, Instant::now()),
                event = inbound.recv() => self.on_inbound(event, Instant::now()),
                Some(msg) = internal.recv() => self.on_internal(msg, Instant::now()),
                event = next_stt_event(&mut self.stt_events) => match event {
                    Some(event) => self.on_stt(event, Instant::now()),
                    None => self.on_stt(
                        SttEvent::Closed { code: 1006, reason: "event stream ended".into() },
                        Instant::now(),
                    ),
                },
                _ = sleep_until(wake) => {}
            }
        };
        self.teardown(reason, inbound, internal).await
    }

    fn start(&mut self) {
        tracing::info!(call_id = %self.call_id, "voice session started");
        self.connect_stt();
        let tts = self.deps.tts.clone();
        let opts = self.tts_opts.clone();
        let tx = self.internal_tx.clone();
        self.tasks.spawn(async move {
            let result = tts.open_session(opts).await;
            let _ = tx.send(Internal::TtsSession(result));
        });
        // G3/G4/H5: disclosure (if required) then the opener, synthesised right away and held
        // until the carrier is connected.
        let mut lines = Vec::new();
        if self.cfg.disclosure.required && !self.cfg.disclosure.text.trim().is_empty() {
            lines.push((LineKind::Disclosure, self.cfg.disclosure.text.clone()));
        } else if self.cfg.disclosure.required {
            self.disclosure = Disclosure::Delivered;
        }
        if !self.cfg.opener.trim().is_empty() {
            lines.push((LineKind::Opener, self.cfg.opener.clone()));
        }
        if !lines.is_empty() {
            self.spawn_utterance(Script::Lines(lines), false, None);
        }
    }

    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = now + Duration::from_secs(3600);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                wake = wake.min(t);
            }
        };
        if !self.pending_text.is_empty() || self.out.capacity() == 0 {
            consider(Some(now + OUTBOUND_RETRY));
        } else {
            consider(self.pacer.next_due(now));
        }
        if let Some(u) = &self.current {
            if u.fully_sent() {
                // Complete once the last unconfirmed sentence's grace has passed.
                consider(
                    u.sentences
                        .iter()
                        .filter(|s| s.audio_bytes > 0 && !s.notified)
                        .filter_map(|s| s.played_by)
                        .max()
                        .map(|t| t + self.cfg.delivery_grace),
                );
            }
        }
        consider(self.hold_since.map(|t| t + self.cfg.barge_in.hold_cap));
        consider(self.silence_at);
        consider(self.no_turn_deadline());
        consider(self.max_at);
        if let Some(e) = &self.ending {
            if !e.hangup_requested {
                consider(Some(e.force_at));
            }
            consider(e.close_deadline);
        }
        if let SttState::Down { retry_at } = self.stt_state {
            consider(Some(retry_at));
        }
        consider(self.disclosure_redeliver_at);
        wake.max(now)
    }

    // ---------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------

    fn wall(&self, t: Instant) -> DateTime<Utc> {
        let d = t.saturating_duration_since(self.started);
        self.started_wall + chrono::Duration::from_std(d).unwrap_or_default()
    }

    fn observe(&self, frame: &Frame) {
        if let Some(obs) = &self.deps.observer {
            obs.on_frame(frame);
        }
    }

    fn record_error(&mut self, source: ErrorSource, message: String, now: Instant) {
        let source = match source {
            ErrorSource::Stt => "stt",
            ErrorSource::Llm => "llm",
            ErrorSource::Tts => "tts",
            ErrorSource::Conversion => "conversion",
            ErrorSource::Carrier => "carrier",
        };
        tracing::warn!(call_id = %self.call_id, epoch = self.epoch.0, source, %message, "session error");
        if self.errors.len() >= MAX_ERROR_RECORDS {
            return; // a flapping provider must not grow the report without bound
        }
        self.errors.push(SessionErrorRecord {
            at: self.wall(now),
            source,
            message,
        });
    }

    fn send_text(&mut self, text: String) {
        if !self.pending_text.is_empty() {
            self.pending_text.push_back(text);
            return;
        }
        match self.out.try_send(Outbound::Text(text)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Outbound::Text(text))) => {
                self.pending_text.push_back(text)
            }
            Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => self.outbound_closed(),
        }
    }

    fn outbound_closed(&mut self) {
        if self.finish.is_none() {
            let reason = self
                .ending
                .as_ref()
                .map_or(EndReason::CallerHangup, |e| e.reason);
            self.finish = Some(reason);
        }
    }

    /// "While the agent is audible": an utterance is being sent, or the far end may still be
    /// playing (`now < playout_end + 200 ms`) — G8, G10.
    fn agent_audible(&self, now: Instant) -> bool {
        if self
            .pacer
            .far_end_playing(now, self.cfg.barge_in.audible_grace)
        {
            return true;
        }
        self.current.as_ref().is_some_and(|u| {
            u.first_frame_at.is_some() && (u.verdict.is_none() || !self.pacer.is_idle())
        })
    }

    fn no_turn_deadline(&self) -> Option<Instant> {
        if self.ending.is_some() {
            return None;
        }
        match self.last_turn_at {
            Some(t) => Some(t + self.cfg.silence.no_turn_later),
            None => self
                .connected
                .map(|c| c + self.cfg.silence.no_turn_after_connect),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Utterances
    // ---------------------------------------------------------------------------------------

    fn spawn_utterance(
        &mut self,
        script: Script,
        is_reply: bool,
        latency: Option<LatencyDraft>,
    ) -> UtteranceId {
        if self.current.is_some() {
            self.stop_current(Instant::now());
        }
        let id = UtteranceId(self.next_utterance);
        self.next_utterance += 1;
        let carries_disclosure = match &script {
            Script::Lines(lines) => lines.iter().any(|(k, _)| *k == LineKind::Disclosure),
            Script::Reply { prefix, .. } => prefix.iter().any(|(k, _)| *k == LineKind::Disclosure),
        };
        if self.tts_session.as_ref().is_some_and(TtsSession::is_closed) {
            self.tts_session = None;
            self.open_tts_session();
        }
        let cancel = self.cancel.child_token();
        let job = UtteranceJob {
            epoch: self.epoch,
            id,
            call_id: self.call_id.clone(),
            script,
            llm: self.deps.llm.clone(),
            tts: self.deps.tts.clone(),
            tts_session: self.tts_session.clone(),
            tts_opts: self.tts_opts.clone(),
            out: self.frames_tx.clone(),
            cancel: cancel.clone(),
            max_sentences: self.cfg.response_max_sentences,
            first_token_timeout: self.cfg.llm.first_token_timeout,
            inter_token_timeout: self.cfg.llm.inter_token_timeout,
            fallbacks: Fallbacks {
                recovery: self.cfg.lines.recovery.clone(),
                apology: self.cfg.lines.apology.clone(),
            },
        };
        self.tasks.spawn(utterance::run(job));
        self.current = Some(Utterance {
            id,
            cancel,
            sentences: Vec::new(),
            verdict: None,
            first_frame_at: None,
            is_reply,
            carries_disclosure,
            end_after: false,
            latency: latency.map(Box::new),
        });
        self.silence_at = None;
        id
    }

    fn spawn_lines(&mut self, lines: Vec<(LineKind, String)>) -> UtteranceId {
        self.spawn_utterance(Script::Lines(lines), false, None)
    }

    fn open_tts_session(&mut self) {
        let tts = self.deps.tts.clone();
        let opts = self.tts_opts.clone();
        let tx = self.internal_tx.clone();
        self.tasks.spawn(async move {
            let result = tts.open_session(opts).await;
            let _ = tx.send(Internal::TtsSession(result));
        });
    }

    fn build_request(&self) -> ChatRequest {
        let llm = &self.cfg.llm;
        let mut req = ChatRequest::new(
            self.history
                .request_messages(&self.cfg.system_prompt, llm.history_messages),
        );
        if llm.tools {
            req.tools = ToolDefinition::agent_tools();
        }
        req.model = llm.model.clone();
        req.temperature = llm.temperature;
        req.max_tokens = llm.max_tokens;
        req.deadlines = LlmDeadlines {
            first_token: Some(llm.first_token_timeout),
            inter_token: Some(llm.inter_token_timeout),
        };
        req
    }

    /// Stops the current utterance for a reason other than the caller (goodbye, teardown).
    fn stop_current(&mut self, now: Instant) {
        let Some(u) = self.current.take() else { return };
        u.cancel.cancel();
        let far_end = self
            .pacer
            .far_end_playing(now, self.cfg.barge_in.audible_grace);
        self.epoch = self.epoch.next();
        self.pacer.clear(now);
        if far_end && u.first_frame_at.is_some() {
            self.send_text(CLEAR_ACTION.to_string());
            self.counters.clears_sent += 1;
        }
        self.recorder.clear_agent(now);
        self.commit(u, now, CommitKind::Stopped);
    }

    /// The interrupt operation (G9). Returns whether it counted as a barge-in.
    fn interrupt(&mut self, now: Instant) -> bool {
        if let Some((at, verdict)) = self.last_interrupt {
            if now.saturating_duration_since(at) < self.cfg.barge_in.duplicate_window {
                return verdict;
            }
        }
        if !self.agent_audible(now) {
            self.counters.interrupts_not_audible += 1;
            self.last_interrupt = Some((now, false));
            return false;
        }
        let interrupted = self.epoch;
        let far_end = self
            .pacer
            .far_end_playing(now, self.cfg.barge_in.audible_grace);
        self.epoch = self.epoch.next();
        let cleared = self.pacer.clear(now);
        if far_end {
            self.send_text(CLEAR_ACTION.to_string());
            self.counters.clears_sent += 1;
        }
        self.recorder.clear_agent(now);
        self.counters.barge_ins += 1;
        tracing::info!(
            call_id = %self.call_id,
            epoch = interrupted.0,
            dropped_queued = cleared.dropped_queued,
            dropped_scheduled = cleared.dropped_scheduled,
            "barge-in"
        );
        if let Some(u) = self.current.take() {
            u.cancel.cancel();
            self.commit(u, now, CommitKind::Interrupted);
        }
        self.last_interrupt = Some((now, true));
        self.observe(&Frame::Interruption {
            epoch: interrupted,
            audible: true,
        });
        true
    }

    /// Commits what the caller heard of `u` to history and transcript (G11, G14, H6).
    fn commit(&mut self, u: Utterance, now: Instant, how: CommitKind) {
        let delivered: Vec<&SentenceState> = u
            .sentences
            .iter()
            .filter(|s| match how {
                CommitKind::Completed => s.audio_bytes > 0,
                _ => s.delivered_by(now),
            })
            .collect();
        let cut = how != CommitKind::Completed;
        let spoken: Vec<&str> = u
            .sentences
            .iter()
            .filter(|s| s.audio_bytes > 0 || s.played_by.is_some())
            .map(|s| s.text.as_str())
            .collect();
        if !spoken.is_empty() {
            self.echo_texts.push(spoken.join(" "));
        }
        if how == CommitKind::Interrupted {
            self.undelivered = u
                .sentences
                .iter()
                .filter(|s| !s.delivered_by(now))
                .map(|s| (s.kind, s.text.clone()))
                .collect();
        }

        if delivered.is_empty() {
            if u.is_reply {
                self.history.drop_unanswered_user();
            }
        } else {
            let text = delivered
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            if how == CommitKind::Interrupted {
                self.history
                    .push_assistant(&format!("{text} [interrupted by caller]"));
            } else {
                self.history.push_assistant(&text);
            }
            // One transcript turn per run of same-kind lines (disclosure, opener, …).
            let at = self.wall(u.first_frame_at.unwrap_or(now));
            let mut groups: Vec<(LineKind, Vec<&str>)> = Vec::new();
            for s in &delivered {
                match groups.last_mut() {
                    Some((kind, texts)) if *kind == s.kind => texts.push(&s.text),
                    _ => groups.push((s.kind, vec![&s.text])),
                }
            }
            let n = groups.len();
            for (i, (_, texts)) in groups.into_iter().enumerate() {
                self.transcript.push(TranscriptTurn {
                    role: TurnRole::Assistant,
                    content: texts.join(" "),
                    timestamp: at,
                    confidence: None,
                    interrupted: (cut && i + 1 == n).then_some(true),
                });
            }
        }

        if u.carries_disclosure {
            let expected = split_sentences(&self.cfg.disclosure.text)
                .iter()
                .filter(|s| crate::text::has_speakable(s))
                .count();
            let got = delivered
                .iter()
                .filter(|s| s.kind == LineKind::Disclosure)
                .count();
            self.disclosure = if got >= expected && expected > 0 {
                Disclosure::Delivered
            } else if self.disclosure == Disclosure::Redelivering {
                Disclosure::Failed
            } else {
                Disclosure::NeedsRedelivery
            };
            if self.disclosure == Disclosure::NeedsRedelivery && !self.caller_speaking {
                self.disclosure_redeliver_at = Some(now + DISCLOSURE_REDELIVER_AFTER);
            }
        }

        if let Some(draft) = u.latency.as_deref() {
            if draft.first_frame.is_some() {
                let speech_end = draft.speech_end.or(draft.end_of_turn);
                self.latencies.push(TurnLatency {
                    speech_end: self.wall(speech_end.unwrap_or(now)),
                    endpoint_delay_ms: ms_between(speech_end, draft.end_of_turn),
                    stt_final_ms: ms_between(speech_end, draft.final_text),
                    llm_ttft_ms: ms_between(draft.llm_request, draft.llm_first),
                    first_sentence_ms: ms_between(draft.llm_request, draft.first_sentence),
                    tts_ttfb_ms: ms_between(draft.tts_request, draft.tts_first),
                    first_frame_ms: ms_between(speech_end, draft.first_frame),
                    speculative: false,
                });
            }
        }

        if how == CommitKind::Completed {
            let had_sentences = !u.sentences.is_empty();
            let had_audio = u.sentences.iter().any(|s| s.audio_bytes > 0);
            if had_sentences && !had_audio {
                self.silent_utterances += 1;
                if self.silent_utterances >= MAX_SILENT_UTTERANCES && self.ending.is_none() {
                    // G17: two utterances in a row with no audio → hang up, agent_error.
                    self.hints.agent_error = true;
                    self.record_error(
                        ErrorSource::Tts,
                        "no TTS audio for two consecutive utterances; ending the call".into(),
                        now,
                    );
                    self.begin_end(EndReason::Error, None, now);
                    self.hang_up(now);
                    return;
                }
            } else if had_audio {
                self.silent_utterances = 0;
            }
        }

        // The last line was delivered, or cut by the caller: the decision to end stands (G25).
        if u.end_after && how != CommitKind::Stopped {
            self.hang_up(now);
            return;
        }
        if how == CommitKind::Completed && self.ending.is_none() {
            self.silence_at = Some(now + self.cfg.silence.nudge_after);
        }
    }

    /// Settles the current utterance before a new caller turn.
    fn settle_current(&mut self, now: Instant) {
        let Some(u) = &self.current else { return };
        if self.agent_audible(now) {
            self.last_interrupt = None; // a new accepted turn always gets a fresh verdict
            self.interrupt(now);
        } else if u.first_frame_at.is_none() {
            // G12/G14: cancelled before any audio; its user text merges into the new turn.
            let Some(u) = self.current.take() else { return };
            u.cancel.cancel();
            self.pacer.clear(now);
            self.counters.interrupted_before_audio += 1;
            self.commit(u, now, CommitKind::Stopped);
        } else if let Some(u) = self.current.take() {
            // Fully played; confirmations may still be in flight.
            u.cancel.cancel();
            let how = if u.fully_sent() {
                CommitKind::Completed
            } else {
                CommitKind::Stopped
            };
            self.commit(u, now, how);
        }
    }

    fn check_complete(&mut self, now: Instant) {
        let Some(u) = &self.current else { return };
        if !u.fully_sent() {
            return;
        }
        let grace = self.cfg.delivery_grace;
        let pending = u.sentences.iter().any(|s| {
            s.audio_bytes > 0 && !s.notified && s.played_by.is_some_and(|t| now < t + grace)
        });
        if pending {
            return;
        }
        let Some(mut u) = self.current.take() else {
            return;
        };
        // The agent decided to end but said nothing: say goodbye first (G25).
        let goodbye_first = u.end_after
            && u.sentences.is_empty()
            && matches!(u.verdict, Some(UtteranceVerdict::ActionOnly));
        if goodbye_first {
            u.end_after = false;
        }
        self.commit(u, now, CommitKind::Completed);
        if goodbye_first && self.ending.as_ref().is_some_and(|e| !e.hangup_requested) {
            self.spawn_lines(vec![(LineKind::Goodbye, self.cfg.lines.goodbye.clone())]);
            if let Some(cur) = self.current.as_mut() {
                cur.end_after = true;
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Ending
    // ---------------------------------------------------------------------------------------

    /// Decides to end the call (G25). With a `line`, whatever is playing stops and the line is
    /// spoken; without one, the current utterance becomes the last (or a goodbye is spoken if
    /// nothing is playing). The hang-up follows delivery.
    fn begin_end(&mut self, reason: EndReason, line: Option<String>, now: Instant) {
        if self.ending.is_some() {
            return;
        }
        tracing::info!(call_id = %self.call_id, reason = reason.as_str(), "agent ends the call");
        self.ending = Some(Ending {
            reason,
            force_at: now + END_FORCE_AFTER,
            hangup_requested: false,
            close_deadline: None,
        });
        self.silence_at = None;
        match line {
            Some(text) => {
                self.stop_current(now);
                self.spawn_lines(vec![(LineKind::Goodbye, text)]);
                if let Some(u) = self.current.as_mut() {
                    u.end_after = true;
                }
            }
            None => match self.current.as_mut() {
                Some(u) => u.end_after = true,
                None => {
                    // Nothing playing and no line: the end was decided silently (G17/G20) or
                    // the model ended after its line was already delivered.
                }
            },
        }
    }

    /// Issues the carrier hang-up once (G25); the session ends when the socket closes.
    fn hang_up(&mut self, now: Instant) {
        if self.finish.is_some() {
            return;
        }
        if self.ending.is_none() {
            self.ending = Some(Ending {
                reason: EndReason::AgentEnd,
                force_at: now,
                hangup_requested: false,
                close_deadline: None,
            });
        }
        let Some(ending) = self.ending.as_mut() else {
            return;
        };
        if ending.hangup_requested {
            return;
        }
        ending.hangup_requested = true;
        let reason = ending.reason;
        match self.cfg.carrier_call.clone() {
            None => {
                // A test call without a carrier: nothing to hang up, the session just ends.
                self.finish = Some(reason);
            }
            Some(call) => {
                ending.close_deadline = Some(now + self.cfg.hangup_close_grace);
                let telephony = self.deps.telephony.clone();
                let tx = self.internal_tx.clone();
                self.tasks.spawn(async move {
                    let result = telephony.hang_up(&call).await;
                    let _ = tx.send(Internal::HangUp(result));
                });
            }
        }
    }

    /// The server (or process shutdown) ends the call: hang up during teardown and persist.
    fn stop_requested(&mut self, reason: EndReason) {
        if self.finish.is_some() {
            return;
        }
        let reason = self.ending.as_ref().map_or(reason, |e| e.reason);
        let already = self.ending.as_ref().is_some_and(|e| e.hangup_requested);
        self.hangup_on_teardown = !already && self.cfg.carrier_call.is_some();
        self.finish = Some(reason);
    }

    // ---------------------------------------------------------------------------------------
    // Timers and output
    // ---------------------------------------------------------------------------------------

    fn on_timers(&mut self, now: Instant) {
        self.check_complete(now);

        if let Some(at) = self.silence_at {
            if now >= at {
                self.silence_at = None;
                self.silence_due(now);
            }
        }
        if let Some(deadline) = self.no_turn_deadline() {
            if now >= deadline {
                self.begin_end(
                    EndReason::NoResponse,
                    Some(self.cfg.lines.goodbye.clone()),
                    now,
                );
            }
        }
        if self.max_at.is_some_and(|t| now >= t) {
            self.max_at = None;
            if self.ending.is_none() {
                self.begin_end(
                    EndReason::MaxDuration,
                    Some(self.cfg.lines.goodbye.clone()),
                    now,
                );
            }
        }
        if let Some(e) = &self.ending {
            if !e.hangup_requested && now >= e.force_at {
                self.hang_up(now);
            } else if e.close_deadline.is_some_and(|d| now >= d) && self.finish.is_none() {
                self.finish = Some(e.reason);
            }
        }
        if let SttState::Down { retry_at } = self.stt_state {
            if now >= retry_at {
                self.connect_stt();
            }
        }
        if self.disclosure_redeliver_at.is_some_and(|t| now >= t) {
            self.disclosure_redeliver_at = None;
            if self.disclosure == Disclosure::NeedsRedelivery
                && self.current.is_none()
                && self.ending.is_none()
                && !self.caller_speaking
            {
                self.disclosure = Disclosure::Redelivering;
                self.spawn_lines(vec![(
                    LineKind::Disclosure,
                    self.cfg.disclosure.text.clone(),
                )]);
            }
        }
        while let Some(res) = self.tasks.try_join_next() {
            if let Err(e) = res {
                if e.is_panic() {
                    self.record_error(ErrorSource::Llm, format!("session task panicked: {e}"), now);
                }
            }
        }
    }

    /// G23: the agent finished speaking and the caller has been quiet.
    fn silence_due(&mut self, now: Instant) {
        if self.ending.is_some() || self.current.is_some() {
            return;
        }
        let silence = &self.cfg.silence;
        if self.caller_speaking {
            self.silence_at = Some(now + Duration::from_secs(1));
            return;
        }
        // "7 s without caller speech": voiced audio inside the window restarts it (this also
        // covers the 2 s suppression rule).
        if let Some(v) = self.last_voiced {
            let window = silence.nudge_after.max(silence.voiced_suppress);
            if now < v + window {
                self.silence_at = Some(v + window);
                return;
            }
        }
        if self.nudges_sent < silence.max_nudges {
            self.nudges_sent += 1;
            self.counters.nudges += 1;
            self.spawn_lines(vec![(LineKind::Nudge, silence.nudge_text.clone())]);
        } else {
            self.begin_end(
                EndReason::NoResponse,
                Some(self.cfg.lines.goodbye.clone()),
                now,
            );
        }
    }

    /// Writes whatever is due to the carrier.
    fn pump(&mut self, now: Instant) {
        while let Some(text) = self.pending_text.pop_front() {
            match self.out.try_send(Outbound::Text(text)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Outbound::Text(text))) => {
                    self.pending_text.push_front(text);
                    return;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.outbound_closed();
                    return;
                }
            }
        }
        self.update_hold(now);
        while self.out.capacity() > 0 {
            match self.pacer.poll(now) {
                None => break,
                Some(Paced::Audio {
                    frame,
                    tag,
                    play_at,
                }) => {
                    self.recorder.agent_frame(play_at, &frame);
                    self.counters.outbound_frames += 1;
                    if let Err(mpsc::error::TrySendError::Closed(_)) =
                        self.out.try_send(Outbound::Audio(frame))
                    {
                        self.outbound_closed();
                        return;
                    }
                    self.on_frame_sent(tag, now);
                }
                Some(Paced::Mark { tag, played_by }) => {
                    if let Some(u) = self.current.as_mut() {
                        if u.id == tag.utterance {
                            if let Some(s) = u.sentences.get_mut(tag.sentence as usize) {
                                s.played_by = Some(played_by);
                            }
                        }
                    }
                    let payload = sentence_payload(&tag.utterance.to_string(), tag.sentence);
                    self.send_text(notify_action(&payload));
                }
            }
        }
    }

    fn on_frame_sent(&mut self, tag: Tag, now: Instant) {
        let Some(u) = self.current.as_mut() else {
            return;
        };
        if u.id != tag.utterance || u.first_frame_at.is_some() {
            return;
        }
        u.first_frame_at = Some(now);
        if let Some(d) = u.latency.as_deref_mut() {
            d.first_frame = Some(now);
        }
        self.hold_since = None;
        if self.opener_ms.is_none() {
            self.opener_ms = ms_between(self.connected, Some(now));
        }
    }

    /// G21 hold and G3 pre-connect hold.
    fn update_hold(&mut self, now: Instant) {
        let waiting_to_start = self
            .current
            .as_ref()
            .is_some_and(|u| u.first_frame_at.is_none());
        let mut hold = self.connected.is_none();
        if self.caller_speaking && waiting_to_start && !self.pacer.is_idle() {
            let since = *self.hold_since.get_or_insert(now);
            if now < since + self.cfg.barge_in.hold_cap {
                hold = true;
            }
        } else if !self.caller_speaking {
            if let Some(since) = self.hold_since.take() {
                tracing::debug!(
                    call_id = %self.call_id,
                    held_ms = now.saturating_duration_since(since).as_millis() as u64,
                    "agent audio released: caller stopped speaking"
                );
            }
        }
        self.pacer.set_hold(hold);
    }

    // ---------------------------------------------------------------------------------------
    // Inbound
    // ---------------------------------------------------------------------------------------

    fn mark_connected(&mut self, now: Instant) {
        if self.connected.is_some() {
            return;
        }
        self.connected = Some(now);
        self.recorder.start(now);
        self.max_at = Some(now + self.cfg.max_call_duration());
    }

    fn on_inbound(&mut self, event: Inbound, now: Instant) {
        match event {
            Inbound::Connected { sample_rate } => {
                self.mark_connected(now);
                if sample_rate != SAMPLE_RATE {
                    self.record_error(
                        ErrorSource::Conversion,
                        format!(
                            "media at {sample_rate} Hz is not supported; treating it as 16 kHz"
                        ),
                        now,
                    );
                    self.counters.conversion_errors += 1;
                }
            }
            Inbound::Audio(frame) => {
                self.mark_connected(now);
                self.on_audio(frame, now);
            }
            Inbound::BadAudio(rejection) => {
                self.counters.bad_inbound_chunks += 1;
                tracing::debug!(call_id = %self.call_id, %rejection, "inbound audio refused");
            }
            Inbound::Dtmf { digit, duration_ms } => {
                self.counters.dtmf_digits += 1;
                let at = self.wall(now);
                self.dtmf.push(DtmfRecord {
                    digit,
                    at,
                    duration_ms,
                });
            }
            Inbound::Cleared => {
                tracing::debug!(call_id = %self.call_id, "carrier confirmed clear");
            }
            Inbound::Notify(payload) => {
                if let Some((utt, sentence)) = parse_sentence_payload(&payload) {
                    if let Some(u) = self.current.as_mut() {
                        if UtteranceId::parse(&utt) == Some(u.id) {
                            if let Some(s) = u.sentences.get_mut(sentence as usize) {
                                s.notified = true;
                            }
                        }
                    }
                }
            }
            Inbound::Malformed(message) => {
                self.counters.bad_text_messages += 1;
                tracing::warn!(call_id = %self.call_id, %message, "unparsable media socket text");
            }
            Inbound::UnknownEvent(event) => {
                tracing::debug!(call_id = %self.call_id, %event, "unknown media socket event");
            }
            Inbound::Closed => {
                if self.finish.is_none() {
                    let reason = self
                        .ending
                        .as_ref()
                        .map_or(EndReason::CallerHangup, |e| e.reason);
                    self.finish = Some(reason);
                }
            }
            Inbound::Stop(reason) => self.stop_requested(reason),
        }
    }

    fn on_audio(&mut self, frame: Bytes, now: Instant) {
        self.counters.inbound_frames += 1;
        if frame.len() == FRAME_BYTES && self.inbound_framer.pending_len() == 0 {
            self.on_caller_frame(frame, now);
            return;
        }
        self.counters.bad_inbound_chunks += 1;
        self.inbound_framer.push(&frame);
        while let Some(f) = self.inbound_framer.next_frame() {
            self.on_caller_frame(f, now);
        }
    }

    fn on_caller_frame(&mut self, frame: Bytes, now: Instant) {
        let rms = rms_s16le(&frame);
        self.recorder.caller_frame(now, &frame);
        // Caller audio goes to the STT in 80 ms batches, gathered here so the provider task
        // wakes once per batch. While the caller speaks and shortly after, every frame goes at
        // once instead: the silence that ends a turn must not wait in a batch.
        let turn_may_end = rms >= VOICED_RMS_THRESHOLD
            || self
                .last_voiced
                .is_some_and(|t| now.saturating_duration_since(t) <= STT_EAGER_WINDOW);
        if let Some(stt) = &self.stt {
            if self.stt_origin.is_none() {
                // Providers count stream time from the first audio byte they receive; that
                // frame arrived at `now` holding the 20 ms of audio that ended at `now`.
                self.stt_origin = Some(now.checked_sub(FRAME_DURATION).unwrap_or(now));
            }
            self.stt_batch.extend_from_slice(&frame);
            if turn_may_end || self.stt_batch.len() >= STT_BATCH_BYTES {
                let chunk = self.stt_batch.split().freeze();
                let sent = if turn_may_end {
                    stt.send_audio_now(chunk)
                } else {
                    stt.send_audio(chunk)
                };
                if sent.is_err() {
                    tracing::debug!(call_id = %self.call_id, "STT stream gone; audio kept for replay");
                }
            }
        }
        if self.replay.len() >= REPLAY_FRAMES {
            self.replay.pop_front();
        }
        self.replay.push_back(frame.clone());

        let voiced = rms >= VOICED_RMS_THRESHOLD;
        let audible = self.agent_audible(now);
        if voiced {
            self.last_voiced = Some(now);
            self.quiet_frames = 0;
        } else {
            self.quiet_frames = self.quiet_frames.saturating_add(1);
        }

        // Local VAD (G8): voiced and not explainable as echo of the agent.
        let loud_enough = voiced
            && (!audible || rms >= self.cfg.barge_in.echo_ratio * self.pacer.agent_rms_at(now));
        self.vad_run = if loud_enough { self.vad_run + 1 } else { 0 };
        let vad_frames =
            (self.cfg.barge_in.vad_min.as_millis() / FRAME_DURATION.as_millis()).max(1) as u32;
        if self.vad_run == vad_frames {
            if audible {
                self.on_speech_start(SpeechSource::Vad, now);
            } else if !self.caller_speaking {
                self.caller_speaking = true;
            }
        }

        // G21: 700 ms of quiet clears the caller-speaking flag.
        let quiet_frames =
            (self.cfg.barge_in.quiet_release.as_millis() / FRAME_DURATION.as_millis()) as u32;
        if self.caller_speaking && self.quiet_frames >= quiet_frames {
            self.caller_speaking = false;
            tracing::debug!(call_id = %self.call_id, "caller-speaking flag cleared by quiet");
            self.caller_quiet(now);
        }

        // G19 watchdog: voiced caller audio nobody answers.
        let after_agent = self
            .pacer
            .playout_end()
            .is_none_or(|end| now >= end + WATCHDOG_AFTER_AGENT);
        if voiced && !audible && after_agent && self.stt_state == SttState::Up {
            self.watchdog_voiced += 1;
            if self.watchdog_voiced >= WATCHDOG_FRAMES {
                self.watchdog_voiced = 0;
                self.counters.watchdog_trips += 1;
                self.record_error(
                    ErrorSource::Stt,
                    "STT watchdog: 6 s of voiced audio without any STT event".into(),
                    now,
                );
                if let Some(stt) = self.stt.take() {
                    let _ = stt.close();
                }
                self.stt_events = None;
                self.stt_down(now);
            }
        }
        if self.deps.observer.is_some() {
            self.observe(&Frame::InputAudio { audio: frame, rms });
        }
    }

    /// The caller-speaking flag just cleared.
    fn caller_quiet(&mut self, now: Instant) {
        if self.disclosure == Disclosure::NeedsRedelivery {
            self.disclosure_redeliver_at = Some(now + DISCLOSURE_REDELIVER_AFTER);
        }
        self.observe(&Frame::UserStoppedSpeaking);
    }

    fn on_speech_start(&mut self, source: SpeechSource, now: Instant) {
        if self.tearing_down {
            return;
        }
        self.caller_speaking = true;
        self.quiet_frames = 0;
        self.disclosure_redeliver_at = None;
        self.observe(&Frame::UserStartedSpeaking { source });
        if self.agent_audible(now) {
            self.interrupt(now);
        }
    }

    // ---------------------------------------------------------------------------------------
    // STT
    // ---------------------------------------------------------------------------------------

    fn connect_stt(&mut self) {
        self.stt_generation += 1;
        self.stt_state = SttState::Connecting;
        let generation = self.stt_generation;
        let stt = self.deps.stt.clone();
        let opts = SttOptions {
            language: self.cfg.language.clone(),
            keyterms: self.cfg.keyterms.clone(),
            ..SttOptions::default()
        };
        let tx = self.internal_tx.clone();
        self.tasks.spawn(async move {
            let result = match timeout(STT_CONNECT_GUARD, stt.connect(opts)).await {
                Ok(r) => r,
                Err(_) => Err(SttError::Timeout {
                    after_ms: STT_CONNECT_GUARD.as_millis() as u64,
                }),
            };
            let _ = tx.send(Internal::SttConnected { generation, result });
        });
    }

    /// The stream failed: retry at 0.5/1/2 s; after three failed recoveries give up (G20).
    fn stt_down(&mut self, now: Instant) {
        self.stt = None;
        self.stt_batch.clear();
        self.stt_events = None;
        if self.stt_state == SttState::Failed || self.finish.is_some() || self.tearing_down {
            return;
        }
        self.stt_failures += 1;
        if self.stt_failures as usize > STT_RETRY_DELAYS.len() {
            self.stt_state = SttState::Failed;
            self.hints.agent_error = true;
            self.record_error(
                ErrorSource::Stt,
                "speech recognition could not be recovered; ending the call".into(),
                now,
            );
            self.begin_end(
                EndReason::Error,
                Some(self.cfg.lines.technical_trouble.clone()),
                now,
            );
            return;
        }
        self.counters.stt_reconnects += 1;
        self.stt_state = SttState::Down {
            retry_at: now + STT_RETRY_DELAYS[self.stt_failures as usize - 1],
        };
    }

    fn on_internal(&mut self, msg: Internal, now: Instant) {
        match msg {
            Internal::SttConnected { generation, result } => {
                if generation != self.stt_generation || self.finish.is_some() {
                    if let Ok(stream) = result {
                        let _ = stream.audio.close();
                    }
                    return;
                }
                match result {
                    Ok(stream) => {
                        // Replay the caller audio since the last end of turn (G19).
                        let replayed = self.replay.len() as u32;
                        self.stt_origin = (replayed > 0)
                            .then(|| now.checked_sub(FRAME_DURATION * replayed).unwrap_or(now));
                        for f in &self.replay {
                            let _ = stream.audio.send_audio(f.clone());
                        }
                        self.stt_batch.clear();
                        self.stt = Some(stream.audio);
                        self.stt_events = Some(stream.events);
                        self.stt_state = SttState::Up;
                        self.watchdog_voiced = 0;
                        tracing::info!(call_id = %self.call_id, provider = %stream.info.provider, "STT connected");
                    }
                    Err(e) => {
                        self.counters.stt_errors += 1;
                        self.record_error(ErrorSource::Stt, e.to_string(), now);
                        self.stt_down(now);
                    }
                }
            }
            Internal::TtsSession(result) => match result {
                Ok(session) => self.tts_session = Some(session),
                Err(TtsError::Unsupported) => {}
                Err(e) => {
                    self.counters.tts_errors += 1;
                    self.record_error(ErrorSource::Tts, format!("TTS session: {e}"), now);
                }
            },
            Internal::HangUp(result) => match result {
                Ok(()) => self.hangup = HangupStatus::Done,
                Err(e) => {
                    self.record_error(ErrorSource::Carrier, format!("hang-up failed: {e}"), now);
                    self.hangup = HangupStatus::Failed(e.to_string());
                    if self.finish.is_none() {
                        let reason = self.ending.as_ref().map_or(EndReason::Error, |e| e.reason);
                        self.finish = Some(reason);
                    }
                }
            },
        }
    }

    /// Maps stream audio seconds to an instant (J1 `speech_end`).
    fn stream_instant(&self, seconds: Option<f64>, now: Instant) -> Option<Instant> {
        let origin = self.stt_origin?;
        let secs = seconds?;
        if !secs.is_finite() || secs <= 0.0 {
            return None;
        }
        Some((origin + Duration::from_secs_f64(secs)).min(now))
    }

    fn on_stt(&mut self, event: SttEvent, now: Instant) {
        self.watchdog_voiced = 0;
        match event {
            SttEvent::Connected { .. } | SttEvent::Metadata { .. } => {}
            SttEvent::SpeechStarted { .. } => {
                self.on_speech_start(SpeechSource::SttSpeechStarted, now)
            }
            SttEvent::StartOfTurn { .. } => {
                self.stt_failures = 0;
                self.on_speech_start(SpeechSource::SttStartOfTurn, now)
            }
            SttEvent::Interim { text } => {
                if !text.trim().is_empty() {
                    self.stt_failures = 0;
                    self.observe(&Frame::InterimTranscript { text });
                }
            }
            SttEvent::Final {
                text,
                confidence,
                audio_start,
                audio_end,
                speech_final,
                ..
            } => {
                self.stt_failures = 0;
                if !text.trim().is_empty() {
                    let t = &mut self.v1_turn;
                    t.audio_start.get_or_insert(audio_start);
                    if !t.text.is_empty() {
                        t.text.push(' ');
                    }
                    t.text.push_str(text.trim());
                    t.confidence_sum += confidence;
                    t.segments += 1;
                    t.audio_end = Some(audio_end);
                    t.last_final_at = Some(now);
                }
                if speech_final && !self.v1_turn.text.is_empty() {
                    self.end_v1_turn(now);
                }
            }
            SttEvent::UtteranceEnd { .. } => {
                if !self.v1_turn.text.is_empty() {
                    self.end_v1_turn(now);
                }
            }
            SttEvent::EagerEndOfTurn { .. } | SttEvent::TurnResumed { .. } => {
                // G12 speculative replies are not implemented: wait for EndOfTurn.
            }
            SttEvent::EndOfTurn {
                text,
                confidence,
                audio_window_start,
                audio_window_end,
                ..
            } => {
                self.stt_failures = 0;
                self.caller_speaking = false;
                let speech_end = self
                    .stream_instant(Some(audio_window_end), now)
                    .or(self.last_voiced);
                let speech_start = self.stream_instant(Some(audio_window_start), now);
                self.on_caller_turn(
                    CallerTurn {
                        text: &text,
                        confidence: Some(confidence),
                        speech_start,
                        speech_end,
                        final_at: now,
                    },
                    now,
                );
            }
            SttEvent::Error { message, fatal } => {
                self.counters.stt_errors += 1;
                self.record_error(
                    ErrorSource::Stt,
                    if fatal {
                        format!("fatal: {message}")
                    } else {
                        message
                    },
                    now,
                );
            }
            SttEvent::Closed { code, reason } => {
                self.stt_events = None;
                self.stt = None;
                self.stt_batch.clear();
                if self.finish.is_none() && self.stt_state != SttState::Failed {
                    tracing::warn!(call_id = %self.call_id, code, %reason, "STT stream closed");
                    self.stt_down(now);
                }
            }
        }
    }

    fn end_v1_turn(&mut self, now: Instant) {
        let turn = std::mem::take(&mut self.v1_turn);
        self.caller_speaking = false;
        let confidence = (turn.segments > 0).then(|| turn.confidence_sum / turn.segments as f32);
        let speech_end = self
            .stream_instant(turn.audio_end, now)
            .or(self.last_voiced);
        let final_at = turn.last_final_at.unwrap_or(now);
        let speech_start = self.stream_instant(turn.audio_start, now);
        self.on_caller_turn(
            CallerTurn {
                text: &turn.text,
                confidence,
                speech_start,
                speech_end,
                final_at,
            },
            now,
        );
    }

    /// G27: a transcript is self-echo only if it overlaps agent playback (+1.5 s), has ≥ 3
    /// words and ≥ 80 % of its words appear, in order, in one agent utterance spoken since the
    /// caller's last accepted turn.
    fn is_echo(&self, text: &str, speech_start: Instant) -> bool {
        let words = normalised_words(text);
        if words.len() < ECHO_MIN_WORDS {
            return false;
        }
        let overlaps = self
            .pacer
            .playout_end()
            .is_some_and(|end| speech_start <= end + ECHO_GRACE);
        if !overlaps {
            return false;
        }
        let current = self.current.as_ref().map(|u| {
            u.sentences
                .iter()
                .filter(|s| s.audio_bytes > 0 || s.ended)
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        });
        current
            .iter()
            .chain(self.echo_texts.iter().rev())
            .any(|agent| {
                let agent = normalised_words(agent);
                let mut it = agent.iter();
                let matched = words
                    .iter()
                    .filter(|w| it.by_ref().any(|a| a == *w))
                    .count();
                matched * 5 >= words.len() * 4
            })
    }

    /// An echo transcript: no turn; if it was what interrupted the agent, say the rest again.
    fn on_echo(&mut self, now: Instant) {
        self.counters.echo_suppressed += 1;
        tracing::info!(call_id = %self.call_id, "self-echo transcript suppressed");
        self.caller_quiet(now);
        if self.current.is_none() && self.ending.is_none() && !self.undelivered.is_empty() {
            self.counters.echo_interrupts += 1;
            let lines = std::mem::take(&mut self.undelivered);
            self.spawn_lines(lines);
        }
    }

    /// An end-of-turn transcript arrived.
    fn on_caller_turn(&mut self, turn: CallerTurn<'_>, now: Instant) {
        let CallerTurn {
            text,
            confidence,
            speech_start,
            speech_end,
            final_at,
        } = turn;
        let text = text.trim();
        if text.is_empty() || is_disfluency_only(text) {
            self.caller_quiet(now);
            return;
        }
        if self.is_echo(text, speech_start.unwrap_or(now)) {
            self.on_echo(now);
            return;
        }
        self.replay.clear();
        self.echo_texts.clear();
        self.undelivered.clear();
        self.transcript.push(TranscriptTurn {
            role: TurnRole::User,
            content: text.to_string(),
            timestamp: self.wall(now),
            confidence: confidence.map(|c| c.clamp(0.0, 1.0)),
            interrupted: None,
        });
        self.hints.caller_turns += 1;
        self.last_turn_at = Some(now);
        self.nudges_sent = 0;
        self.silence_at = None;
        let opted_out = is_opt_out(text);
        if opted_out {
            // I4: the flag is set before anything else happens and survives everything.
            self.hints.opted_out = true;
        }
        if self.ending.is_some() || self.tearing_down {
            // The last line is being delivered (or the call is over); no reply.
            return;
        }
        self.settle_current(now);
        self.epoch = self.epoch.next();
        self.history.push_user(text);
        if self.deps.observer.is_some() {
            self.observe(&Frame::UserTurn {
                epoch: self.epoch,
                text: text.to_string(),
                confidence,
            });
        }
        if opted_out {
            tracing::info!(call_id = %self.call_id, "caller opted out");
            self.begin_end(
                EndReason::OptOut,
                Some(self.cfg.lines.opt_out_ack.clone()),
                now,
            );
            return;
        }
        let mut prefix = Vec::new();
        if self.disclosure == Disclosure::NeedsRedelivery {
            self.disclosure = Disclosure::Redelivering;
            self.disclosure_redeliver_at = None;
            prefix.push((LineKind::Disclosure, self.cfg.disclosure.text.clone()));
        }
        let draft = LatencyDraft {
            speech_end,
            end_of_turn: Some(now),
            final_text: Some(final_at),
            ..LatencyDraft::default()
        };
        let request = self.build_request();
        self.spawn_utterance(Script::Reply { request, prefix }, true, Some(draft));
    }

    // ---------------------------------------------------------------------------------------
    // Frames from utterance tasks
    // ---------------------------------------------------------------------------------------

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        self.observe(&frame);
        if frame.is_stale(self.epoch) {
            return;
        }
        let current = self.current.as_ref().map(|u| u.id);
        let mine = frame.utterance().is_some() && frame.utterance() == current;
        match frame {
            Frame::Sentence {
                index, kind, text, ..
            } if mine => {
                if let Some(u) = self.current.as_mut() {
                    if index as usize == u.sentences.len() {
                        u.sentences.push(SentenceState {
                            kind,
                            text,
                            ended: false,
                            audio_bytes: 0,
                            played_by: None,
                            notified: false,
                        });
                    }
                }
            }
            Frame::TtsAudio {
                utterance,
                sentence,
                audio,
                ..
            } if mine => {
                self.pacer.push_audio(
                    Tag {
                        utterance,
                        sentence,
                    },
                    &audio,
                    now,
                );
            }
            Frame::SentenceEnd {
                utterance,
                sentence,
                audio_bytes,
                ..
            } if mine => {
                if let Some(s) = self
                    .current
                    .as_mut()
                    .and_then(|u| u.sentences.get_mut(sentence as usize))
                {
                    s.ended = true;
                    s.audio_bytes = audio_bytes;
                }
                if audio_bytes > 0 {
                    self.pacer.end_sentence(
                        Tag {
                            utterance,
                            sentence,
                        },
                        now,
                    );
                }
            }
            Frame::AgentAction { action, .. } if mine => self.on_action(action, now),
            Frame::Timing { mark, at, .. } if mine => {
                if let Some(d) = self.current.as_mut().and_then(|u| u.latency.as_deref_mut()) {
                    let slot = match mark {
                        TimingMark::LlmRequest => &mut d.llm_request,
                        TimingMark::LlmFirstToken => &mut d.llm_first,
                        TimingMark::FirstSentence => &mut d.first_sentence,
                        TimingMark::TtsRequest => &mut d.tts_request,
                        TimingMark::TtsFirstByte => &mut d.tts_first,
                    };
                    slot.get_or_insert(at);
                }
            }
            Frame::UtteranceDone { verdict, .. } if mine => {
                match &verdict {
                    UtteranceVerdict::ProviderEmptyStream => {
                        self.counters.empty_streams += 1;
                        self.counters.recovery_lines += 1;
                    }
                    UtteranceVerdict::TimeoutBeforeSpeech => {
                        self.counters.llm_timeouts += 1;
                        self.counters.recovery_lines += 1;
                    }
                    UtteranceVerdict::TimeoutAfterSpeech => self.counters.llm_timeouts += 1,
                    UtteranceVerdict::LlmFailed(_) => {
                        self.counters.llm_errors += 1;
                        self.counters.recovery_lines += 1;
                    }
                    UtteranceVerdict::Spoken
                    | UtteranceVerdict::ActionOnly
                    | UtteranceVerdict::NoAudio => {}
                }
                if let Some(u) = self.current.as_mut() {
                    u.verdict = Some(verdict);
                }
                self.check_complete(now);
            }
            Frame::Error {
                source,
                message,
                fatal: _,
            } => {
                match source {
                    ErrorSource::Tts => self.counters.tts_errors += 1,
                    ErrorSource::Conversion => self.counters.conversion_errors += 1,
                    ErrorSource::Stt => self.counters.stt_errors += 1,
                    ErrorSource::Llm | ErrorSource::Carrier => {}
                }
                self.record_error(source, message, now);
            }
            _ => {}
        }
    }

    fn on_action(&mut self, action: AgentTool, now: Instant) {
        match action {
            AgentTool::EndCall { outcome, reason } => {
                self.hints.end_call_outcome = Some(outcome);
                self.hints.end_call_reason = reason;
                self.begin_end(EndReason::AgentEnd, None, now);
            }
            AgentTool::MarkGoal { achieved, detail } => {
                self.hints.goal_achieved = Some(achieved);
                if detail.is_some() {
                    self.hints.goal_detail = detail;
                }
            }
            AgentTool::RequestCallback { when } => {
                self.hints.callback_requested = true;
                if when.is_some() {
                    self.hints.callback_when = when;
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Teardown (H9)
    // ---------------------------------------------------------------------------------------

    async fn teardown(
        mut self,
        reason: EndReason,
        mut inbound: InboundReceiver,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) -> SessionEnd {
        let now = Instant::now();
        tracing::info!(call_id = %self.call_id, reason = reason.as_str(), "voice session ending");
        // 1. Stop reading inbound audio and stop sending.
        inbound.close();
        self.pending_text.clear();
        self.pacer.clear(now);
        self.counters.dropped_inbound_frames = inbound.dropped_audio();

        // 2. Cancel turn, opener, nudge, STT and TTS work; wait at most 2 s in total.
        let deadline = now + TEARDOWN_WAIT;
        if let Some(u) = &self.current {
            u.cancel.cancel();
        }
        self.tearing_down = true;
        if let Some(stt) = self.stt.take() {
            if !self.stt_batch.is_empty() {
                let _ = stt.send_audio(self.stt_batch.split().freeze());
            }
            let _ = stt.close();
        }
        // Results the provider already delivered still count: "remove my number" followed by an
        // immediate hang-up must reach the transcript and the opt-out flag (H9 check).
        if let Some(mut events) = self.stt_events.take() {
            while let Ok(event) = events.try_recv() {
                if matches!(event, SttEvent::Closed { .. }) {
                    break;
                }
                self.on_stt(event, Instant::now());
            }
        }
        if let Some(tts) = self.tts_session.take() {
            tts.close();
        }
        if self.hangup_on_teardown {
            if let Some(call) = self.cfg.carrier_call.clone() {
                let result = timeout(
                    deadline.saturating_duration_since(Instant::now()),
                    self.deps.telephony.hang_up(&call),
                )
                .await;
                match result {
                    Ok(Ok(())) => self.hangup = HangupStatus::Done,
                    Ok(Err(e)) => {
                        self.record_error(
                            ErrorSource::Carrier,
                            format!("hang-up failed: {e}"),
                            now,
                        );
                        self.hangup = HangupStatus::Failed(e.to_string());
                    }
                    Err(_) => {
                        self.record_error(ErrorSource::Carrier, "hang-up timed out".into(), now);
                        self.hangup = HangupStatus::Failed("timed out".into());
                    }
                }
            }
        }
        self.cancel.cancel();
        let _ = timeout(deadline.saturating_duration_since(Instant::now()), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        // A hang-up answered after the socket closed still belongs in the report.
        while let Ok(msg) = internal.try_recv() {
            if let Internal::HangUp(result) = msg {
                self.hangup = match result {
                    Ok(()) => HangupStatus::Done,
                    Err(e) => HangupStatus::Failed(e.to_string()),
                };
            }
        }

        // 3. Snapshot: what the caller heard of the last utterance counts.
        let now = Instant::now();
        if let Some(u) = self.current.take() {
            self.commit(u, now, CommitKind::Stopped);
        }
        self.observe(&Frame::End);

        // 4–6 are persistence steps: hand everything to the sink once.
        let stats = self.pacer.stats();
        self.counters.max_outbound_lead_ms = stats.max_lead.as_millis() as u64;
        self.counters.pacing_jitter_p99_us = stats.jitter.quantile(0.99).as_micros() as u64;
        self.counters.pacing_jitter_max_us = stats.jitter.max().as_micros() as u64;
        self.hints.disclosure_delivered = self.disclosure == Disclosure::Delivered;
        let recorder = std::mem::replace(
            &mut self.recorder,
            Recorder::new(RecordingMode::Off, PathBuf::new(), ""),
        );
        let recording = if !recorder.enabled() {
            RecordingResult::Disabled
        } else if self.cfg.disclosure.required && self.disclosure != Disclosure::Delivered {
            // H5.4: notice not delivered (or unknown) → keep no recording.
            recorder.discard().await;
            RecordingResult::Discarded {
                reason: "recording notice was not delivered".into(),
            }
        } else {
            match recorder.finish().await {
                Ok(Some(rec)) => RecordingResult::Wav {
                    path: rec.path,
                    size_bytes: rec.size_bytes,
                    channels: rec.channels,
                    sample_rate: SAMPLE_RATE,
                    duration_seconds: rec.duration_seconds,
                },
                Ok(None) => RecordingResult::Discarded {
                    reason: "no audio was recorded".into(),
                },
                Err(e) => {
                    tracing::error!(call_id = %self.cfg.call_id, error = %e, "recording failed");
                    RecordingResult::Failed {
                        reason: e.to_string(),
                    }
                }
            }
        };
        let turns = std::mem::take(&mut self.transcript);
        let metrics = TranscriptMetrics::of(&turns);
        let end = SessionEnd {
            end_reason: reason,
            turn_count: turns.len(),
            opted_out: self.hints.opted_out,
        };
        let report = SessionReport {
            call_id: self.cfg.call_id.clone(),
            started_at: self.started_wall,
            connected_at: self.connected.map(|c| self.wall(c)),
            ended_at: self.wall(now),
            end_reason: reason,
            turns,
            metrics,
            recording,
            hints: std::mem::take(&mut self.hints),
            latencies: std::mem::take(&mut self.latencies),
            opener_ms: self.opener_ms,
            counters: std::mem::take(&mut self.counters),
            dtmf: std::mem::take(&mut self.dtmf),
            errors: std::mem::take(&mut self.errors),
            hangup: std::mem::take(&mut self.hangup),
        };
        self.deps.sink.finished(report).await;
        tracing::info!(call_id = %self.call_id, reason = reason.as_str(), turns = end.turn_count, "voice session persisted");
        end
    }
}
