//! The outbound writer logic: exact 20 ms frames, paced against the carrier's playout clock
//! (protocols §2.9.4, behaviour G8–G11, H1, J2).
//!
//! Vonage buffers whatever it is sent and plays it at 20 ms per message; anything in that
//! buffer is heard unless cleared. Sending a whole reply at once would make a barge-in `clear`
//! race a 20 s buffer and make "what did the caller hear?" unanswerable. The [`Pacer`] therefore
//!
//! 1. turns TTS audio of any chunk size into exact frames (byte carry; the last frame of each
//!    sentence is zero-padded so sentence boundaries fall on frame boundaries);
//! 2. sends up to 10 frames at once when the far end is idle, then at most two per 20 ms tick
//!    until the estimated lead over playout is about 300 ms, then one per tick — never more
//!    than 1 s ahead;
//! 3. keeps the playout clock `playout_end = max(playout_end, now) + 20 ms` per frame, so every
//!    frame has a scheduled play time; a sentence's end time is reported with its `notify`
//!    mark, which is how the session knows what was heard;
//! 4. on [`clear`](Pacer::clear) drops everything queued and reports what had been sent but
//!    would never be heard.
//!
//! It is a plain state machine: every method takes `now`, nothing sleeps, so it is tested with
//! tokio's paused clock and driven by the session controller's single timer.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::audio::{rms_s16le, Framer, FRAME_BYTES};
use crate::frame::UtteranceId;

/// One frame's duration.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Pacing parameters (defaults from protocols §2.9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacerConfig {
    /// Bytes per frame (640 at 16 kHz s16le, 320 at 8 kHz).
    pub frame_bytes: usize,
    /// Frames sent at once when the far end is idle.
    pub burst_frames: usize,
    /// Lead over playout the pacer steers towards.
    pub target_lead: Duration,
    /// Hard ceiling on the lead.
    pub max_lead: Duration,
    /// Frames per 20 ms tick while catching up to the target lead.
    pub max_per_tick: usize,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            frame_bytes: FRAME_BYTES,
            burst_frames: 10,
            target_lead: Duration::from_millis(300),
            max_lead: Duration::from_millis(1000),
            max_per_tick: 2,
        }
    }
}

/// Which sentence of which utterance a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The utterance.
    pub utterance: UtteranceId,
    /// 0-based sentence index.
    pub sentence: u32,
}

#[derive(Debug)]
enum Item {
    Audio { frame: Bytes, tag: Tag },
    Mark { tag: Tag },
}

/// Something to write to the carrier now.
#[derive(Debug, Clone, PartialEq)]
pub enum Paced {
    /// A frame (exactly `frame_bytes` long) and when it is scheduled to play.
    Audio {
        /// The frame.
        frame: Bytes,
        /// Its sentence.
        tag: Tag,
        /// Scheduled playout start.
        play_at: Instant,
    },
    /// The end of a sentence: send a `notify`; the sentence has played by `played_by`.
    Mark {
        /// The sentence.
        tag: Tag,
        /// Estimated playout end of the sentence's last frame.
        played_by: Instant,
    },
}

/// What a [`clear`](Pacer::clear) threw away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClearReport {
    /// Frames that were queued locally and never sent.
    pub dropped_queued: usize,
    /// Frames already sent whose scheduled playout had not started: the carrier drops them and
    /// the caller never hears them.
    pub dropped_scheduled: usize,
    /// Audio that was still ahead of playout.
    pub unplayed: Duration,
}

/// Pacing statistics (J2, benchmark).
#[derive(Debug, Clone, Default)]
pub struct PacerStats {
    /// Frames handed out.
    pub frames_sent: u64,
    /// Marks handed out.
    pub marks_sent: u64,
    /// Largest lead over playout observed right after a send.
    pub max_lead: Duration,
    /// Bursts started (far end idle).
    pub bursts: u64,
    /// Frames removed by clears (queued + scheduled).
    pub frames_cleared: u64,
    /// Lateness of paced (non-burst) sends against their due time.
    pub jitter: JitterHistogram,
}

