//! Frame-level tests of a real voice session on tokio's paused clock, with fake providers.
//!
//! Timeline facts used below (FakeTts speaks 50 ms per character):
//! disclosure "This call may be recorded." = 1.30 s, opener sentence 1 = 2.05 s, "Got a minute?"
//! = 0.65 s, so the opening plays for about 4 s after `websocket:connected`.

mod support;

use std::sync::atomic::{AtomicI16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use support::*;
use talky_core::ports::llm::{LlmError, Role};
use talky_core::ports::stt::SttEvent;
use talky_voice::audio::read_wav;
use talky_voice::session::{EndReason, HangupStatus, RecordingResult, TurnRole};

const OPENER_1: &str = "Hi, it's Maya from Acme about your order.";
const OPENER_2: &str = "Got a minute?";
const OPENING_TEXT: &str =
    "This call may be recorded. Hi, it's Maya from Acme about your order. Got a minute?";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn is_clear(t: &str) -> bool {
    serde_json::from_str::<Value>(t).ok() == Some(json!({"action":"clear"}))
}

/// Connects and lets the opening play out and be committed.
async fn connect_and_finish_opening(h: &Harness) {
    h.connect();
    h.advance(Duration::from_secs(5)).await;
}

/// Advances in 10 ms steps until `cond` holds (panics after `limit`).
async fn wait_until(h: &Harness, limit: Duration, mut cond: impl FnMut(&Harness) -> bool) {
    let end = h.now() + limit;
    while !cond(h) {
        assert!(h.now() < end, "condition not reached within {limit:?}");
        h.advance_ms(10).await;
    }
}

#[tokio::test(start_paused = true)]
async fn opener_first_disclosure_then_opener_in_exact_frames() {
    let mut h = Harness::start(config(), FakeLlm::default());
    h.advance_ms(500).await;
    // Warm start: synthesised before the carrier connected, but nothing sent yet (G3).
    assert_eq!(h.tts.texts(), vec![DISCLOSURE, OPENER_1, OPENER_2]);
    assert!(h.audio().is_empty(), "no audio before websocket:connected");

    h.connect();
    let connected = h.now();
    h.advance(Duration::from_secs(6)).await;

    let audio = h.audio();
    assert!(
        audio.iter().all(|(_, f)| f.len() == 640),
        "exact 640-byte frames"
    );
    assert!(
        audio[0].0 - connected <= ms(300),
        "first frame ≤ 300 ms after connect"
    );
    let (d, o1, o2) = (h.frames_of(0), h.frames_of(1), h.frames_of(2));
    assert_eq!(d.len(), 65); // 1.30 s
    assert_eq!(o1.len(), 103); // 2.05 s, last frame zero-padded
    assert_eq!(o2.len(), 33); // 0.65 s
    assert_eq!(audio.len(), 65 + 103 + 33);
    assert!(
        d.last() <= o1.first() && o1.last() <= o2.first(),
        "disclosure, then opener"
    );
    // The first frame of the audio stream is the disclosure.
    assert_eq!(audio[0].0, d[0]);
    // Paced: about 4 s of audio is spread over ≈ 3.7 s (≤ 300 ms ahead), not dumped at once.
    let span = audio.last().unwrap().0 - audio[0].0;
    assert!(span >= ms(3600) && span <= ms(3800), "{span:?}");
    // A notify mark after each sentence.
    let notifies: Vec<Value> = h
        .texts()
        .iter()
        .filter_map(|(_, t)| serde_json::from_str::<Value>(t).ok())
        .filter(|v| v["action"] == "notify")
        .map(|v| v["payload"].clone())
        .collect();
    assert_eq!(
        notifies,
        vec![
            json!({"utterance":"u1","sentence":0}),
            json!({"utterance":"u1","sentence":1}),
            json!({"utterance":"u1","sentence":2}),
        ]
    );

    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::CallerHangup);
    let turns: Vec<(TurnRole, &str)> = report
        .turns
        .iter()
        .map(|t| (t.role, t.content.as_str()))
        .collect();
    assert_eq!(
        turns,
        vec![
            (TurnRole::Assistant, DISCLOSURE),
            (
                TurnRole::Assistant,
                "Hi, it's Maya from Acme about your order. Got a minute?"
            ),
        ]
    );
    assert!(report.hints.disclosure_delivered);
    assert!(matches!(report.recording, RecordingResult::Wav { .. }));
    assert_eq!(report.opener_ms, Some(0));
    assert!(report.counters.max_outbound_lead_ms <= 1000);
}

