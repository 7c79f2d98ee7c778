//! Two-track call recording on one timeline (behaviour H1–H2).
//!
//! The carrier's own recording cannot show what the agent *meant* to say versus what was
//! cleared, so Talky records both sides itself: caller frames as they arrive, agent frames at
//! the time they are scheduled to play (the pacer's playout clock), both measured from
//! `websocket:connected`. Gaps are silence. A barge-in `clear` removes the agent frames that
//! were scheduled after it, because the caller never heard them.
//!
//! Audio does not pile up in memory: each track keeps only its unflushed tail (the caller's
//! last second; the agent's frames that a clear could still remove, about two seconds) and
//! hands finished chunks to a spool writer task that appends them to two raw files in the
//! spool directory. At teardown the writer turns the raw tracks into one WAV file there
//! (mono mix or stereo), which the server then moves into recording storage. All file work
//! runs on tokio's blocking pool, never on the session's tasks.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::RecordingMode;
use crate::audio::mix::{interleave_stereo_s16le, mix_mono_s16le};
use crate::audio::{WavSpec, WavWriter, SAMPLE_RATE};

/// Bytes of s16le mono 16 kHz audio per millisecond.
const BYTES_PER_MS: u128 = 32;

/// A caller gap shorter than this is arrival jitter, not silence.
const CALLER_GAP_TOLERANCE: Duration = Duration::from_millis(100);

/// How long an agent frame stays clearable. The pacer runs at most about one second ahead
/// of playout, so a clear at `now` only ever removes frames scheduled after `now − 1 s`.
const CLEARABLE: Duration = Duration::from_secs(2);

/// A track hands its tail to the spool writer in chunks of about this size (one second).
const FLUSH_BYTES: usize = 32_000;

/// Bytes per read when the WAV is assembled from the raw tracks.
const ASSEMBLE_CHUNK: usize = 64 * 1024;

/// Byte offset (whole samples) of `d` on the timeline.
fn offset_of(d: Duration) -> u64 {
    let bytes = d.as_micros() * BYTES_PER_MS / 1000;
    (bytes as u64) & !1
}

/// The finished recording: a WAV file in the spool directory, owned by the caller of
/// [`Recorder::finish`] (move it into storage, then remove it).
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The WAV file.
    pub path: PathBuf,
    /// Its size in bytes, header included.
    pub size_bytes: u64,
    /// 1 or 2.
    pub channels: u16,
    /// Audio length in seconds.
    pub duration_seconds: f64,
}

/// Why a recording could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// Writing the spool or the WAV file failed (disk full, permissions …).
    #[error("recording spool failed: {0}")]
    Spool(#[from] io::Error),
    /// The spool writer task ended unexpectedly.
    #[error("recording spool writer stopped")]
    WriterGone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Caller,
    Agent,
}

/// Work for the spool writer.
#[derive(Debug)]
enum Op {
    Data(Side, Bytes),
    Zeros(Side, u64),
    Finish(
        RecordingMode,
        oneshot::Sender<Result<Recording, RecorderError>>,
    ),
}

/// One side's timeline: `flushed` bytes already handed to the writer, then `tail`.
#[derive(Debug, Default)]
struct Track {
    flushed: u64,
    tail: BytesMut,
}

impl Track {
    fn len(&self) -> u64 {
        self.flushed + self.tail.len() as u64
    }
}

/// Records caller and agent audio (see the module docs).
#[derive(Debug)]
pub struct Recorder {
    mode: RecordingMode,
    spool_dir: PathBuf,
    name: String,
    t0: Option<Instant>,
    caller: Track,
    agent: Track,
    /// (scheduled start, byte offset) of agent frames that may still be cleared.
    agent_marks: VecDeque<(Instant, u64)>,
    writer: Option<(mpsc::UnboundedSender<Op>, JoinHandle<()>)>,
    spool_failed: bool,
}

impl Recorder {
    /// A recorder in `mode` (nothing is kept when `Off`) spooling into `spool_dir`; `call`
    /// names the files.
    pub fn new(mode: RecordingMode, spool_dir: impl Into<PathBuf>, call: &str) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let clean: String = call
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let name = format!(
            "{clean}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            mode,
            spool_dir: spool_dir.into(),
            name,
            t0: None,
            caller: Track::default(),
            agent: Track::default(),
            agent_marks: VecDeque::new(),
            writer: None,
            spool_failed: false,
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
        let len = frame.len() as u64;
        if self.caller.len() + len + tolerance < expected_end {
            self.pad(Side::Caller, expected_end - len);
        }
        self.caller.tail.extend_from_slice(frame);
        if self.caller.tail.len() >= FLUSH_BYTES {
            self.flush(Side::Caller, self.caller.tail.len());
        }
    }