/// Fixed-size histogram of send lateness, 0.25 ms buckets up to 32 ms (larger values land in
/// the last bucket; the exact maximum is kept separately).
#[derive(Debug, Clone)]
pub struct JitterHistogram {
    buckets: [u32; Self::BUCKETS],
    count: u64,
    max: Duration,
}

impl Default for JitterHistogram {
    fn default() -> Self {
        Self {
            buckets: [0; Self::BUCKETS],
            count: 0,
            max: Duration::ZERO,
        }
    }
}

impl JitterHistogram {
    const BUCKETS: usize = 128;
    const BUCKET_US: u64 = 250;

    /// Records one lateness sample.
    pub fn record(&mut self, late: Duration) {
        let idx = (late.as_micros() as u64 / Self::BUCKET_US).min(Self::BUCKETS as u64 - 1);
        self.buckets[idx as usize] += 1;
        self.count += 1;
        self.max = self.max.max(late);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest sample.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Upper bound of the bucket holding quantile `q` (0..=1); zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let want = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= want {
                let upper = Duration::from_micros((i as u64 + 1) * Self::BUCKET_US);
                return upper.min(self.max.max(Duration::from_micros(Self::BUCKET_US)));
            }
        }
        self.max
    }
}

/// The outbound pacer. See the module docs.
#[derive(Debug)]
pub struct Pacer {
    cfg: PacerConfig,
    queue: VecDeque<Item>,
    framer: Framer,
    framer_tag: Option<Tag>,
    playout_end: Option<Instant>,
    /// Start of the current 20 ms tick and frames sent in it.
    tick_start: Option<Instant>,
    sent_in_tick: usize,
    burst_left: usize,
    /// When the queue last became non-empty (so waiting for TTS is not counted as jitter).
    ready_since: Option<Instant>,
    /// Scheduled (start, rms) of frames that have not finished playing.
    scheduled: VecDeque<(Instant, f32)>,
    held: bool,
    stats: PacerStats,
}