#[tokio::test(start_paused = true)]
async fn caller_turn_is_answered_with_streamed_audio_before_the_llm_finishes() {
    let llm = FakeLlm::with(vec![vec![
        Step::Token("Sure, "),
        Step::Token("we open at nine. "),
        Step::Wait(Duration::from_secs(2)),
        Step::Token("Anything else?"),
        Step::Done,
    ]]);
    let mut h = Harness::start(config(), llm);
    connect_and_finish_opening(&h).await;
    assert_eq!(h.llm.request_count(), 0);

    h.stt.end_of_turn("When do you open?");
    let eot = h.now();
    h.advance(Duration::from_secs(6)).await;

    // G14: the delivered disclosure + opener form the first assistant message.
    assert_eq!(
        h.llm.history(0),
        vec![
            (Role::Assistant, OPENING_TEXT.to_string()),
            (Role::User, "When do you open?".to_string())
        ]
    );
    assert!(
        !h.llm.requests.lock().unwrap()[0].tools.is_empty(),
        "agent tools offered"
    );
    let texts = h.tts.texts();
    assert_eq!(texts[3], "Sure, we open at nine.");
    assert_eq!(texts[4], "Anything else?");
    // G7: the first sentence is heard while the model is still writing.
    let llm_done = h.llm.done_at.lock().unwrap()[0] - h.t0;
    let first_reply_frame = h.frames_of(3)[0];
    assert!(
        first_reply_frame < llm_done,
        "{first_reply_frame:?} vs {llm_done:?}"
    );
    assert!(
        first_reply_frame - eot <= ms(100),
        "voice-to-voice at the server"
    );
    assert!(h.audio().iter().all(|(_, f)| f.len() == 640));
    // Sentence 2 follows sentence 1 without overlap.
    assert!(h.frames_of(3).last() < h.frames_of(4).first());

    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.latencies.len(), 1);
    let l = &report.latencies[0];
    assert!(l.first_frame_ms.is_some_and(|v| v <= 100), "{l:?}");
    assert_eq!(l.llm_ttft_ms, Some(0));
    assert!(l.tts_ttfb_ms.is_some());
    assert_eq!(report.turns.len(), 4);
    assert_eq!(
        report.turns[3].content,
        "Sure, we open at nine. Anything else?"
    );
    assert_eq!(report.turns[2].confidence, Some(0.9));
    assert_eq!(report.metrics.user_word_count, 4);
}

fn five_second_reply() -> Vec<Step> {
    vec![
        Step::Token("Sure thing. "), // 0.55 s
        Step::Token("Our office opens at nine in the morning on weekdays. "), // 2.6 s
        Step::Token("We also have late hours on Thursdays until eight."), // 2.45 s
        Step::Done,
    ]
}

#[tokio::test(start_paused = true)]
async fn barge_in_one_second_into_a_five_second_reply() {
    let mut cfg = config();
    cfg.recording = talky_voice::session::RecordingMode::Stereo;
    let llm = FakeLlm::with(vec![
        five_second_reply(),
        vec![Step::Token("Saturdays too."), Step::Done],
    ]);
    let mut h = Harness::start(cfg, llm);
    connect_and_finish_opening(&h).await;
    let connected = ms(0); // connected at t0 (the harness started and connected at once)
    h.stt.end_of_turn("When do you open?");
    wait_until(&h, ms(500), |h| !h.frames_of(3).is_empty()).await;
    let first = h.frames_of(3)[0];
    h.advance(first + Duration::from_secs(1) - h.now()).await;

    h.stt.start_of_turn();
    let trigger = h.now();
    h.advance(Duration::from_secs(2)).await;

    // A clear was sent right away, once.
    let clears: Vec<Duration> = h
        .texts()
        .into_iter()
        .filter(|(_, t)| is_clear(t))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(clears.len(), 1);
    assert!(
        clears[0] >= trigger && clears[0] - trigger <= ms(50),
        "{clears:?} {trigger:?}"
    );
    // Outbound frames stop within 200 ms (here: at once).
    let late: Vec<_> = h
        .audio()
        .into_iter()
        .filter(|(t, _)| *t > trigger + ms(20))
        .collect();
    assert!(late.is_empty(), "{} frames after the barge-in", late.len());
    // Sentence 2 had started; sentence 3 was never sent.
    assert!(!h.frames_of(4).is_empty());
    assert!(h.frames_of(5).is_empty());

    // The next request's history keeps only what was heard (G11).
    h.stt.end_of_turn("What about Saturday?");
    h.advance(Duration::from_secs(3)).await;
    assert_eq!(
        h.llm.history(1),
        vec![
            (Role::Assistant, OPENING_TEXT.to_string()),
            (Role::User, "When do you open?".to_string()),
            (
                Role::Assistant,
                "Sure thing. [interrupted by caller]".to_string()
            ),
            (Role::User, "What about Saturday?".to_string()),
        ]
    );

    h.inbound.closed();
    let report = h.finished().await;
    let cut = report
        .turns
        .iter()
        .find(|t| t.interrupted == Some(true))
        .expect("an interrupted turn");
    assert_eq!(cut.content, "Sure thing.");
    assert_eq!(report.counters.barge_ins, 1);
    assert_eq!(report.counters.clears_sent, 1);
    // H1: agent frames scheduled after the clear are not in the recording.
    let RecordingResult::Wav { path, channels, .. } = &report.recording else {
        panic!("no recording: {:?}", report.recording)
    };
    assert_eq!(*channels, 2);
    let wav = read_wav(&std::fs::read(path).unwrap()).unwrap();
    let agent = wav.channel(1);
    let at = |d: Duration| ((d - connected).as_micros() * 16 / 1000) as usize;
    assert!(agent[at(trigger - ms(400))..at(trigger - ms(20))]
        .iter()
        .all(|&s| s != 0));
    assert!(
        agent[at(trigger + ms(20))..at(trigger + ms(1000))]
            .iter()
            .all(|&s| s == 0),
        "cleared agent audio removed from the recording"
    );
}

