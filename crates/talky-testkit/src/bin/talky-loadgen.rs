//! `talky-loadgen`: N simulated callers against a running `talky serve` whose providers are
//! `talky-mock` with fixed latencies. Each caller creates a test call
//! (`POST /campaigns/{id}/test-call`), speaks the Vonage media protocol in real time (20 ms
//! frames) and says something every few seconds.
//!
//! After all calls end it reads each call's J1/J2 records back
//! (`GET /calls/{id}/metrics`, retrying briefly until the session has been persisted) and
//! prints, measured at the server: voice-to-voice latency (J1 `first_frame_ms`) p50/p99/max,
//! the server-added part (that minus the mocks' configured latencies), outbound frame pacing
//! lateness p99 (J2), the number of turns and the 10 worst turns with all their J1 fields;
//! with `--server-pid`, the server's CPU seconds and peak RSS per call. The caller's own view
//! (end of its speech → first agent frame it receives, and inter-arrival jitter) is printed
//! too, labelled client-side.

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "talky-loadgen",
    about = "Simulated callers for measuring a running Talky server"
)]
struct Args {
    /// Talky's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    base_url: String,
    /// A tenant access token (Bearer).
    #[arg(long)]
    token: String,
    /// The campaign whose agent the callers talk to.
    #[arg(long)]
    campaign: String,
    /// Concurrent calls.
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// How long each call lasts.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// The caller speaks (1 s of voice, 3 s into each period) this often; at least 4.
    #[arg(long, default_value_t = 8)]
    turn_every_secs: u64,
    /// A WAV file (PCM s16, mono or stereo, any sample rate) the caller says on each turn
    /// instead of 1 s of generated tone; converted to 16 kHz mono. Its length must leave
    /// 3 s of each turn period for the agent's reply.
    #[arg(long)]
    caller_wav: Option<std::path::PathBuf>,
    /// Silence the mock STT needs to end a turn (talky-mock --stt-end-silence-ms).
    /// Subtracted from the client-side numbers only (see --mock-latency-ms).
    #[arg(long, default_value_t = 500)]
    end_silence_ms: u64,
    /// Sum of the mocks' configured latencies on the reply path, WITHOUT the endpointing
    /// silence: talky-mock --stt-latency-ms + --llm-ttft-ms + --tts-ttfb-ms.
    ///
    /// Server-side server-added = J1 first_frame_ms − this. J1 measures from speech_end, the
    /// end of the STT's audio window mapped to wall time (Flux audio_window_end, v1 start +
    /// duration of the final result), capped at the moment the end of turn arrives.
    /// talky-mock ends that window where it detected the end of turn, i.e. after the
    /// endpointing silence, so the silence is not part of first_frame_ms (endpoint_delay_ms
    /// and stt_final_ms stay near the STT latency, not near --end-silence-ms). With
    /// --stt-latency-ms 0 (scripts/voice-bench.sh) speech_end is the end-of-turn arrival and
    /// the subtraction is exact; with a non-zero STT latency the mapped window end can differ
    /// from the arrival of the last silence frame by a frame or so (up to the 80 ms STT
    /// batch when the turn's end was not sent unbatched).
    ///
    /// Client-side server-added = client voice-to-voice − (--end-silence-ms + this): the
    /// client measures from the end of its voiced audio, before the silence.
    #[arg(long, default_value_t = 0)]
    mock_latency_ms: u64,
    /// PID of the talky server, to report its CPU seconds and peak RSS per call.
    #[arg(long)]
    server_pid: Option<u32>,
    /// How long, after the last call ends, to keep asking for metrics whose counters are
    /// still null (the session persists them just after its socket closes).
    #[arg(long, default_value_t = 10)]
    metrics_wait_secs: u64,
}

#[derive(Default)]
struct Stats {
    voice_to_voice_ms: Vec<f64>,
    jitter_ms: Vec<f64>,
    failed_calls: usize,
    frames: u64,
    /// Every call created, also those that failed afterwards.
    call_ids: Vec<String>,
    /// Caller turns spoken (1 s of voice each, followed by at least 2 s of call).
    spoken_turns: usize,
}