impl Pacer {
    /// A pacer with `cfg`.
    pub fn new(cfg: PacerConfig) -> Self {
        Self {
            framer: Framer::new(cfg.frame_bytes),
            cfg,
            queue: VecDeque::with_capacity(64),
            framer_tag: None,
            playout_end: None,
            tick_start: None,
            sent_in_tick: 0,
            burst_left: 0,
            ready_since: None,
            scheduled: VecDeque::with_capacity(64),
            held: false,
            stats: PacerStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PacerConfig {
        &self.cfg
    }

    /// Statistics so far.
    pub fn stats(&self) -> &PacerStats {
        &self.stats
    }

    fn enqueue(&mut self, item: Item, now: Instant) {
        if self.queue.is_empty() {
            self.ready_since = Some(now);
        }
        self.queue.push_back(item);
    }

    /// Flushes a partial frame left by a previous sentence (zero-padded).
    fn flush_partial(&mut self, now: Instant) {
        if let Some(tag) = self.framer_tag.take() {
            while let Some(frame) = self.framer.flush() {
                self.enqueue(Item::Audio { frame, tag }, now);
            }
        }
    }

    /// Queues TTS audio (any length; odd bytes are carried) for sentence `tag`.
    pub fn push_audio(&mut self, tag: Tag, audio: &[u8], now: Instant) {
        if self.framer_tag.is_some_and(|t| t != tag) {
            self.flush_partial(now);
        }
        self.framer_tag = Some(tag);
        self.framer.push(audio);
        while let Some(frame) = self.framer.next_frame() {
            self.enqueue(Item::Audio { frame, tag }, now);
        }
    }

    /// Ends sentence `tag`: pads its last partial frame and queues its notify mark.
    pub fn end_sentence(&mut self, tag: Tag, now: Instant) {
        if self.framer_tag == Some(tag) {
            self.flush_partial(now);
        }
        self.enqueue(Item::Mark { tag }, now);
    }

    /// Holds (or releases) output without dropping anything (caller-speaking hold, G21, and
    /// audio prepared before the carrier connected, G3).
    pub fn set_hold(&mut self, held: bool) {
        self.held = held;
    }

    /// True while output is held.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// True when nothing is queued (partial bytes in the carry do not count).
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Frames queued locally.
    pub fn queued_frames(&self) -> usize {
        self.queue
            .iter()
            .filter(|i| matches!(i, Item::Audio { .. }))
            .count()
    }

    /// Estimated end of playout of everything sent (None before the first frame).
    pub fn playout_end(&self) -> Option<Instant> {
        self.playout_end
    }

    /// Audio sent but not yet played at `now`.
    pub fn lead(&self, now: Instant) -> Duration {
        self.playout_end
            .map_or(Duration::ZERO, |end| end.saturating_duration_since(now))
    }

    /// True while the far end may still be playing: `now < playout_end + grace`.
    pub fn far_end_playing(&self, now: Instant, grace: Duration) -> bool {
        self.playout_end.is_some_and(|end| now < end + grace)
    }

    /// RMS of the agent frame scheduled to be playing at `now` (0 when silent). Used by the
    /// local barge-in VAD to tell the caller's voice from line echo (G8).
    pub fn agent_rms_at(&mut self, now: Instant) -> f32 {
        self.prune_played(now);
        match self.scheduled.front() {
            Some(&(start, rms)) if start <= now => rms,
            _ => 0.0,
        }
    }

    /// Forgets frames that finished playing (keeps `scheduled` to the ≤ 1 s lead).
    fn prune_played(&mut self, now: Instant) {
        while self
            .scheduled
            .front()
            .is_some_and(|&(start, _)| start + FRAME_DURATION <= now)
        {
            self.scheduled.pop_front();
        }
    }

    /// Frames sent whose playout has not finished (bounded by the lead).
    pub fn scheduled_frames(&self) -> usize {
        self.scheduled.len()
    }

    /// When the frame at the head of the queue may be sent: `Some(now)`-or-earlier means
    /// immediately, `None` means nothing to send (empty or held).
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        if self.held {
            return None;
        }
        match self.queue.front()? {
            Item::Mark { .. } => Some(now),
            Item::Audio { .. } => Some(self.audio_due_at(now)),
        }
    }

    /// Due time of the next audio frame given the pacing state.
    fn audio_due_at(&self, now: Instant) -> Instant {
        let lead = self.lead(now);
        if lead.is_zero() || self.burst_left > 0 {
            return now;
        }
        let end = self.playout_end.unwrap_or(now);
        // Lead must leave room for one more frame under the target.
        let room_at = (end + FRAME_DURATION)
            .checked_sub(self.cfg.target_lead)
            .unwrap_or(now);
        let tick_at = match self.tick_start {
            Some(t) if self.sent_in_tick >= self.cfg.max_per_tick => t + FRAME_DURATION,
            _ => now,
        };
        room_at.max(tick_at)
    }

    /// Returns the next item to write at `now`, or `None` when nothing is due. Call it in a
    /// loop until `None`, then sleep until [`next_due`](Self::next_due).
    pub fn poll(&mut self, now: Instant) -> Option<Paced> {
        if self.held {
            return None;
        }
        match self.queue.front()? {
            Item::Mark { tag } => {
                let tag = *tag;
                self.queue.pop_front();
                self.stats.marks_sent += 1;
                let played_by = self.playout_end.map_or(now, |e| e.max(now));
                Some(Paced::Mark { tag, played_by })
            }
            Item::Audio { .. } => {
                let lead = self.lead(now);
                if lead.is_zero() {
                    // Far end idle: a new burst (an utterance starting or resuming).
                    self.burst_left = self.cfg.burst_frames;
                    self.tick_start = Some(now);
                    self.sent_in_tick = 0;
                    self.stats.bursts += 1;
                }
                if lead + FRAME_DURATION > self.cfg.max_lead {
                    return None;
                }
                let burst = self.burst_left > 0;
                if !burst {
                    let due = self.audio_due_at(now);
                    if due > now {
                        return None;
                    }
                    if self.tick_start.is_none_or(|t| now >= t + FRAME_DURATION) {
                        self.tick_start = Some(now);
                        self.sent_in_tick = 0;
                    }
                    let ready = self.ready_since.unwrap_or(now);
                    self.stats
                        .jitter
                        .record(now.saturating_duration_since(due.max(ready)));
                }
                let Some(Item::Audio { frame, tag }) = self.queue.pop_front() else {
                    return None;
                };
                if burst {
                    self.burst_left -= 1;
                }
                self.sent_in_tick += 1;
                let start = self.playout_end.map_or(now, |e| e.max(now));
                let end = start + FRAME_DURATION;
                self.playout_end = Some(end);
                self.prune_played(now);
                self.scheduled.push_back((start, rms_s16le(&frame)));
                self.stats.frames_sent += 1;
                self.stats.max_lead = self.stats.max_lead.max(end - now);
                self.ready_since = if self.queue.is_empty() {
                    None
                } else {
                    Some(now)
                };
                Some(Paced::Audio {
                    frame,
                    tag,
                    play_at: start,
                })
            }
        }
    }

    /// Drops everything queued and everything sent but not yet playing; the playout clock
    /// restarts at `now` (protocols §2.9.4 item 4 — the carrier is sent `clear` by the caller
    /// of this method).
    pub fn clear(&mut self, now: Instant) -> ClearReport {
        let dropped_queued = self.queued_frames();
        self.queue.clear();
        self.framer.clear();
        self.framer_tag = None;
        let unplayed = self.lead(now);
        let before = self.scheduled.len();
        self.scheduled.retain(|&(start, _)| start < now);
        let dropped_scheduled = before - self.scheduled.len();
        if self.playout_end.is_some() {
            self.playout_end = Some(now);
        }
        self.burst_left = 0;
        self.ready_since = None;
        self.stats.frames_cleared += (dropped_queued + dropped_scheduled) as u64;
        ClearReport {
            dropped_queued,
            dropped_scheduled,
            unplayed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(u: u64, s: u32) -> Tag {
        Tag {
            utterance: UtteranceId(u),
            sentence: s,
        }
    }

    /// Drains everything due at `now`.
    fn drain(p: &mut Pacer, now: Instant) -> Vec<Paced> {
        std::iter::from_fn(|| p.poll(now)).collect()
    }

    /// Runs the pacer on the paused clock until idle, returning (time since t0, item).
    async fn run(p: &mut Pacer, t0: Instant) -> Vec<(Duration, Paced)> {
        let mut out = Vec::new();
        loop {
            let now = Instant::now();
            for item in drain(p, now) {
                out.push((now - t0, item));
            }
            match p.next_due(now) {
                Some(due) => {
                    tokio::time::sleep_until(due.max(now + Duration::from_micros(1))).await
                }
                None => break,
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn exact_frames_from_odd_chunks_and_padded_sentence_end() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default());
        let audio: Vec<u8> = (0..1501u32).map(|i| (i % 251) as u8).collect();
        for chunk in audio.chunks(333) {
            p.push_audio(tag(1, 0), chunk, t0);
        }
        p.end_sentence(tag(1, 0), t0);
        let items = drain(&mut p, t0);
        let frames: Vec<&Bytes> = items
            .iter()
            .filter_map(|i| match i {
                Paced::Audio { frame, .. } => Some(frame),
                _ => None,
            })
            .collect();
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f.len() == 640));
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        assert_eq!(&joined[..1501], &audio[..]);
        assert!(joined[1501..].iter().all(|&b| b == 0), "zero padded");
        match items.last() {
            Some(Paced::Mark { tag: t, played_by }) => {
                assert_eq!(*t, tag(1, 0));
                assert_eq!(*played_by, t0 + Duration::from_millis(60));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_pace_never_more_than_a_second_ahead() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default());
        // 5 s of audio arrives at once.
        p.push_audio(tag(1, 0), &vec![1u8; 32_000 * 5], t0);
        p.end_sentence(tag(1, 0), t0);
        let out = run(&mut p, t0).await;
        let audio: Vec<_> = out
            .iter()
            .filter(|(_, i)| matches!(i, Paced::Audio { .. }))
            .collect();
        assert_eq!(audio.len(), 250);
        // Burst of exactly 10 at t0.
        assert_eq!(audio.iter().filter(|(t, _)| t.is_zero()).count(), 10);
        // Lead never above 1 s and near 300 ms in steady state.
        assert!(p.stats().max_lead <= Duration::from_millis(1000));
        assert!(p.stats().max_lead <= Duration::from_millis(300));
        assert!(p.stats().max_lead >= Duration::from_millis(280));
        // Sending 5 s of audio takes about 5 s - lead.
        let (last, _) = audio.last().unwrap();
        assert!(
            *last >= Duration::from_millis(4600) && *last <= Duration::from_millis(4800),
            "{last:?}"
        );
        // No frame is sent early relative to pacing: at most 2 per tick after the burst.
        let mut per_time = std::collections::BTreeMap::new();
        for (t, _) in &audio {
            *per_time.entry(*t).or_insert(0) += 1;
        }
        assert!(per_time.iter().skip(1).all(|(_, &n)| n <= 2));
        // Only frames still ahead of playout are remembered.
        assert!(p.scheduled_frames() <= 16, "{}", p.scheduled_frames());
        // On the paused clock, lateness is zero.
        assert_eq!(p.stats().jitter.max(), Duration::ZERO);
        assert!(p.stats().jitter.count() > 200);
    }

    #[tokio::test(start_paused = true)]
    async fn clear_drops_queue_and_reports_unheard() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default());
        p.push_audio(tag(1, 0), &vec![1u8; 640 * 100], t0);
        let sent = drain(&mut p, t0).len();
        assert_eq!(sent, 10);
        assert!(p.far_end_playing(t0, Duration::ZERO));
        let later = t0 + Duration::from_millis(50);
        let r = p.clear(later);
        assert_eq!(r.dropped_queued, 90);
        // Frames scheduled at 60,80,...,180 ms had not started at 50 ms.
        assert_eq!(r.dropped_scheduled, 7);
        assert_eq!(r.unplayed, Duration::from_millis(150));
        assert!(p.is_idle());
        assert!(!p.far_end_playing(later, Duration::ZERO));
        assert!(p.far_end_playing(later, Duration::from_millis(200)));
        // A new utterance after the clear bursts again from `later`.
        p.push_audio(tag(2, 0), &[2u8; 640], later);
        match p.poll(later) {
            Some(Paced::Audio {
                play_at, tag: t, ..
            }) => {
                assert_eq!(play_at, later);
                assert_eq!(t, tag(2, 0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn hold_and_agent_level() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default());
        p.set_hold(true);
        p.push_audio(
            tag(1, 0),
            &crate::audio::tone_s16le(16_000, 440.0, 8000, 40),
            t0,
        );
        assert!(p.poll(t0).is_none());
        assert_eq!(p.next_due(t0), None);
        p.set_hold(false);
        assert_eq!(drain(&mut p, t0).len(), 2);
        let level = p.agent_rms_at(t0 + Duration::from_millis(10));
        assert!(level > 5000.0, "{level}");
        assert_eq!(p.agent_rms_at(t0 + Duration::from_millis(45)), 0.0);
    }

    #[test]
    fn jitter_quantiles() {
        let mut h = JitterHistogram::default();
        for _ in 0..99 {
            h.record(Duration::from_micros(100));
        }
        h.record(Duration::from_millis(10));
        assert_eq!(h.quantile(0.5), Duration::from_micros(250));
        assert_eq!(h.quantile(1.0), Duration::from_millis(10));
        assert_eq!(h.max(), Duration::from_millis(10));
    }
}
