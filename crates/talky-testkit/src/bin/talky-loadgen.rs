//! `talky-loadgen`: N simulated callers against a running `talky serve` whose providers are
//! `talky-mock` with fixed latencies. Each caller creates a test call
//! (`POST /campaigns/{id}/test-call`), speaks the Vonage media protocol in real time (20 ms
//! frames), says something every few seconds and measures, per caller turn, the time from
//! the end of its speech to the first agent frame. It prints voice-to-voice latency, the
//! server-added part (that minus the mocks' configured latencies and endpointing silence),
//! outbound pacing jitter, and — with `--server-pid` — the server's CPU seconds and peak
//! RSS per call.

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
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
    /// The caller speaks (1 s of voice) this often.
    #[arg(long, default_value_t = 8)]
    turn_every_secs: u64,
    /// Silence the mock STT needs to end a turn (talky-mock --stt-end-silence-ms).
    #[arg(long, default_value_t = 500)]
    end_silence_ms: u64,
    /// Sum of the mocks' configured latencies on the reply path (STT + LLM TTFT + TTS TTFB).
    #[arg(long, default_value_t = 0)]
    mock_latency_ms: u64,
    /// PID of the talky server, to report its CPU seconds and peak RSS per call.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Default)]
struct Stats {
    voice_to_voice_ms: Vec<f64>,
    jitter_ms: Vec<f64>,
    failed_calls: usize,
    frames: u64,
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

fn tone(ms: u64, phase: &mut f64) -> Vec<u8> {
    let n = (16 * ms) as usize;
    let mut out = Vec::with_capacity(n * 2);
    for _ in 0..n {
        let s = (phase.sin() * 8000.0) as i16;
        *phase += 2.0 * std::f64::consts::PI * 220.0 / 16000.0;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

async fn one_call(
    args: Args,
    client: reqwest::Client,
    stats: Arc<Mutex<Stats>>,
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
    let ws_url = resp["ws_url"].as_str().context("no ws_url")?.to_string();
    let (ws, _) = tokio_tungstenite::connect_async(&ws_url).await?;
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
                    arrivals.lock().unwrap().push(Instant::now());
                }
            }
        })
    };
    let start = Instant::now();
    let mut speech_ends = Vec::new();
    let mut phase = 0.0;
    let silence = Bytes::from(vec![0u8; 640]);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let total_frames = args.duration_secs * 50;
    let turn_frames = args.turn_every_secs.max(2) * 50;
    for i in 0..total_frames {
        tick.tick().await;
        let in_turn = i % turn_frames;
        // Speak for 1 s starting 3 s into each period (after the agent's line).
        let frame = if (150..200).contains(&in_turn) {
            if in_turn == 199 {
                speech_ends.push(Instant::now());
            }
            Bytes::from(tone(20, &mut phase))
        } else {
            silence.clone()
        };
        if tx.send(Message::Binary(frame)).await.is_err() {
            break;
        }
    }
    let _ = tx.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let arrivals = arrivals.lock().unwrap().clone();
    let mut st = stats.lock().unwrap();
    st.frames += arrivals.len() as u64;
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
    let _ = start;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::new();
    let before = args.server_pid.and_then(proc_usage);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut tasks = Vec::new();
    for i in 0..args.calls {
        let (a, c, s) = (args.clone(), client.clone(), stats.clone());
        tasks.push(tokio::spawn(async move {
            // Stagger starts over one second so turns do not all align.
            tokio::time::sleep(Duration::from_millis(
                (i as u64 * 1000) / a.calls.max(1) as u64,
            ))
            .await;
            if let Err(e) = one_call(a, c, s.clone()).await {
                eprintln!("call {i} failed: {e:#}");
                s.lock().unwrap().failed_calls += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let after = args.server_pid.and_then(proc_usage);
    let mut st = stats.lock().unwrap();
    let subtract = (args.end_silence_ms + args.mock_latency_ms) as f64;
    let mut added: Vec<f64> = st.voice_to_voice_ms.iter().map(|v| v - subtract).collect();
    println!(
        "calls: {} ({} failed), caller turns measured: {}, agent frames: {}",
        args.calls,
        st.failed_calls,
        st.voice_to_voice_ms.len(),
        st.frames
    );
    let p50 = percentile(&mut st.voice_to_voice_ms, 50.0);
    let p99 = percentile(&mut st.voice_to_voice_ms, 99.0);
    println!("voice-to-voice (end of caller speech -> first agent frame, client side): p50 {p50:.1} ms, p99 {p99:.1} ms");
    println!(
        "server-added (minus {subtract:.0} ms endpointing + mock latency): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&mut added, 50.0),
        percentile(&mut added, 99.0)
    );
    println!(
        "outbound pacing jitter |gap - 20 ms|: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&mut st.jitter_ms, 50.0),
        percentile(&mut st.jitter_ms, 99.0)
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
    Ok(())
}