/// A poisoned lock only means another caller task panicked; its numbers are still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One J1 record as `GET /calls/{id}/metrics` returns it.
#[derive(Debug, Clone, Deserialize)]
struct J1Turn {
    turn_index: i64,
    speech_end: Option<String>,
    endpoint_delay_ms: Option<i64>,
    stt_final_ms: Option<i64>,
    llm_ttft_ms: Option<i64>,
    first_sentence_ms: Option<i64>,
    tts_ttfb_ms: Option<i64>,
    first_frame_ms: Option<i64>,
    speculative: bool,
}

/// The body of `GET /calls/{id}/metrics`.
#[derive(Debug, Deserialize)]
struct CallMetrics {
    counters: Option<serde_json::Value>,
    #[serde(default)]
    opener_ms: Option<i64>,
    turns: Vec<J1Turn>,
}

/// `GET /calls/{id}/metrics`, asked again every 200 ms while the counters are still null;
/// `None` if they are still null at `deadline` (one deadline for all calls, so calls whose
/// session never started cost the wait once, not once each).
async fn fetch_metrics(
    client: &reqwest::Client,
    args: &Args,
    call_id: &str,
    deadline: Instant,
) -> anyhow::Result<Option<CallMetrics>> {
    let url = format!(
        "{}/api/v1/calls/{call_id}/metrics",
        args.base_url.trim_end_matches('/')
    );
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let m: CallMetrics = client
            .get(&url)
            .bearer_auth(&args.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if m.counters.is_some() {
            return Ok(Some(m));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
    }
}

fn ms(v: Option<i64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[idx.min(v.len() - 1)]
}

/// (utime + stime in seconds, VmHWM in KiB) of a process.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / 100.0, hwm))
}

/// 1 s of a 220 Hz tone as 50 frames of 640 bytes (the default caller turn).
fn tone_frames() -> Vec<Bytes> {
    let mut pcm = Vec::with_capacity(32_000);
    for n in 0..16_000u32 {
        let t = f64::from(n) / 16_000.0;
        let s = ((2.0 * std::f64::consts::PI * 220.0 * t).sin() * 8000.0) as i16;
        pcm.extend_from_slice(&s.to_le_bytes());
    }
    pcm.chunks(640).map(Bytes::copy_from_slice).collect()
}

/// A WAV file as the caller's turn: down-mixed to mono, resampled to 16 kHz, cut into
/// 640-byte frames (the last one padded with silence).
fn wav_frames(bytes: &[u8]) -> anyhow::Result<Vec<Bytes>> {
    let wav = talky_voice::audio::read_wav(bytes).context("reading the caller WAV")?;
    let channels = usize::from(wav.channels.max(1));
    let mono: Vec<i16> = wav
        .samples()
        .chunks(channels)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
        .collect();
    let mut resampler = talky_voice::audio::Resampler::new(wav.sample_rate, 16_000)
        .context("caller WAV sample rate")?;
    let mut out = Vec::new();
    resampler.process(&mono, &mut out);
    resampler.flush(&mut out);
    anyhow::ensure!(!out.is_empty(), "the caller WAV holds no audio");
    let mut pcm = talky_voice::audio::samples_to_le_bytes(&out);
    pcm.resize(pcm.len().div_ceil(640) * 640, 0);
    Ok(pcm.chunks(640).map(Bytes::copy_from_slice).collect())
}