#[tokio::test(start_paused = true)]
async fn local_vad_barges_in_but_echo_does_not() {
    let llm = FakeLlm::with(vec![five_second_reply(), five_second_reply()]);
    let mut h = Harness::start(config(), llm);
    let amp = Arc::new(AtomicI16::new(0));
    let a = amp.clone();
    h.start_caller(move |_| a.load(Ordering::Relaxed));
    connect_and_finish_opening(&h).await;

    // Reply 1: line echo (voiced, but below half the agent's level) never interrupts.
    h.stt.end_of_turn("When do you open?");
    wait_until(&h, ms(500), |h| !h.frames_of(3).is_empty()).await;
    amp.store(1200, Ordering::Relaxed); // RMS ≈ 850 ≥ 500, < 0.5 × 3000
    h.advance(Duration::from_secs(3)).await;
    amp.store(0, Ordering::Relaxed);
    h.advance(Duration::from_secs(4)).await;
    assert!(
        !h.texts().iter().any(|(_, t)| is_clear(t)),
        "echo caused a clear"
    );
    assert_eq!(h.frames_of(5).len(), 123, "reply 1 played to the end");

    // Reply 2: the caller talks over it 1 s in; 200 ms of voiced audio triggers the interrupt.
    h.stt.end_of_turn("Sorry, when?");
    wait_until(&h, ms(500), |h| !h.frames_of(6).is_empty()).await;
    let first = h.frames_of(6)[0];
    h.advance(first + Duration::from_secs(1) - h.now()).await;
    let start = h.now();
    amp.store(8000, Ordering::Relaxed);
    h.advance(Duration::from_secs(1)).await;
    let clears: Vec<Duration> = h
        .texts()
        .into_iter()
        .filter(|(_, t)| is_clear(t))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(clears.len(), 1);
    assert!(clears[0] - start <= ms(240), "{:?}", clears[0] - start);
    let last_frame = h.audio().last().unwrap().0;
    assert!(last_frame <= clears[0], "no frames after the clear");

    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.counters.barge_ins, 1);
}

#[tokio::test(start_paused = true)]
async fn agent_ends_with_the_end_call_tool_after_its_last_line_is_delivered() {
    let llm = FakeLlm::with(vec![vec![
        Step::Token("Great, you're all set. "),
        Step::Token("Goodbye!"),
        Step::Tool(
            "end_call",
            r#"{"outcome":"goal_achieved","reason":"booked"}"#,
        ),
        Step::Done,
    ]]);
    let mut h = Harness::start(config(), llm);
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("Book me for Tuesday.");
    h.advance(Duration::from_secs(10)).await;

    assert_eq!(&h.tts.texts()[3..], ["Great, you're all set.", "Goodbye!"]);
    let hangups = h.hangups();
    assert_eq!(hangups.len(), 1, "hung up through the port, once");
    // Delivery first: the last frame's playout end (+300 ms grace) precedes the hang-up.
    let frames = h.frames_of(4);
    let all_reply: Vec<Duration> = h.frames_of(3).into_iter().chain(frames).collect();
    let playout_end = all_reply[0] + ms(20) * all_reply.len() as u32;
    assert!(
        hangups[0] >= playout_end + ms(300),
        "{:?} < {:?}",
        hangups[0],
        playout_end
    );
    assert!(hangups[0] <= playout_end + ms(400));

    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::AgentEnd);
    assert_eq!(
        report.hints.end_call_outcome.as_deref(),
        Some("goal_achieved")
    );
    assert_eq!(report.hangup, HangupStatus::Done);
    assert_eq!(
        report.turns.last().unwrap().content,
        "Great, you're all set. Goodbye!"
    );
}

#[tokio::test(start_paused = true)]
async fn a_text_control_envelope_is_never_voiced_and_ends_the_call() {
    let llm = FakeLlm::with(vec![vec![
        Step::Token("Okay, bye. "),
        Step::Token("{\"action\":\"end_session\""),
        Step::Done,
    ]]);
    let mut h = Harness::start(config(), llm);
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("No thanks.");
    h.advance(Duration::from_secs(5)).await;

    let texts = h.tts.texts();
    assert_eq!(&texts[3..], ["Okay, bye."]);
    assert!(texts
        .iter()
        .all(|t| !t.contains('{') && !t.contains("action")));
    assert_eq!(h.hangups().len(), 1);
    let bye = h.frames_of(3);
    assert!(h.hangups()[0] >= bye[0] + ms(20) * bye.len() as u32 + ms(300));
    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::AgentEnd);
    assert_eq!(report.turns.last().unwrap().content, "Okay, bye.");
}

#[tokio::test(start_paused = true)]
async fn opt_out_sets_the_flag_acknowledges_and_hangs_up() {
    let mut h = Harness::start(config(), FakeLlm::default());
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("Please stop calling me.");
    h.advance(Duration::from_secs(6)).await;
    assert_eq!(h.llm.request_count(), 0, "no LLM turn for an opt-out");
    let ack = talky_voice::session::FixedLines::default().opt_out_ack;
    assert_eq!(&h.tts.texts()[3..], std::slice::from_ref(&ack));
    assert_eq!(h.hangups().len(), 1);
    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::OptOut);
    assert!(report.hints.opted_out);
    assert_eq!(report.turns.last().unwrap().content, ack);
}

