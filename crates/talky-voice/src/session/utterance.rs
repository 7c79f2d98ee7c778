//! One agent utterance as a task: text source → sentences → TTS → frames for the controller
//! (behaviour G5, G7, G15–G17, G26, G28).
//!
//! The controller must never await the LLM or TTS (G6), so every utterance — the opener, a
//! reply, a nudge, a goodbye — runs here, in its own task, and reports back only through
//! [`Frame`]s tagged with its epoch and utterance id. The task runs two halves concurrently:
//!
//! * the **producer** turns the script into sentences: fixed lines are split directly; a reply
//!   streams from the LLM through the control-envelope detector, the leading-filler gate and
//!   the sentence splitter, so the first sentence leaves as soon as it is complete;
//! * the **speaker** synthesises sentences in order (one TTS context per sentence on a session,
//!   or one HTTP request per sentence), converts the audio to canonical s16le 16 kHz and
//!   forwards it.
//!
//! Because they are concurrent, sentence 1 is playing while the model is still writing
//! sentence 2 (G7), and LLM deadlines are only measured while this task waits on the model
//! (G16) — playback never blocks it. Cancelling the task's token drops the LLM stream (aborting
//! the request) and the TTS stream (cancelling the context) at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::StreamExt;
use talky_core::ports::llm::{AgentTool, ChatRequest, FinishReason, Llm, LlmError, LlmEvent};
use talky_core::ports::tts::{
    Tts, TtsChunk, TtsEncoding, TtsError, TtsRequest, TtsSession, TtsSessionOptions,
};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use crate::audio::{alaw_to_linear, ulaw_to_linear, Resampler, SAMPLE_RATE};
use crate::frame::{
    Epoch, ErrorSource, Frame, LineKind, TimingMark, UtteranceId, UtteranceVerdict,
};
use crate::text::{
    has_speakable, split_sentences, Envelope, EnvelopeDetector, FillerGate, SentenceSplitter,
};

/// TTS deadline for the first audio of a sentence.
const TTS_FIRST_AUDIO_TIMEOUT: Duration = Duration::from_secs(5);
/// TTS deadline between audio chunks.
const TTS_INTER_CHUNK_TIMEOUT: Duration = Duration::from_secs(3);

/// What an utterance says.
#[derive(Debug, Clone)]
pub(crate) enum Script {
    /// Fixed lines (opener, nudge, goodbye…), each split into sentences.
    Lines(Vec<(LineKind, String)>),
    /// An LLM reply, optionally preceded by fixed lines (a re-delivered disclosure, H5).
    Reply {
        request: ChatRequest,
        prefix: Vec<(LineKind, String)>,
    },
}

/// Fixed lines a reply may fall back to.
#[derive(Debug, Clone)]
pub(crate) struct Fallbacks {
    /// G15 recovery line.
    pub recovery: String,
    /// G16 apology line.
    pub apology: String,
}

/// Everything an utterance task needs.
pub(crate) struct UtteranceJob {
    pub epoch: Epoch,
    pub id: UtteranceId,
    pub call_id: Arc<str>,
    pub script: Script,
    pub llm: Arc<dyn Llm>,
    pub tts: Arc<dyn Tts>,
    pub tts_session: Option<TtsSession>,
    pub tts_opts: TtsSessionOptions,
    pub out: mpsc::UnboundedSender<Frame>,
    pub cancel: CancellationToken,
    pub max_sentences: usize,
    pub first_token_timeout: Duration,
    pub inter_token_timeout: Duration,
    pub fallbacks: Fallbacks,
}

/// Runs the job until it finishes or its token is cancelled. A cancelled task sends nothing
/// more (the controller has moved on).
pub(crate) async fn run(job: UtteranceJob) {
    let cancel = job.cancel.clone();
    tokio::select! {
        biased;
        _ = cancel.cancelled() => {}
        _ = job.work() => {}
    }
}

/// What the producer hands the speaker.
type Line = (LineKind, String);

impl UtteranceJob {
    fn send(&self, frame: Frame) {
        // The controller outlives every task it spawns; a send error means teardown.
        let _ = self.out.send(frame);
    }