async fn one_call(
    args: Args,
    client: reqwest::Client,
    stats: Arc<Mutex<Stats>>,
    voice: Arc<Vec<Bytes>>,
) -> anyhow::Result<()> {
    let url = format!(
        "{}/api/v1/campaigns/{}/test-call",
        args.base_url.trim_end_matches('/'),
        args.campaign
    );
    let resp: serde_json::Value = client
        .post(&url)
        .bearer_auth(&args.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let call_id = resp["call_id"].as_str().context("no call_id")?.to_string();
    lock(&stats).call_ids.push(call_id);
    let ws_url = resp["ws_url"].as_str().context("no ws_url")?.to_string();
    // Small socket buffers: the default 128 KiB read buffer is zero-filled before every read,
    // which at hundreds of callers would cost the machine more than the server does.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(&ws_url, Some(config), true).await?;
    let (mut tx, mut rx) = ws.split();
    tx.send(Message::Text(
        r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}"#.into(),
    ))
    .await?;
    // Arrival instants of agent frames, read concurrently.
    let arrivals = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let reader = {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = rx.next().await {
                if let Message::Binary(_) = msg {
                    lock(&arrivals).push(Instant::now());
                }
            }
        })
    };
    let mut speech_ends = Vec::new();
    let silence = Bytes::from(vec![0u8; 640]);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let total_frames = args.duration_secs * 50;
    let turn_frames = args.turn_every_secs.max(4) * 50;
    let speech_frames = voice.len() as u64;
    for i in 0..total_frames {
        tick.tick().await;
        let in_turn = i % turn_frames;
        // Speak starting 3 s into each period (after the agent's line), unless the call ends
        // less than 2 s after that speech: a turn never endpointed is not a turn.
        let speech_end = 150 + speech_frames;
        let room = i - in_turn + speech_end + 100 <= total_frames;
        let frame = if room && (150..speech_end).contains(&in_turn) {
            if in_turn + 1 == speech_end {
                speech_ends.push(Instant::now());
            }
            voice[(in_turn - 150) as usize].clone()
        } else {
            silence.clone()
        };
        if tx.send(Message::Binary(frame)).await.is_err() {
            break;
        }
    }
    let _ = tx.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let arrivals = lock(&arrivals).clone();
    let mut st = lock(&stats);
    st.frames += arrivals.len() as u64;
    st.spoken_turns += speech_ends.len();
    for end in speech_ends {
        if let Some(first) = arrivals.iter().find(|a| **a > end) {
            st.voice_to_voice_ms
                .push(first.duration_since(end).as_secs_f64() * 1000.0);
        }
    }
    // Pacing: steady-state inter-arrival gaps (bursts < 2 ms and pauses > 200 ms excluded).
    for w in arrivals.windows(2) {
        let gap = w[1].duration_since(w[0]).as_secs_f64() * 1000.0;
        if (2.0..200.0).contains(&gap) {
            st.jitter_ms.push((gap - 20.0).abs());
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::new();
    let before = args.server_pid.and_then(proc_usage);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let voice = Arc::new(match &args.caller_wav {
        Some(path) => wav_frames(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )?,
        None => tone_frames(),
    });
    anyhow::ensure!(
        150 + voice.len() as u64 + 150 <= args.turn_every_secs.max(4) * 50,
        "the caller's turn ({} ms) leaves less than 3 s of a {} s turn period for the reply",
        voice.len() * 20,
        args.turn_every_secs.max(4)
    );
    let mut tasks = Vec::new();
    for i in 0..args.calls {
        let (a, c, s, v) = (args.clone(), client.clone(), stats.clone(), voice.clone());
        tasks.push(tokio::spawn(async move {
            // Stagger starts evenly over one turn period, so caller turns end at a steady
            // rate as in real traffic instead of all calls' turns ending in the same second.
            let period_ms = a.turn_every_secs.max(4) * 1000;
            tokio::time::sleep(Duration::from_millis(
                (i as u64 * period_ms) / a.calls.max(1) as u64,
            ))
            .await;
            if let Err(e) = one_call(a, c, s.clone(), v).await {
                eprintln!("call {i} failed: {e:#}");
                lock(&s).failed_calls += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut st = std::mem::take(&mut *lock(&stats));

    // Server side: the J1/J2 records of every call made.
    let mut turns: Vec<(String, J1Turn)> = Vec::new();
    let mut openers = Vec::new();
    let mut pacing_p99_ms = Vec::new();
    let mut pacing_max_ms: f64 = 0.0;
    let mut missing = 0usize;
    let deadline = Instant::now() + Duration::from_secs(args.metrics_wait_secs);
    for id in &st.call_ids {
        match fetch_metrics(&client, &args, id, deadline).await {
            Ok(Some(m)) => {
                let counter = |k: &str| {
                    m.counters
                        .as_ref()
                        .and_then(|c| c.get(k))
                        .and_then(|v| v.as_f64())
                };
                if let Some(us) = counter("pacing_jitter_p99_us") {
                    pacing_p99_ms.push(us / 1000.0);
                }
                if let Some(us) = counter("pacing_jitter_max_us") {
                    pacing_max_ms = pacing_max_ms.max(us / 1000.0);
                }
                if let Some(o) = m.opener_ms {
                    openers.push(o as f64);
                }
                turns.extend(m.turns.into_iter().map(|t| (id.clone(), t)));
            }
            Ok(None) => {
                eprintln!(
                    "call {id}: counters still null {} s after the calls ended",
                    args.metrics_wait_secs
                );
                missing += 1;
            }
            Err(e) => {
                eprintln!("call {id}: metrics not read: {e:#}");
                missing += 1;
            }
        }
    }
    // Read after the metrics so the CPU of every session's teardown is counted.
    let after = args.server_pid.and_then(proc_usage);

    println!(
        "calls: {} ({} failed), agent frames received: {}",
        args.calls, st.failed_calls, st.frames
    );
    let mut first_frame: Vec<f64> = turns
        .iter()
        .filter_map(|(_, t)| t.first_frame_ms)
        .map(|v| v as f64)
        .collect();
    let mock = args.mock_latency_ms as f64;
    let mut server_added: Vec<f64> = first_frame.iter().map(|v| v - mock).collect();
    println!(
        "server side (J1/J2 from GET /calls/{{id}}/metrics): {} of {} calls read ({missing} missing), {} turns, {} with first_frame_ms",
        st.call_ids.len() - missing,
        st.call_ids.len(),
        turns.len(),
        first_frame.len()
    );
    if turns.len() < st.spoken_turns {
        // J1 has a row only for a caller turn that produced agent audio.
        println!(
            "note: callers spoke {} turns but the server recorded {} with agent audio (a turn whose transcript is empty gets no reply: give talky-mock a --transcript line per turn)",
            st.spoken_turns,
            turns.len()
        );
    }
    let p = |v: &mut Vec<f64>, q: f64| percentile(v, q);
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    println!(
        "voice-to-voice at the server (J1 first_frame_ms = first frame written - speech_end): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p(&mut first_frame, 50.0),
        p(&mut first_frame, 99.0),
        max(&first_frame)
    );
    println!(
        "server-added at the server (first_frame_ms - {mock:.0} ms mock latency): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p(&mut server_added, 50.0),
        p(&mut server_added, 99.0),
        max(&server_added)
    );
    // Talky's own share: what is left of first_frame_ms after the provider waits Talky
    // measured itself (end-of-turn/final transcript, LLM until the first sentence, TTS until
    // its first audio byte) — i.e. the hand-offs between them and the first frame write.
    let mut own: Vec<f64> = turns
        .iter()
        .filter_map(|(_, t)| {
            Some(
                (t.first_frame_ms? - t.stt_final_ms? - t.first_sentence_ms? - t.tts_ttfb_ms?)
                    as f64,
            )
        })
        .collect();
    println!(
        "server's own time (first_frame_ms - stt_final_ms - first_sentence_ms - tts_ttfb_ms, as the server measured the providers): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} turns)",
        p(&mut own, 50.0),
        p(&mut own, 99.0),
        max(&own),
        own.len()
    );
    println!(
        "opener at the server (J1 opener_ms = first frame - websocket:connected): p50 {:.1} ms, p99 {:.1} ms ({} calls)",
        p(&mut openers, 50.0),
        p(&mut openers, 99.0),
        openers.len()
    );
    println!(
        "outbound pacing lateness at the server (J2 pacing_jitter_p99_us per call): median call p99 {:.2} ms, worst call p99 {:.2} ms, worst frame {:.2} ms",
        p(&mut pacing_p99_ms, 50.0),
        max(&pacing_p99_ms),
        pacing_max_ms
    );

    println!(
        "client side: caller turns spoken {}, followed by an agent frame {}",
        st.spoken_turns,
        st.voice_to_voice_ms.len()
    );
    let subtract = (args.end_silence_ms + args.mock_latency_ms) as f64;
    let mut added: Vec<f64> = st.voice_to_voice_ms.iter().map(|v| v - subtract).collect();
    println!(
        "voice-to-voice, client side (end of caller speech -> next agent frame received): p50 {:.1} ms, p99 {:.1} ms",
        p(&mut st.voice_to_voice_ms, 50.0),
        p(&mut st.voice_to_voice_ms, 99.0)
    );
    println!(
        "server-added, client side (minus {subtract:.0} ms endpointing + mock latency): p50 {:.1} ms, p99 {:.1} ms",
        p(&mut added, 50.0),
        p(&mut added, 99.0)
    );
    println!(
        "outbound pacing jitter, client side |gap - 20 ms|: p50 {:.2} ms, p99 {:.2} ms",
        p(&mut st.jitter_ms, 50.0),
        p(&mut st.jitter_ms, 99.0)
    );
    if let (Some((cpu0, _)), Some((cpu1, hwm))) = (before, after) {
        println!(
            "server: {:.2} CPU s total, {:.3} CPU s per call; peak RSS {} KiB ({:.0} KiB per call)",
            cpu1 - cpu0,
            (cpu1 - cpu0) / args.calls as f64,
            hwm,
            hwm as f64 / args.calls as f64
        );
    }

    // The tail, for investigation: worst first; a turn without first_frame_ms sorts first.
    turns.sort_by_key(|(_, t)| std::cmp::Reverse(t.first_frame_ms.unwrap_or(i64::MAX)));
    if !turns.is_empty() {
        println!("worst turns by J1 first_frame_ms (ms; - = not recorded):");
    }
    for (id, t) in turns.iter().take(10) {
        println!(
            "  call {id} turn {}: first_frame {} endpoint_delay {} stt_final {} llm_ttft {} first_sentence {} tts_ttfb {} speculative {} speech_end {}",
            t.turn_index,
            ms(t.first_frame_ms),
            ms(t.endpoint_delay_ms),
            ms(t.stt_final_ms),
            ms(t.llm_ttft_ms),
            ms(t.first_sentence_ms),
            ms(t.tts_ttfb_ms),
            t.speculative,
            t.speech_end.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stereo_8_khz_wav_becomes_16_khz_mono_frames() {
        // 0.5 s of 8 kHz stereo: left a constant, right its negation → the mix is silence.
        let mut pcm = Vec::new();
        for _ in 0..4000 {
            pcm.extend_from_slice(&1000i16.to_le_bytes());
            pcm.extend_from_slice(&(-1000i16).to_le_bytes());
        }
        let wav = talky_voice::audio::wav_bytes(talky_voice::audio::WavSpec::stereo(8000), &pcm);
        let frames = wav_frames(&wav).unwrap();
        assert!((25..=26).contains(&frames.len()), "{}", frames.len());
        assert!(frames.iter().all(|f| f.len() == 640));
        assert!(frames.iter().all(|f| f.iter().all(|&b| b == 0)));

        // A mono 16 kHz WAV passes through unchanged.
        let tone = tone_frames().concat();
        let wav = talky_voice::audio::wav_bytes(talky_voice::audio::WavSpec::mono(16_000), &tone);
        assert_eq!(wav_frames(&wav).unwrap().concat(), tone);
        assert!(wav_frames(b"not a wav").is_err());
    }
}