#[tokio::test(start_paused = true)]
async fn opt_out_followed_by_an_immediate_hang_up_still_reports_the_opt_out() {
    let mut h = Harness::start(config(), FakeLlm::default());
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("Take me off your list.");
    h.inbound.closed();
    let report = h.finished().await;
    // The transcript delivered before the close still counts (H9 step 7 gets the flag).
    assert!(report.hints.opted_out);
    assert_eq!(report.end_reason, EndReason::CallerHangup);
    assert_eq!(
        report.turns.last().unwrap().content,
        "Take me off your list."
    );
}

#[tokio::test(start_paused = true)]
async fn caller_hang_up_persists_transcript_and_both_sides_of_the_recording() {
    let llm = FakeLlm::with(vec![vec![Step::Token("We open at nine."), Step::Done]]);
    let mut h = Harness::start(config(), llm);
    let amp = Arc::new(AtomicI16::new(0));
    let a = amp.clone();
    h.start_caller(move |_| a.load(Ordering::Relaxed));
    connect_and_finish_opening(&h).await;
    amp.store(8000, Ordering::Relaxed);
    h.advance(Duration::from_secs(1)).await;
    amp.store(0, Ordering::Relaxed);
    h.advance_ms(800).await; // quiet clears the caller-speaking flag
    h.stt.end_of_turn("When do you open?");
    h.advance(Duration::from_secs(4)).await;
    assert!(
        h.stt.audio_received() > 32_000 * 9,
        "caller audio streamed to STT"
    );
    let close_at = h.now();
    h.inbound.closed();
    let report = h.finished().await;

    assert_eq!(report.end_reason, EndReason::CallerHangup);
    assert_eq!(report.hangup, HangupStatus::NotRequested);
    let roles: Vec<TurnRole> = report.turns.iter().map(|t| t.role).collect();
    assert_eq!(
        roles,
        vec![
            TurnRole::Assistant,
            TurnRole::Assistant,
            TurnRole::User,
            TurnRole::Assistant
        ]
    );
    assert_eq!(report.metrics.turn_count, 4);
    assert!(report.metrics.full_text.contains("User: When do you open?"));
    let expected = (close_at.as_millis() / 20) as i64;
    assert!((report.counters.inbound_frames as i64 - expected).abs() <= 2);
    let RecordingResult::Wav {
        path,
        size_bytes,
        channels,
        duration_seconds,
        ..
    } = &report.recording
    else {
        panic!("no recording: {:?}", report.recording)
    };
    assert_eq!(*channels, 1);
    assert!(
        (duration_seconds - close_at.as_secs_f64()).abs() < 0.05,
        "{duration_seconds}"
    );
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() as u64, *size_bytes);
    let wav = read_wav(&bytes).unwrap();
    let s = wav.samples();
    let at = |ms: u64| (ms * 16) as usize;
    // Agent (disclosure) at 0.5 s, caller tone at 5.5 s, silence at 6.5 s.
    assert!(s[at(500)..at(520)].iter().all(|&v| v == value_of(0)));
    assert!(s[at(5_500)..at(5_520)]
        .iter()
        .any(|&v| v.unsigned_abs() > 4000));
    assert!(s[at(6_300)..at(6_320)].iter().all(|&v| v == 0));
}

#[tokio::test(start_paused = true)]
async fn stt_failure_ends_with_an_apology_a_hang_up_and_a_full_report() {
    let stt = FakeStt::default();
    *stt.fail_from.lock().unwrap() = Some(2); // the first stream works; reconnects fail
    let llm = FakeLlm::with(vec![vec![Step::Token("Happy to help."), Step::Done]]);
    let mut h = Harness::start_with(config(), llm, FakeTts::default(), stt);
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("Hello?");
    h.advance(Duration::from_secs(2)).await;
    h.stt.send(SttEvent::Error {
        message: "upstream died".into(),
        fatal: true,
    });
    h.stt.send(SttEvent::Closed {
        code: 1011,
        reason: "internal error".into(),
    });
    h.advance(Duration::from_secs(15)).await;

    let trouble = talky_voice::session::FixedLines::default().technical_trouble;
    let texts = h.tts.texts();
    assert_eq!(
        texts[texts.len() - 2..],
        [
            trouble[..trouble.find("go.").unwrap() + 3].to_string(),
            "Goodbye.".to_string()
        ]
    );
    assert_eq!(*h.stt.connects.lock().unwrap(), 4, "initial + 3 retries");
    assert_eq!(h.hangups().len(), 1);
    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::Error);
    assert!(report.hints.agent_error);
    assert_eq!(report.counters.stt_reconnects, 3);
    assert!(report.counters.stt_errors >= 4);
    assert!(report.errors.iter().any(|e| e.source == "stt"));
    assert!(report.turns.iter().any(|t| t.content == "Happy to help."));
    assert!(report
        .turns
        .last()
        .unwrap()
        .content
        .starts_with("Sorry, I'm having technical trouble"));
    assert!(matches!(report.recording, RecordingResult::Wav { .. }));
}