    fn timing(&self, mark: TimingMark) {
        self.send(Frame::Timing {
            epoch: self.epoch,
            utterance: self.id,
            mark,
            at: Instant::now(),
        });
    }

    fn error(&self, source: ErrorSource, message: String, fatal: bool) {
        self.send(Frame::Error {
            source,
            message,
            fatal,
        });
    }

    async fn work(&self) {
        let (line_tx, line_rx) = mpsc::unbounded_channel::<Line>();
        let (verdict, (sentences, audio_bytes)) =
            tokio::join!(self.produce(line_tx), self.speak_all(line_rx));
        let verdict = match verdict {
            UtteranceVerdict::Spoken if sentences > 0 && audio_bytes == 0 => {
                UtteranceVerdict::NoAudio
            }
            v => v,
        };
        self.send(Frame::UtteranceDone {
            epoch: self.epoch,
            utterance: self.id,
            verdict,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Producer
    // ---------------------------------------------------------------------------------------

    async fn produce(&self, lines: mpsc::UnboundedSender<Line>) -> UtteranceVerdict {
        match &self.script {
            Script::Lines(fixed) => {
                send_lines(&lines, fixed);
                UtteranceVerdict::Spoken
            }
            Script::Reply { request, prefix } => {
                send_lines(&lines, prefix);
                self.produce_reply(request.clone(), &lines).await
            }
        }
    }

    async fn produce_reply(
        &self,
        request: ChatRequest,
        lines: &mpsc::UnboundedSender<Line>,
    ) -> UtteranceVerdict {
        let started = Instant::now();
        self.timing(TimingMark::LlmRequest);
        let mut reply = ReplyText::new(self.max_sentences);
        let mut got_event = false;
        let mut actions = 0usize;

        let stream = match timeout(self.first_token_timeout, self.llm.stream_chat(request)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return self.llm_failed(e, &reply, lines),
            Err(_) => {
                return self.llm_failed(
                    LlmError::Timeout(talky_core::ports::llm::TimeoutKind::FirstToken),
                    &reply,
                    lines,
                )
            }
        };
        let mut stream: BoxStream<'static, Result<LlmEvent, LlmError>> = stream;
        let mut filtered = false;
        loop {
            let limit = if got_event {
                self.inter_token_timeout
            } else {
                self.first_token_timeout
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1))
            };
            let next = match timeout(limit, stream.next()).await {
                Err(_) => {
                    let kind = if got_event {
                        talky_core::ports::llm::TimeoutKind::InterToken
                    } else {
                        talky_core::ports::llm::TimeoutKind::FirstToken
                    };
                    return self.llm_failed(LlmError::Timeout(kind), &reply, lines);
                }
                Ok(None) => {
                    // Ended without `Done`: broken (§7.2), but what arrived is usable.
                    if reply.spoken == 0 {
                        self.error(
                            ErrorSource::Llm,
                            "LLM stream ended without [DONE]".into(),
                            false,
                        );
                    }
                    break;
                }
                Ok(Some(Err(e))) => return self.llm_failed(e, &reply, lines),
                Ok(Some(Ok(ev))) => ev,
            };
            if !got_event {
                got_event = true;
                self.timing(TimingMark::LlmFirstToken);
            }
            match next {
                LlmEvent::Token(text) => {
                    for sentence in reply.push(&text) {
                        self.sentence_out(lines, &mut reply, sentence);
                    }
                    if reply.full() {
                        // G5: speech stops after the sentence budget; the stream is dropped.
                        break;
                    }
                }
                LlmEvent::ToolCall {
                    name,
                    arguments_json,
                    ..
                } => match AgentTool::parse(&name, &arguments_json) {
                    Some(action) => {
                        actions += 1;
                        self.send(Frame::AgentAction {
                            epoch: self.epoch,
                            utterance: self.id,
                            action,
                        });
                    }
                    None => tracing::warn!(tool = %name, "unknown or malformed tool call ignored"),
                },
                LlmEvent::Done { finish_reason, .. } => {
                    filtered = finish_reason == FinishReason::ContentFilter;
                    break;
                }
            }
        }
        drop(stream);
        if !reply.full() {
            let (tail, envelopes) = reply.finish();
            for sentence in tail {
                self.sentence_out(lines, &mut reply, sentence);
            }
            for env in envelopes {
                match env {
                    Envelope::Action(action) => {
                        actions += 1;
                        self.send(Frame::AgentAction {
                            epoch: self.epoch,
                            utterance: self.id,
                            action,
                        });
                    }
                    Envelope::Unknown(name) => {
                        tracing::warn!(action = %name, "unknown control envelope ignored")
                    }
                }
            }
        } else {
            // Envelopes already held back still count even when the budget ended the stream.
            let (_, envelopes) = reply.finish();
            for env in envelopes {
                if let Envelope::Action(action) = env {
                    actions += 1;
                    self.send(Frame::AgentAction {
                        epoch: self.epoch,
                        utterance: self.id,
                        action,
                    });
                }
            }
        }
        if reply.spoken > 0 {
            UtteranceVerdict::Spoken
        } else if actions > 0 && !filtered {
            UtteranceVerdict::ActionOnly
        } else {
            // G15: nothing speakable and nobody stopped it → the recovery line, once.
            send_lines(
                lines,
                &[(LineKind::Recovery, self.fallbacks.recovery.clone())],
            );
            UtteranceVerdict::ProviderEmptyStream
        }
    }

    fn sentence_out(
        &self,
        lines: &mpsc::UnboundedSender<Line>,
        reply: &mut ReplyText,
        sentence: String,
    ) {
        if reply.full() {
            return;
        }
        if reply.spoken == 0 {
            self.timing(TimingMark::FirstSentence);
        }
        reply.spoken += 1;
        let _ = lines.send((LineKind::Reply, sentence));
    }

    /// G16: a timeout or failure before any sentence → a fixed line; after some → end here.
    fn llm_failed(
        &self,
        error: LlmError,
        reply: &ReplyText,
        lines: &mpsc::UnboundedSender<Line>,
    ) -> UtteranceVerdict {
        self.error(ErrorSource::Llm, error.to_string(), false);
        let timed_out = error.is_timeout();
        if reply.spoken > 0 {
            return if timed_out {
                UtteranceVerdict::TimeoutAfterSpeech
            } else {
                UtteranceVerdict::Spoken
            };
        }
        if timed_out {
            send_lines(
                lines,
                &[(LineKind::Recovery, self.fallbacks.apology.clone())],
            );
            UtteranceVerdict::TimeoutBeforeSpeech
        } else {
            send_lines(
                lines,
                &[(LineKind::Recovery, self.fallbacks.recovery.clone())],
            );
            UtteranceVerdict::LlmFailed(error.to_string())
        }
    }

    // ---------------------------------------------------------------------------------------
    // Speaker
    // ---------------------------------------------------------------------------------------

    /// Synthesises every line in order; returns (sentences, audio bytes).
    async fn speak_all(&self, mut lines: mpsc::UnboundedReceiver<Line>) -> (u32, usize) {
        let mut index = 0u32;
        let mut total = 0usize;
        let mut first_request = true;
        while let Some((kind, sentence)) = lines.recv().await {
            if !has_speakable(&sentence) {
                continue; // G28: a sentence with no letter or digit is dropped
            }
            self.send(Frame::Sentence {
                epoch: self.epoch,
                utterance: self.id,
                index,
                kind,
                text: sentence.clone(),
            });
            if first_request {
                first_request = false;
                self.timing(TimingMark::TtsRequest);
            }
            let bytes = self.speak(index, &sentence, total == 0).await;
            self.send(Frame::SentenceEnd {
                epoch: self.epoch,
                utterance: self.id,
                sentence: index,
                audio_bytes: bytes,
            });
            total += bytes;
            index += 1;
        }
        (index, total)
    }

    /// One sentence: the session context first (if any), then one HTTP retry (G17).
    async fn speak(&self, index: u32, text: &str, first_audio: bool) -> usize {
        let mut sent = 0usize;
        let mut first = first_audio;
        let primary = match &self.tts_session {
            Some(session) if !session.is_closed() => {
                let ctx_id = format!("{}-{}-s{}", self.call_id, self.id, index);
                match session.open_context(ctx_id) {
                    Ok(ctx) => match ctx.input.send_last(text) {
                        Ok(()) => {
                            self.forward(ctx.audio.boxed(), index, &mut sent, &mut first)
                                .await
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
            _ => {
                self.synthesize_once(text, index, &mut sent, &mut first)
                    .await
            }
        };
        let Err(err) = primary else { return sent };
        self.error(ErrorSource::Tts, err.to_string(), false);
        if sent > 0 {
            // Part of the sentence played; a retry would repeat it.
            return sent;
        }
        if let Err(err) = self
            .synthesize_once(text, index, &mut sent, &mut first)
            .await
        {
            self.error(ErrorSource::Tts, format!("retry failed: {err}"), false);
        }
        sent
    }

    async fn synthesize_once(
        &self,
        text: &str,
        index: u32,
        sent: &mut usize,
        first: &mut bool,
    ) -> Result<(), TtsError> {
        let req = TtsRequest::with_options(text, &self.tts_opts);
        let stream = match timeout(TTS_FIRST_AUDIO_TIMEOUT, self.tts.synthesize_stream(req)).await {
            Ok(r) => r?,
            Err(_) => return Err(TtsError::Timeout("TTS request".into())),
        };
        self.forward(stream, index, sent, first).await
    }

    /// Forwards a chunk stream as canonical audio frames; `Err(Empty)` when it yielded none.
    async fn forward(
        &self,
        mut stream: BoxStream<'static, Result<TtsChunk, TtsError>>,
        index: u32,
        sent: &mut usize,
        first: &mut bool,
    ) -> Result<(), TtsError> {
        let mut convert = Converter::default();
        let mut produced = 0usize;
        loop {
            let limit = if produced == 0 {
                TTS_FIRST_AUDIO_TIMEOUT
            } else {
                TTS_INTER_CHUNK_TIMEOUT
            };
            let item = match timeout(limit, stream.next()).await {
                Err(_) => return Err(TtsError::Timeout("no TTS audio in time".into())),
                Ok(None) => break,
                Ok(Some(item)) => item?,
            };
            let audio = match convert.convert(item) {
                Ok(audio) => audio,
                Err(message) => {
                    self.error(ErrorSource::Conversion, message, false);
                    return Err(TtsError::Protocol("unconvertible audio".into()));
                }
            };
            if audio.is_empty() {
                continue;
            }
            if *first {
                *first = false;
                self.timing(TimingMark::TtsFirstByte);
            }
            produced += audio.len();
            *sent += audio.len();
            self.send(Frame::TtsAudio {
                epoch: self.epoch,
                utterance: self.id,
                sentence: index,
                audio,
            });
        }
        if let Some(tail) = convert.flush() {
            *sent += tail.len();
            self.send(Frame::TtsAudio {
                epoch: self.epoch,
                utterance: self.id,
                sentence: index,
                audio: tail,
            });
        }
        if produced == 0 {
            Err(TtsError::Empty)
        } else {
            Ok(())
        }
    }
}

/// Queues fixed lines, one sentence at a time (so each gets its own notify mark).
fn send_lines(lines: &mpsc::UnboundedSender<Line>, fixed: &[Line]) {
    for (kind, text) in fixed {
        for sentence in split_sentences(text) {
            let _ = lines.send((*kind, sentence));
        }
    }
}

/// The text path of a reply: envelope detector → filler gate → sentence splitter.
struct ReplyText {
    envelopes: EnvelopeDetector,
    filler: FillerGate,
    splitter: SentenceSplitter,
    max: usize,
    spoken: usize,
}

impl ReplyText {
    fn new(max: usize) -> Self {
        Self {
            envelopes: EnvelopeDetector::new(),
            filler: FillerGate::new(),
            splitter: SentenceSplitter::new(),
            max: max.max(1),
            spoken: 0,
        }
    }

    fn full(&self) -> bool {
        self.spoken >= self.max
    }

    fn push(&mut self, fragment: &str) -> Vec<String> {
        let speakable = self.envelopes.push(fragment);
        let text = self.filler.push(&speakable);
        let mut out = Vec::new();
        if !text.is_empty() {
            self.splitter.push(&text, &mut out);
        }
        out.retain(|s| has_speakable(s));
        out
    }

    fn finish(&mut self) -> (Vec<String>, Vec<Envelope>) {
        let (tail, envelopes) = self.envelopes.finish();
        let mut text = self.filler.push(&tail);
        text.push_str(&self.filler.finish());
        let mut out = Vec::new();
        self.splitter.push(&text, &mut out);
        self.splitter.finish(&mut out);
        out.retain(|s| has_speakable(s));
        (out, envelopes)
    }
}

/// Converts provider audio to s16le 16 kHz (G18). Canonical chunks pass through untouched.
#[derive(Default)]
struct Converter {
    resampler: Option<Resampler>,
    scratch: Vec<i16>,
}

impl Converter {
    fn convert(&mut self, chunk: TtsChunk) -> Result<Bytes, String> {
        if chunk.encoding == TtsEncoding::PcmS16le && chunk.sample_rate == SAMPLE_RATE {
            return Ok(chunk.audio);
        }
        self.scratch.clear();
        match chunk.encoding {
            TtsEncoding::PcmS16le => {
                crate::audio::pcm::extend_samples_from_le(&chunk.audio, &mut self.scratch)
            }
            TtsEncoding::PcmMulaw => self
                .scratch
                .extend(chunk.audio.iter().map(|&b| ulaw_to_linear(b))),
            TtsEncoding::PcmAlaw => self
                .scratch
                .extend(chunk.audio.iter().map(|&b| alaw_to_linear(b))),
        }
        let mut out = BytesMut::with_capacity(self.scratch.len() * 2);
        if chunk.sample_rate == SAMPLE_RATE {
            crate::audio::pcm::extend_le_from_samples(&self.scratch, &mut out);
            return Ok(out.freeze());
        }
        let resampler = match &mut self.resampler {
            Some(r) if r.in_rate() == chunk.sample_rate => r,
            _ => self
                .resampler
                .insert(Resampler::new(chunk.sample_rate, SAMPLE_RATE).map_err(|e| e.to_string())?),
        };
        let mut resampled = Vec::with_capacity(self.scratch.len() * 2);
        resampler.process(&self.scratch, &mut resampled);
        crate::audio::pcm::extend_le_from_samples(&resampled, &mut out);
        Ok(out.freeze())
    }

    fn flush(&mut self) -> Option<Bytes> {
        let resampler = self.resampler.as_mut()?;
        let mut tail = Vec::new();
        resampler.flush(&mut tail);
        if tail.is_empty() {
            return None;
        }
        let mut out = BytesMut::with_capacity(tail.len() * 2);
        crate::audio::pcm::extend_le_from_samples(&tail, &mut out);
        Some(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_text_pipeline() {
        let mut r = ReplyText::new(3);
        let mut got = Vec::new();
        for t in [
            "Um, ",
            "sure thing",
            ". Dr. Lee is in. ",
            "Bye. {\"action\":\"end_call\"}",
        ] {
            got.extend(r.push(t));
        }
        let (tail, envs) = r.finish();
        got.extend(tail);
        assert_eq!(got, vec!["Sure thing.", "Dr. Lee is in.", "Bye."]);
        assert_eq!(envs.len(), 1);
    }

    #[test]
    fn converter_resamples_and_decodes() {
        let mut c = Converter::default();
        let chunk = TtsChunk {
            audio: crate::audio::tone_s16le(24_000, 440.0, 8000, 100),
            sample_rate: 24_000,
            encoding: TtsEncoding::PcmS16le,
        };
        let mut total = c.convert(chunk).unwrap().len();
        total += c.flush().map_or(0, |b| b.len());
        // 100 ms at 16 kHz = 3200 bytes (± the filter's edge).
        assert!((3000..=3400).contains(&total), "{total}");
        let mut c = Converter::default();
        let mu = TtsChunk {
            audio: Bytes::from(vec![0xFFu8; 160]),
            sample_rate: 16_000,
            encoding: TtsEncoding::PcmMulaw,
        };
        let out = c.convert(mu).unwrap();
        assert_eq!(out.len(), 320);
        assert!(out.iter().all(|&b| b == 0));
    }
}
