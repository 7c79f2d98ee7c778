//! Two-track call recording on one timeline (behaviour H1–H2).
//!
//! The carrier's own recording cannot show what the agent *meant* to say versus what was
//! cleared, so Talky records both sides itself: caller frames as they arrive, agent frames at
//! the time they are scheduled to play (the pacer's playout clock), both measured from
//! `websocket:connected`. Gaps are silence. A barge-in `clear` removes the agent frames that
//! were scheduled after it, because the caller never heard them.
//!
//! Tracks are kept in memory as s16le (32 kB per second per side) and turned into a WAV file
//! once, at teardown.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::config::RecordingMode;
use crate::audio::mix::{interleave_stereo_s16le, mix_mono_s16le};
use crate::audio::{wav_bytes, WavSpec, SAMPLE_RATE};

/// Bytes of s16le mono 16 kHz audio per millisecond.
const BYTES_PER_MS: u128 = 32;

/// A caller gap shorter than this is arrival jitter, not silence.
const CALLER_GAP_TOLERANCE: Duration = Duration::from_millis(100);

/// Byte offset (whole samples) of `d` on the timeline.
fn offset_of(d: Duration) -> usize {
    let bytes = d.as_micros() * BYTES_PER_MS / 1000;
    (bytes as usize) & !1
}

/// The finished recording.
#[derive(Debug, Clone)]
pub struct Recording {
    /// WAV bytes.
    pub wav: Bytes,
    /// 1 or 2.
    pub channels: u16,
    /// Audio length in seconds.
    pub duration_seconds: f64,
}

/// Records caller and agent audio (see the module docs).
#[derive(Debug)]
pub struct Recorder {
    mode: RecordingMode,
    t0: Option<Instant>,
    caller: BytesMut,
    agent: BytesMut,
    /// (scheduled start, byte offset) of agent frames that may still be cleared.
    agent_marks: VecDeque<(Instant, usize)>,
}

impl Recorder {
    /// A recorder in `mode` (nothing is kept when `Off`).
    pub fn new(mode: RecordingMode) -> Self {
        Self {
            mode,
            t0: None,
            caller: BytesMut::new(),
            agent: BytesMut::new(),
            agent_marks: VecDeque::new(),
        }
    }

    /// True when recording.
    pub fn enabled(&self) -> bool {
        self.mode != RecordingMode::Off
    }

    /// Starts the timeline (idempotent; the first call wins).
    pub fn start(&mut self, t0: Instant) {
        self.t0.get_or_insert(t0);
    }

    /// Adds one inbound frame that arrived at `now`.
    pub fn caller_frame(&mut self, now: Instant, frame: &[u8]) {
        if !self.enabled() {
            return;
        }
        let Some(t0) = self.t0 else { return };
        let expected_end = offset_of(now.saturating_duration_since(t0));
        let tolerance = offset_of(CALLER_GAP_TOLERANCE);
        if self.caller.len() + frame.len() + tolerance < expected_end {
            self.caller.resize(expected_end - frame.len(), 0);
        }
        self.caller.extend_from_slice(frame);
    }

    /// Adds one agent frame scheduled to play at `play_at`.
    pub fn agent_frame(&mut self, play_at: Instant, frame: &[u8]) {
        if !self.enabled() {
            return;
        }
        let Some(t0) = self.t0 else { return };
        let offset = offset_of(play_at.saturating_duration_since(t0));
        if offset > self.agent.len() {
            self.agent.resize(offset, 0);
        }
        let at = self.agent.len();
        self.agent.extend_from_slice(frame);
        self.agent_marks.push_back((play_at, at));
        // Only frames within the pacer's lead (≤ 1 s) can still be cleared.
        while self
            .agent_marks
            .front()
            .is_some_and(|&(start, _)| start + Duration::from_secs(2) < play_at)
        {
            self.agent_marks.pop_front();
        }
    }

    /// Removes agent frames scheduled to start at or after `at` (a clear was sent at `at`).
    pub fn clear_agent(&mut self, at: Instant) {
        if let Some(pos) = self.agent_marks.iter().position(|&(start, _)| start >= at) {
            let cut = self.agent_marks[pos].1;
            self.agent.truncate(cut);
            self.agent_marks.truncate(pos);
        }
    }

    /// Bytes of caller and agent audio recorded (for tests and logs).
    pub fn track_lens(&self) -> (usize, usize) {
        (self.caller.len(), self.agent.len())
    }

    /// Builds the WAV file (None when off or empty).
    pub fn finish(self) -> Option<Recording> {
        let channels = match self.mode {
            RecordingMode::Off => return None,
            RecordingMode::Mono => 1,
            RecordingMode::Stereo => 2,
        };
        if self.caller.is_empty() && self.agent.is_empty() {
            return None;
        }
        let samples = self.caller.len().max(self.agent.len()) / 2;
        let wav = if channels == 1 {
            wav_bytes(
                WavSpec::mono(SAMPLE_RATE),
                &mix_mono_s16le(&self.caller, &self.agent),
            )
        } else {
            wav_bytes(
                WavSpec::stereo(SAMPLE_RATE),
                &interleave_stereo_s16le(&self.caller, &self.agent),
            )
        };
        Some(Recording {
            wav: Bytes::from(wav),
            channels,
            duration_seconds: samples as f64 / f64::from(SAMPLE_RATE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::read_wav;

    #[tokio::test(start_paused = true)]
    async fn timeline_gaps_and_clear() {
        let t0 = Instant::now();
        let mut r = Recorder::new(RecordingMode::Stereo);
        r.start(t0);
        let ms = Duration::from_millis;
        // Caller: frames at 20, 40 ms, then a 1 s gap.
        r.caller_frame(t0 + ms(20), &[1u8; 640]);
        r.caller_frame(t0 + ms(40), &[1u8; 640]);
        r.caller_frame(t0 + ms(1040), &[1u8; 640]);
        assert_eq!(r.track_lens().0, offset_of(ms(1040)));
        // Agent: ten frames from 100 ms; a clear at 150 ms drops those starting at ≥ 150.
        for i in 0..10u64 {
            r.agent_frame(t0 + ms(100 + 20 * i), &[2u8; 640]);
        }
        r.clear_agent(t0 + ms(150));
        // Frames at 100, 120, 140 remain.
        assert_eq!(r.track_lens().1, offset_of(ms(160)));
        let rec = r.finish().unwrap();
        let wav = read_wav(&rec.wav).unwrap();
        assert_eq!(wav.channels, 2);
        assert_eq!(wav.sample_rate, 16_000);
        let right = wav.channel(1);
        assert_eq!(right[..1600].iter().filter(|&&s| s != 0).count(), 0);
        assert!(right[1600..2560].iter().all(|&s| s == 0x0202));
        assert!((rec.duration_seconds - 1.04).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn off_keeps_nothing() {
        let mut r = Recorder::new(RecordingMode::Off);
        r.start(Instant::now());
        r.caller_frame(Instant::now(), &[1; 640]);
        assert_eq!(r.track_lens(), (0, 0));
        assert!(r.finish().is_none());
    }
}