#[tokio::test(start_paused = true)]
async fn llm_errors_stalls_and_empty_streams_get_recovery_lines() {
    let llm = FakeLlm::with(vec![
        vec![Step::Fail(LlmError::Server {
            status: 500,
            message: "boom".into(),
        })],
        vec![Step::Stall],
        vec![Step::Done],
        vec![Step::Token("Fine."), Step::Done],
    ]);
    let mut h = Harness::start(config(), llm);
    connect_and_finish_opening(&h).await;
    let lines = talky_voice::session::FixedLines::default();

    h.stt.end_of_turn("One?");
    h.advance(Duration::from_secs(4)).await;
    assert_eq!(h.tts.texts().last().unwrap(), &lines.recovery);

    h.stt.end_of_turn("Two?");
    h.advance(Duration::from_secs(4)).await;
    assert_ne!(
        h.tts.texts().last().unwrap(),
        &lines.apology,
        "5 s deadline not yet expired"
    );
    h.advance(Duration::from_secs(5)).await;
    assert_eq!(h.tts.texts().last().unwrap(), &lines.apology);

    h.stt.end_of_turn("Three?");
    h.advance(Duration::from_secs(4)).await;
    assert_eq!(h.tts.texts().last().unwrap(), &lines.recovery);

    h.stt.end_of_turn("Four?");
    h.advance(Duration::from_secs(3)).await;
    assert_eq!(h.tts.texts().last().unwrap(), "Fine.");
    // Alternation holds through the failures (recovery lines are assistant turns).
    let hist = h.llm.history(3);
    assert!(hist.windows(2).all(|w| w[0].0 != w[1].0), "{hist:?}");

    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.counters.llm_errors, 1);
    assert_eq!(report.counters.llm_timeouts, 1);
    assert_eq!(report.counters.empty_streams, 1);
    assert_eq!(report.counters.recovery_lines, 3);
    assert!(report.errors.iter().any(|e| e.source == "llm"));
}

#[tokio::test(start_paused = true)]
async fn tts_failure_retries_once_and_the_sentence_is_skipped() {
    let tts = FakeTts::default();
    tts.fail.lock().unwrap().push("broken".into());
    let llm = FakeLlm::with(vec![vec![
        Step::Token("This is broken. But this works."),
        Step::Done,
    ]]);
    let mut h = Harness::start_with(config(), llm, tts, FakeStt::default());
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("Hi");
    h.advance(Duration::from_secs(4)).await;
    let texts = h.tts.texts();
    assert_eq!(
        &texts[3..],
        ["This is broken.", "This is broken.", "But this works."]
    );
    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.counters.tts_errors, 2);
    assert_eq!(report.turns.last().unwrap().content, "But this works.");
}

#[tokio::test(start_paused = true)]
async fn silence_nudges_twice_then_says_goodbye_and_hangs_up() {
    let mut h = Harness::start(config(), FakeLlm::default());
    h.connect();
    h.advance(Duration::from_secs(40)).await;
    let nudge = "Are you still there?".to_string();
    let goodbye = talky_voice::session::FixedLines::default().goodbye;
    let texts = h.tts.texts();
    assert_eq!(
        texts[3..],
        [
            nudge.clone(),
            nudge,
            "Thanks for your time.".into(),
            "Goodbye!".into()
        ]
    );
    // First nudge ≈ 7 s after the opening was delivered (≈ 4.3 s).
    let first_nudge = h.frames_of(3)[0];
    assert!(
        first_nudge >= ms(11_000) && first_nudge <= ms(11_600),
        "{first_nudge:?}"
    );
    assert_eq!(h.hangups().len(), 1);
    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::NoResponse);
    assert_eq!(report.counters.nudges, 2);
    assert_eq!(report.turns.last().unwrap().content, goodbye);
}

#[tokio::test(start_paused = true)]
async fn maximum_duration_says_goodbye_and_hangs_up() {
    let mut cfg = config();
    cfg.max_call_seconds = 10;
    let mut h = Harness::start(cfg, FakeLlm::default());
    h.connect();
    h.advance(Duration::from_secs(9)).await;
    assert!(h.hangups().is_empty());
    h.advance(Duration::from_secs(5)).await;
    assert_eq!(h.hangups().len(), 1);
    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::MaxDuration);
}