    /// Adds one agent frame scheduled to play at `play_at`.
    pub fn agent_frame(&mut self, play_at: Instant, frame: &[u8]) {
        if !self.enabled() {
            return;
        }
        let Some(t0) = self.t0 else { return };
        // Frames that started long enough before this one can no longer be cleared.
        while self
            .agent_marks
            .front()
            .is_some_and(|&(start, _)| start + CLEARABLE < play_at)
        {
            self.agent_marks.pop_front();
        }
        let offset = offset_of(play_at.saturating_duration_since(t0));
        if offset > self.agent.len() {
            self.pad(Side::Agent, offset);
        }
        let at = self.agent.len();
        self.agent.tail.extend_from_slice(frame);
        self.agent_marks.push_back((play_at, at));
        let settled = self.agent_settled();
        if settled >= FLUSH_BYTES {
            self.flush(Side::Agent, settled);
        }
    }

    /// Removes agent frames scheduled to start at or after `at` (a clear was sent at `at`).
    pub fn clear_agent(&mut self, at: Instant) {
        if let Some(pos) = self.agent_marks.iter().position(|&(start, _)| start >= at) {
            let cut = self.agent_marks[pos].1;
            // Marks are never older than what was flushed (see `agent_settled`).
            let keep = cut.saturating_sub(self.agent.flushed) as usize;
            self.agent.tail.truncate(keep);
            self.agent_marks.truncate(pos);
        }
    }

    /// Bytes of caller and agent audio recorded (for tests and logs).
    pub fn track_lens(&self) -> (u64, u64) {
        (self.caller.len(), self.agent.len())
    }

    /// Bytes of audio held in memory right now (the unflushed tails).
    pub fn buffered_bytes(&self) -> usize {
        self.caller.tail.len() + self.agent.tail.len()
    }

    /// Agent tail bytes that no clear can remove any more.
    fn agent_settled(&self) -> usize {
        match self.agent_marks.front() {
            Some(&(_, offset)) => offset.saturating_sub(self.agent.flushed) as usize,
            None => self.agent.tail.len(),
        }
    }

    fn track(&mut self, side: Side) -> &mut Track {
        match side {
            Side::Caller => &mut self.caller,
            Side::Agent => &mut self.agent,
        }
    }

    /// Extends `side` with silence up to `target` bytes.
    fn pad(&mut self, side: Side, target: u64) {
        let clearable = side == Side::Agent && !self.agent_marks.is_empty();
        let track = self.track(side);
        let missing = target.saturating_sub(track.len());
        if missing == 0 {
            return;
        }
        if clearable {
            // Short gap between frames that may still be cleared: keep it in the tail.
            let new_len = track.tail.len() + missing as usize;
            track.tail.resize(new_len, 0);
        } else {
            let all = track.tail.len();
            self.flush(side, all);
            self.track(side).flushed += missing;
            self.send(Op::Zeros(side, missing));
        }
    }

    /// Hands the first `bytes` of `side`'s tail to the writer.
    fn flush(&mut self, side: Side, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let track = self.track(side);
        let bytes = bytes.min(track.tail.len());
        let chunk = track.tail.split_to(bytes).freeze();
        track.flushed += bytes as u64;
        // Give the allocation back once the tail is empty, so a quiet call holds nothing.
        if track.tail.is_empty() {
            track.tail = BytesMut::new();
        }
        self.send(Op::Data(side, chunk));
    }

    fn send(&mut self, op: Op) {
        if self.spool_failed {
            return;
        }
        let dir = &self.spool_dir;
        let name = &self.name;
        let (writer, _) = self.writer.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(spool_writer(dir.clone(), name.clone(), rx));
            (tx, task)
        });
        if writer.send(op).is_err() {
            self.spool_failed = true;
        }
    }

    /// Drops the recording and waits until its spool files are removed. (Merely dropping a
    /// recorder removes them too, in the background.)
    pub async fn discard(mut self) {
        if let Some((tx, task)) = self.writer.take() {
            drop(tx);
            let _ = task.await;
        }
    }

    /// Flushes everything and builds the WAV file. `Ok(None)` when recording is off or
    /// nothing was recorded.
    pub async fn finish(mut self) -> Result<Option<Recording>, RecorderError> {
        if !self.enabled() || (self.caller.len() == 0 && self.agent.len() == 0) {
            return Ok(None);
        }
        let (caller, agent) = (self.caller.tail.len(), self.agent.tail.len());
        self.flush(Side::Caller, caller);
        self.flush(Side::Agent, agent);
        let (tx, rx) = oneshot::channel();
        self.send(Op::Finish(self.mode, tx));
        if self.spool_failed {
            return Err(RecorderError::WriterGone);
        }
        rx.await.map_err(|_| RecorderError::WriterGone)?.map(Some)
    }
}