#[tokio::test(start_paused = true)]
async fn a_six_minute_conversation_keeps_audio_flowing_both_ways() {
    let mut h = Harness::start(config(), FakeLlm::default());
    // The caller speaks for 1 s out of every 5 s (from 5 s on, after the opening).
    h.start_caller(|i| {
        let t = i * 20;
        if t >= 5_000 && t % 5_000 < 1_000 {
            8000
        } else {
            0
        }
    });
    connect_and_finish_opening(&h).await;
    let mut turn_at = ms(6_900); // 1 s of speech + 0.9 s of quiet
    for i in 0..6 {
        h.advance(turn_at - h.now()).await;
        h.stt.end_of_turn("Tell me more.");
        turn_at += Duration::from_secs(60);
        // Like a real recogniser, the fake reports something about each burst of speech,
        // which keeps the STT watchdog (G19) quiet.
        for _ in 0..11 {
            h.advance(Duration::from_secs(5)).await;
            h.stt.send(SttEvent::Interim {
                text: String::new(),
            });
        }
        assert!(h.hangups().is_empty(), "ended early in minute {i}");
    }
    h.advance(Duration::from_secs(20)).await;
    assert!(h.hangups().is_empty());
    assert!(h.now() >= Duration::from_secs(6 * 60));
    let late_frames = h
        .audio()
        .iter()
        .filter(|(t, _)| *t > Duration::from_secs(300))
        .count();
    assert!(late_frames > 0, "agent audio late in the call");
    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::CallerHangup);
    assert_eq!(report.hints.caller_turns, 6);
    assert_eq!(
        report.counters.nudges, 0,
        "a talking caller is never nudged"
    );
    assert!(report.counters.inbound_frames > 17_000);
    assert_eq!(report.latencies.len(), 6);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_counted_and_never_breaks_the_call() {
    let mut h = Harness::start(config(), FakeLlm::default());
    h.connect();
    assert!(h.inbound.text("not json"));
    assert!(h.inbound.text(r#"{"event":"websocket:mystery"}"#));
    assert!(h.inbound.binary(Bytes::from(vec![0u8; 641])));
    assert!(h.inbound.binary(Bytes::from(vec![0u8; 64_000])));
    assert!(h.inbound.binary(Bytes::from(vec![0u8; 320])));
    assert!(h
        .inbound
        .text(r#"{"event":"websocket:dtmf","digit":"5","duration":260}"#));
    h.advance(Duration::from_secs(5)).await;
    assert!(h.audio().len() > 150, "the opener still played");
    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.counters.bad_text_messages, 1);
    assert_eq!(report.counters.bad_inbound_chunks, 3);
    assert_eq!(report.counters.dtmf_digits, 1);
    assert_eq!(report.dtmf[0].digit, "5");
    assert_eq!(report.dtmf[0].duration_ms, Some(260));
    assert_eq!(report.turns.len(), 2, "DTMF is never a turn");
}

#[tokio::test(start_paused = true)]
async fn teardown_runs_once_whatever_ends_the_call() {
    let mut h = Harness::start(config(), FakeLlm::default());
    connect_and_finish_opening(&h).await;
    h.inbound.closed();
    h.handle.as_ref().unwrap().stop(EndReason::CampaignStopped);
    h.cancel.cancel();
    let report = h.finished().await;
    assert_eq!(h.reports().len(), 1);
    assert_eq!(report.turns.len(), 2);
    // The session no longer accepts input.
    assert!(!h.inbound.binary(Bytes::from_static(&[0; 640])));
    h.advance(Duration::from_secs(5)).await;
    assert_eq!(h.reports().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn stop_hangs_up_and_persists() {
    let mut h = Harness::start(config(), FakeLlm::default());
    connect_and_finish_opening(&h).await;
    h.handle.as_ref().unwrap().stop(EndReason::CampaignStopped);
    let report = h.finished().await;
    assert_eq!(report.end_reason, EndReason::CampaignStopped);
    assert_eq!(report.hangup, HangupStatus::Done);
    assert_eq!(h.hangups().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn interrupted_disclosure_is_redelivered_once_or_the_recording_is_discarded() {
    // Interrupted during the disclosure, and again during its re-delivery → discarded.
    let mut h = Harness::start(config(), FakeLlm::default());
    h.connect();
    h.advance_ms(400).await;
    h.stt.start_of_turn();
    h.advance_ms(100).await;
    h.stt.end_of_turn("Hello?");
    wait_until(&h, Duration::from_secs(2), |h| {
        h.tts.texts().iter().filter(|t| *t == DISCLOSURE).count() == 2
            && !h.frames_of(h.tts.texts().len() - 1).is_empty()
    })
    .await;
    h.stt.start_of_turn();
    h.advance(Duration::from_secs(3)).await;
    h.inbound.closed();
    let report = h.finished().await;
    assert!(!report.hints.disclosure_delivered);
    assert!(matches!(
        report.recording,
        RecordingResult::Discarded { .. }
    ));

    // Interrupted once, re-delivered in full → kept.
    let mut h = Harness::start(config(), FakeLlm::default());
    h.connect();
    h.advance_ms(400).await;
    h.stt.start_of_turn();
    h.advance_ms(100).await;
    h.stt.end_of_turn("Hello?");
    h.advance(Duration::from_secs(6)).await;
    let texts = h.tts.texts();
    assert_eq!(
        texts.iter().filter(|t| *t == DISCLOSURE).count(),
        2,
        "{texts:?}"
    );
    h.inbound.closed();
    let report = h.finished().await;
    assert!(report.hints.disclosure_delivered);
    assert!(matches!(report.recording, RecordingResult::Wav { .. }));
}

#[tokio::test(start_paused = true)]
async fn tts_sessions_use_one_context_per_sentence() {
    let tts = FakeTts {
        sessions: true,
        ..FakeTts::default()
    };
    let llm = FakeLlm::with(vec![vec![Step::Token("One. Two."), Step::Done]]);
    let mut h = Harness::start_with(config(), llm, tts, FakeStt::default());
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("Count.");
    h.advance(Duration::from_secs(3)).await;
    let contexts = h.tts.contexts.lock().unwrap().clone();
    // The opener may have started before the session connected (HTTP); replies use contexts.
    assert!(
        contexts.contains(&"call-1-u2-s0".to_string()),
        "{contexts:?}"
    );
    assert!(
        contexts.contains(&"call-1-u2-s1".to_string()),
        "{contexts:?}"
    );
    assert_eq!(&h.tts.texts()[3..], ["One.", "Two."]);
    assert!(!h.frames_of(3).is_empty() && !h.frames_of(4).is_empty());
    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.turns.last().unwrap().content, "One. Two.");
}

#[tokio::test(start_paused = true)]
async fn v1_events_assemble_turns_and_speech_started_barges_in() {
    let llm = FakeLlm::with(vec![vec![Step::Token("Okay."), Step::Done]]);
    let mut h = Harness::start(config(), llm);
    h.connect();
    h.advance(Duration::from_secs(2)).await;
    // SpeechStarted while the opener is playing: barge-in.
    h.stt.send(SttEvent::SpeechStarted { timestamp: 1.9 });
    h.advance_ms(50).await;
    assert_eq!(h.texts().iter().filter(|(_, t)| is_clear(t)).count(), 1);
    let final_seg = |text: &str, speech_final: bool| SttEvent::Final {
        text: text.into(),
        confidence: if speech_final { 0.8 } else { 1.0 },
        words: Vec::new(),
        audio_start: 0.0,
        audio_end: 1.0,
        speech_final,
        from_finalize: false,
    };
    h.stt.send(final_seg("I'm", false));
    h.stt.send(final_seg("busy right now.", true));
    h.advance(Duration::from_secs(2)).await;
    // The disclosure was delivered (1.3 s), the opener was cut before its end.
    assert_eq!(
        h.llm.history(0),
        vec![
            (
                Role::Assistant,
                "This call may be recorded. [interrupted by caller]".to_string()
            ),
            (Role::User, "I'm busy right now.".to_string())
        ]
    );
    h.stt.send(final_seg("Call me", false));
    h.stt.send(SttEvent::UtteranceEnd {
        last_word_end: Some(1.0),
    });
    h.advance(Duration::from_secs(2)).await;
    assert_eq!(h.llm.history(1).last().unwrap().1, "Call me");
    h.inbound.closed();
    let report = h.finished().await;
    let user: Vec<_> = report
        .turns
        .iter()
        .filter(|t| t.role == TurnRole::User)
        .collect();
    assert_eq!(user[0].content, "I'm busy right now.");
    assert_eq!(user[0].confidence, Some(0.9));
    assert!(report.hints.disclosure_delivered);
}

#[tokio::test(start_paused = true)]
async fn a_returned_notify_proves_delivery_before_the_clock_does() {
    let llm = FakeLlm::with(vec![five_second_reply(), five_second_reply()]);
    let mut h = Harness::start(config(), llm);
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("When do you open?");
    // Wait until sentence 0 of the reply (u2) has been fully sent (its notify went out).
    let notify_of = |h: &Harness| {
        h.texts()
            .iter()
            .any(|(_, t)| t.contains(r#""utterance":"u2""#) && t.contains(r#""sentence":0"#))
    };
    wait_until(&h, Duration::from_secs(1), notify_of).await;
    // Vonage confirms it (earlier than the playout clock would).
    assert!(h
        .inbound
        .text(r#"{"event":"websocket:notify","payload":{"utterance":"u2","sentence":0}}"#));
    h.advance_ms(20).await;
    let first = h.frames_of(3)[0];
    assert!(
        h.now() - first < ms(550),
        "sentence 0 has not finished playing by the clock"
    );
    h.stt.start_of_turn();
    h.advance_ms(100).await;
    h.stt.end_of_turn("Hm?");
    h.advance(Duration::from_secs(1)).await;
    assert_eq!(
        h.llm.history(1)[2],
        (
            Role::Assistant,
            "Sure thing. [interrupted by caller]".to_string()
        )
    );
    h.inbound.closed();
    h.finished().await;
}

#[tokio::test(start_paused = true)]
async fn stt_watchdog_reconnects_on_voiced_silence_but_not_on_echo() {
    let llm = FakeLlm::with(vec![vec![
        Step::Token("Our office opens at nine in the morning on weekdays, and on Saturdays too."),
        Step::Done,
    ]]);
    let mut h = Harness::start(config(), llm);
    let amp = Arc::new(AtomicI16::new(0));
    let a = amp.clone();
    h.start_caller(move |_| a.load(Ordering::Relaxed));
    connect_and_finish_opening(&h).await;

    // Echo-level energy during a long agent reply never counts.
    h.stt.end_of_turn("When?");
    h.advance_ms(100).await;
    amp.store(1200, Ordering::Relaxed);
    h.advance(Duration::from_secs(3)).await;
    amp.store(0, Ordering::Relaxed);
    h.advance(Duration::from_secs(2)).await;
    assert_eq!(*h.stt.connects.lock().unwrap(), 1);

    // Voiced caller audio and a silent recogniser: dead after 6 s of voiced audio.
    let start = h.now();
    amp.store(8000, Ordering::Relaxed);
    wait_until(&h, Duration::from_secs(8), |h| {
        *h.stt.connects.lock().unwrap() == 2
    })
    .await;
    amp.store(0, Ordering::Relaxed);
    let took = h.now() - start;
    assert!(took >= ms(6_000) && took <= ms(6_700), "{took:?}");
    h.advance_ms(100).await;
    // The buffered caller audio since the last end of turn was replayed into the new stream.
    assert!(h.stt.audio_received() >= 6 * 32_000);
    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.counters.watchdog_trips, 1);
    assert_eq!(report.counters.stt_reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_reply_waits_for_a_noisy_caller_then_plays() {
    // G12 check: EndOfTurn → slow LLM (3 s) → StartOfTurn without EndOfTurn before audio.
    let slow = || {
        vec![
            Step::Wait(Duration::from_secs(3)),
            Step::Token("Here you go."),
            Step::Done,
        ]
    };
    // (a) no inbound audio to prove quiet: released at the 2.5 s cap.
    let mut h = Harness::start(config(), FakeLlm::with(vec![slow(), slow()]));
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("Question?");
    let eot = h.now();
    h.advance_ms(2_800).await;
    h.stt.start_of_turn();
    h.advance(Duration::from_secs(5)).await;
    let first = h.frames_of(3)[0] - eot;
    assert!(first >= ms(5_500) && first <= ms(5_600), "{first:?}");
    h.inbound.closed();
    h.finished().await;

    // (b) the caller goes quiet: released ≈ 0.7 s after StartOfTurn, not at the cap (G21).
    let mut h = Harness::start(config(), FakeLlm::with(vec![slow(), slow()]));
    h.start_caller(|_| 0);
    connect_and_finish_opening(&h).await;
    h.stt.end_of_turn("Question?");
    let eot = h.now();
    h.advance_ms(2_800).await;
    h.stt.start_of_turn();
    h.advance(Duration::from_secs(5)).await;
    let first = h.frames_of(3)[0] - eot;
    assert!(first >= ms(3_480) && first <= ms(3_560), "{first:?}");
    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(
        report.counters.interrupted_before_audio, 0,
        "the reply was not cancelled"
    );
}

#[tokio::test(start_paused = true)]
async fn self_echo_is_not_a_turn_and_the_interrupted_opener_is_spoken_again() {
    // G27 check: a first "caller" transcript equal to the disclosure produces no agent turn.
    let mut h = Harness::start(config(), FakeLlm::default());
    h.connect();
    h.advance_ms(1_500).await; // disclosure delivered, opener playing
    h.stt.start_of_turn();
    h.advance_ms(300).await;
    h.stt.end_of_turn(DISCLOSURE);
    h.advance(Duration::from_secs(6)).await;
    assert_eq!(h.llm.request_count(), 0, "echo produced no agent turn");
    let texts = h.tts.texts();
    assert_eq!(
        texts.iter().filter(|t| *t == OPENER_1).count(),
        2,
        "{texts:?}"
    );
    assert!(
        !h.frames_of(texts.len() - 1).is_empty(),
        "the rest was spoken again"
    );

    // "Hello?" during the opener is a real interruption and a real turn.
    h.stt.start_of_turn();
    h.stt.end_of_turn("Hello?");
    h.advance(Duration::from_secs(2)).await;
    assert_eq!(h.llm.request_count(), 1);
    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.counters.echo_suppressed, 1);
    assert_eq!(report.counters.echo_interrupts, 1);
    assert!(report
        .turns
        .iter()
        .all(|t| t.content != DISCLOSURE || t.role == TurnRole::Assistant));
}

#[tokio::test(start_paused = true)]
async fn speech_end_maps_stream_time_from_the_first_frames_start() {
    let llm = FakeLlm::with(vec![vec![Step::Token("We open at nine."), Step::Done]]);
    let mut h = Harness::start(config(), llm);
    connect_and_finish_opening(&h).await;
    // The caller's first frame arrives now and holds the 20 ms of audio that ended now, so
    // stream time 0 is 20 ms ago.
    h.start_caller(|_| 0);
    h.advance(ms(1000)).await;
    // The provider says speech ended 0.9 s into the stream, i.e. 880 ms after the first
    // frame arrived; its end-of-turn arrives 1000 ms after that frame.
    h.stt.send(SttEvent::EndOfTurn {
        turn_index: 0,
        text: "When do you open?".into(),
        confidence: 0.9,
        words: Vec::new(),
        audio_window_start: 0.1,
        audio_window_end: 0.9,
        manual: false,
    });
    h.advance(Duration::from_secs(3)).await;
    h.inbound.closed();
    let report = h.finished().await;
    assert_eq!(report.latencies.len(), 1, "{:?}", report.latencies);
    assert_eq!(report.latencies[0].endpoint_delay_ms, Some(120));
}

#[tokio::test(start_paused = true)]
async fn caller_audio_is_batched_for_the_stt_except_around_speech() {
    let llm = FakeLlm::with(vec![]);
    let mut h = Harness::start(config(), llm);
    connect_and_finish_opening(&h).await;
    // Quiet line: 80 ms messages.
    h.start_caller(|i| if (50..75).contains(&i) { 8000 } else { 0 });
    h.advance(ms(990)).await;
    let quiet = h.stt.audio_messages();
    assert!(!quiet.is_empty());
    assert!(quiet.iter().all(|&n| n == 2560), "{quiet:?}");
    // The caller speaks (frames 50..75), then is quiet: every frame goes at once, each
    // followed by a flush, for two seconds after the last voiced frame.
    h.advance(ms(1500)).await;
    let speech = h.stt.audio_messages();
    assert!(speech.len() >= 2 * 70, "{speech:?}");
    // The first voiced frame takes the partial batch before it along.
    assert!(
        speech[0].is_multiple_of(640) && (640..=2560).contains(&speech[0]),
        "{speech:?}"
    );
    assert_eq!(speech[1], 0, "{speech:?}");
    assert!(speech[2..].chunks(2).all(|p| p == [640, 0]), "{speech:?}");
    // Long after the speech the batching is back.
    h.advance(ms(3000)).await;
    let later = h.stt.audio_messages();
    assert!(later.iter().rev().take(5).all(|&n| n == 2560), "{later:?}");
}