/// The raw spool files of one recording.
struct RawTracks {
    dir: PathBuf,
    name: String,
    files: Option<[(PathBuf, File, u64); 2]>,
}

impl RawTracks {
    fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", self.name))
    }

    fn open(&mut self) -> io::Result<&mut [(PathBuf, File, u64); 2]> {
        if self.files.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let caller = self.path("caller.raw");
            let agent = self.path("agent.raw");
            let files = [
                (caller.clone(), File::create(&caller)?, 0),
                (agent.clone(), File::create(&agent)?, 0),
            ];
            self.files = Some(files);
        }
        // Just set above when it was missing.
        self.files
            .as_mut()
            .ok_or_else(|| io::Error::other("spool files missing"))
    }

    fn write(&mut self, side: Side, data: &[u8]) -> io::Result<()> {
        let slot = &mut self.open()?[side as usize];
        slot.1.write_all(data)?;
        slot.2 += data.len() as u64;
        Ok(())
    }

    fn zeros(&mut self, side: Side, mut n: u64) -> io::Result<()> {
        static ZEROS: [u8; 8192] = [0; 8192];
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.write(side, &ZEROS[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    fn remove(&mut self) {
        if let Some(files) = self.files.take() {
            for (path, file, _) in files {
                drop(file);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Mixes (mono) or interleaves (stereo) the raw tracks into `{name}.wav`.
    fn assemble(&mut self, mode: RecordingMode) -> io::Result<Recording> {
        let channels: u16 = if mode == RecordingMode::Stereo { 2 } else { 1 };
        let files = self.open()?;
        let caller_len = files[0].2;
        let agent_len = files[1].2;
        let total = caller_len.max(agent_len) & !1;
        let mut readers = [File::open(&files[0].0)?, File::open(&files[1].0)?];
        let out_path = self.path("wav");
        let spec = if channels == 2 {
            WavSpec::stereo(SAMPLE_RATE)
        } else {
            WavSpec::mono(SAMPLE_RATE)
        };
        let result = (|| {
            let mut wav = WavWriter::new(BufWriter::new(File::create(&out_path)?), spec)?;
            let (mut a, mut b) = (vec![0u8; ASSEMBLE_CHUNK], vec![0u8; ASSEMBLE_CHUNK]);
            let mut done = 0u64;
            while done < total {
                let want = (total - done).min(ASSEMBLE_CHUNK as u64) as usize;
                let na = read_up_to(&mut readers[0], &mut a[..want])?;
                let nb = read_up_to(&mut readers[1], &mut b[..want])?;
                let pcm = if channels == 2 {
                    // Both sides must cover `want` so left and right stay aligned.
                    a[na..want].fill(0);
                    b[nb..want].fill(0);
                    interleave_stereo_s16le(&a[..want], &b[..want])
                } else {
                    a[na..want].fill(0);
                    mix_mono_s16le(&a[..want], &b[..nb])
                };
                wav.write_pcm(&pcm)?;
                done += want as u64;
            }
            let data_len = wav.data_len();
            wav.finish()?.flush()?;
            Ok(Recording {
                size_bytes: std::fs::metadata(&out_path)?.len(),
                path: out_path.clone(),
                channels,
                duration_seconds: (data_len / 2 / u64::from(channels)) as f64
                    / f64::from(SAMPLE_RATE),
            })
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&out_path);
        }
        result
    }
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The spool writer: applies batches of ops on the blocking pool. A dropped recorder (no
/// `Finish`) removes its raw files; a write error is kept and reported at `Finish`.
async fn spool_writer(dir: PathBuf, name: String, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut raw = RawTracks {
        dir,
        name,
        files: None,
    };
    let mut error: Option<io::Error> = None;
    loop {
        let Some(first) = rx.recv().await else {
            let _ = tokio::task::spawn_blocking(move || raw.remove()).await;
            return;
        };
        let mut batch = vec![first];
        while batch.len() < 64 {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let job = tokio::task::spawn_blocking(move || {
            let mut finished = None;
            for op in batch {
                match op {
                    Op::Data(side, data) if error.is_none() => {
                        error = raw.write(side, &data).err();
                    }
                    Op::Zeros(side, n) if error.is_none() => {
                        error = raw.zeros(side, n).err();
                    }
                    Op::Data(..) | Op::Zeros(..) => {}
                    Op::Finish(mode, reply) => {
                        let result = match error.take() {
                            Some(e) => Err(RecorderError::Spool(e)),
                            None => raw.assemble(mode).map_err(RecorderError::Spool),
                        };
                        raw.remove();
                        finished = Some((reply, result));
                    }
                }
            }
            (raw, error, finished)
        });
        match job.await {
            Ok((r, e, finished)) => {
                raw = r;
                error = e;
                if let Some((reply, result)) = finished {
                    let _ = reply.send(result);
                    return;
                }
            }
            Err(join) => {
                tracing::error!(error = %join, "recording spool writer failed");
                return;
            }
        }
    }
}

/// Removes a finished recording's WAV file (after it was stored, or when it is not kept).
pub async fn remove_spooled(path: &Path) {
    let path = path.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::read_wav;

    fn recorder(mode: RecordingMode, dir: &Path) -> Recorder {
        Recorder::new(mode, dir, "call/1")
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[tokio::test(start_paused = true)]
    async fn timeline_gaps_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let mut r = recorder(RecordingMode::Stereo, dir.path());
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
        let rec = r.finish().await.unwrap().unwrap();
        let bytes = std::fs::read(&rec.path).unwrap();
        assert_eq!(bytes.len() as u64, rec.size_bytes);
        let wav = read_wav(&bytes).unwrap();
        assert_eq!(wav.channels, 2);
        assert_eq!(wav.sample_rate, 16_000);
        let left = wav.channel(0);
        // Arrival jitter below 100 ms is not a gap: the first two frames start the track.
        assert!(left[..640].iter().all(|&s| s == 0x0101));
        assert!(
            left[640..16_320].iter().all(|&s| s == 0),
            "the 1 s gap is silence"
        );
        assert!(left[16_320..16_640].iter().all(|&s| s == 0x0101));
        let right = wav.channel(1);
        assert_eq!(right[..1600].iter().filter(|&&s| s != 0).count(), 0);
        assert!(right[1600..2560].iter().all(|&s| s == 0x0202));
        assert!(right[2560..].iter().all(|&s| s == 0));
        assert!((rec.duration_seconds - 1.04).abs() < 1e-9);
        // Only the WAV is left in the spool; the raw tracks are gone.
        assert_eq!(files_in(dir.path()).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_call_keeps_little_in_memory_and_mixes_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let mut r = recorder(RecordingMode::Mono, dir.path());
        r.start(t0);
        let frame_at = |i: u64| t0 + Duration::from_millis(20 * i);
        let mut max_buffered = 0;
        // 30 s: the caller talks throughout; the agent speaks 2 s in every 5 s, with a
        // clear half-way through one of its turns.
        for i in 0..1500u64 {
            r.caller_frame(frame_at(i), &[1u8; 640]);
            if (i % 250) < 100 {
                r.agent_frame(frame_at(i), &[2u8; 640]);
            }
            if i == 550 {
                r.clear_agent(frame_at(540));
            }
            max_buffered = max_buffered.max(r.buffered_bytes());
        }
        assert!(
            max_buffered <= 4 * FLUSH_BYTES,
            "held {max_buffered} bytes in memory"
        );
        let rec = r.finish().await.unwrap().unwrap();
        let wav = read_wav(&std::fs::read(&rec.path).unwrap()).unwrap();
        assert_eq!(wav.channels, 1);
        let s = wav.samples();
        assert_eq!(s.len(), 1500 * 320);
        let sample = |frame: usize| s[frame * 320 + 7];
        assert_eq!(sample(10), 0x0101 + 0x0202, "both talking");
        assert_eq!(sample(120), 0x0101, "agent quiet");
        assert_eq!(sample(530), 0x0101 + 0x0202, "before the clear");
        assert_eq!(sample(545), 0x0101, "cleared: the caller never heard it");
        assert_eq!(sample(1260), 0x0101 + 0x0202);
    }

    #[tokio::test(start_paused = true)]
    async fn off_keeps_nothing_and_a_discarded_recording_leaves_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = recorder(RecordingMode::Off, dir.path());
        r.start(Instant::now());
        r.caller_frame(Instant::now(), &[1; 640]);
        assert_eq!(r.track_lens(), (0, 0));
        assert!(r.finish().await.unwrap().is_none());

        let t0 = Instant::now();
        let mut r = recorder(RecordingMode::Mono, dir.path());
        r.start(t0);
        for i in 0..200u64 {
            r.caller_frame(t0 + Duration::from_millis(20 * i), &[3; 640]);
        }
        r.discard().await;
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unwritable_spool_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"x").unwrap();
        let t0 = Instant::now();
        let mut r = recorder(RecordingMode::Mono, &blocker);
        r.start(t0);
        for i in 0..100u64 {
            r.caller_frame(t0 + Duration::from_millis(20 * i), &[3; 640]);
        }
        assert!(matches!(r.finish().await, Err(RecorderError::Spool(_))));
    }
}
