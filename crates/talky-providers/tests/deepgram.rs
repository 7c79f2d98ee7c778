//! The real Deepgram client against the protocol-faithful mock (`talky_testkit::deepgram`).
//!
//! The mock is driven by the audio it receives, so these tests push real PCM (tone = voice,
//! zeros = silence) and assert the events that come back. No test asserts wall-clock timing:
//! waits are bounded "until" loops, and keep-alive timing runs on tokio's paused clock.

use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc::TryRecvError;
use futures::StreamExt;
use talky_core::ports::stt::{
    Stt, SttError, SttEvent, SttEventReceiver, SttOptions, SttSendError, SttStream,
};
use talky_providers::deepgram::{DeepgramConfig, DeepgramStt};
use talky_testkit::deepgram::{
    silent_pcm, voiced_pcm, MockDeepgram, MockDeepgramConfig, MockFault,
};

const KEY: &str = "test-key";
const WAIT: Duration = Duration::from_secs(10);

fn v1(mock: &MockDeepgram) -> DeepgramConfig {
    DeepgramConfig::v1(KEY).with_base_url(mock.base_url())
}

fn flux(mock: &MockDeepgram) -> DeepgramConfig {
    DeepgramConfig::flux(KEY).with_base_url(mock.base_url())
}

async fn connect(config: DeepgramConfig) -> Result<SttStream, SttError> {
    DeepgramStt::new(config)?
        .connect(SttOptions::default())
        .await
}

/// Pushes PCM as 20 ms frames, as the voice session does.
fn push(stream: &SttStream, pcm: &[u8]) {
    for frame in pcm.chunks(640) {
        stream
            .audio
            .send_audio(Bytes::copy_from_slice(frame))
            .expect("stream open");
    }
}

/// Collects events until one matches `stop` (included). Fails the test on timeout or when the
/// stream ends first.
async fn collect_until(
    events: &mut SttEventReceiver,
    stop: impl Fn(&SttEvent) -> bool,
) -> Vec<SttEvent> {
    let mut got = Vec::new();
    let result = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            let done = stop(&event);
            got.push(event);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    match result {
        Ok(true) => got,
        Ok(false) => panic!("stream ended before the expected event; got {got:?}"),
        Err(_) => panic!("timed out waiting for the expected event; got {got:?}"),
    }
}

fn position(events: &[SttEvent], f: impl Fn(&SttEvent) -> bool) -> usize {
    events
        .iter()
        .position(f)
        .unwrap_or_else(|| panic!("event missing in {events:?}"))
}

#[tokio::test]
async fn v1_audio_in_transcript_out() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig::with_transcripts(["Hello there."])).await;
    let mut stream = connect(v1(&mock)).await.expect("connect");
    assert!(!stream.info.turn_events);
    assert_eq!(stream.info.provider, "deepgram");
    assert!(stream.info.request_id.is_some(), "dg-request-id header");

    let mut sent = silent_pcm(200);
    sent.extend(voiced_pcm(600));
    sent.extend(silent_pcm(1200));
    push(&stream, &sent);

    let events = collect_until(&mut stream.events, |e| {
        matches!(e, SttEvent::UtteranceEnd { .. })
    })
    .await;
    let started = position(&events, |e| matches!(e, SttEvent::SpeechStarted { .. }));
    let interim = position(&events, |e| matches!(e, SttEvent::Interim { .. }));
    let fin = position(&events, |e| matches!(e, SttEvent::Final { .. }));
    assert!(started < interim && interim < fin, "{events:?}");
    match &events[fin] {
        SttEvent::Final {
            text,
            words,
            speech_final,
            from_finalize,
            audio_start,
            audio_end,
            ..
        } => {
            assert_eq!(text, "Hello there.");
            assert_eq!(words.len(), 2);
            assert_eq!(words[0].punctuated.as_deref(), Some("Hello"));
            assert!(*speech_final && !*from_finalize);
            assert!((audio_start - 0.2).abs() < 1e-6, "{audio_start}");
            assert!(*audio_end > 0.8, "{audio_end}");
        }
        other => panic!("{other:?}"),
    }
    if let SttEvent::SpeechStarted { timestamp } = events[started] {
        assert!((timestamp - 0.2).abs() < 1e-6, "{timestamp}");
    }

    // Graceful close: CloseStream → Metadata → Closed(1000), no error.
    stream.audio.close().unwrap();
    let tail = collect_until(&mut stream.events, |e| matches!(e, SttEvent::Closed { .. })).await;
    assert!(
        tail.iter().any(
            |e| matches!(e, SttEvent::Metadata { duration: Some(d), .. } if (*d - 2.0).abs() < 1e-6)
        ),
        "{tail:?}"
    );
    assert!(!tail.iter().any(SttEvent::is_fatal_error), "{tail:?}");
    assert!(matches!(
        tail.last(),
        Some(SttEvent::Closed { code: 1000, .. })
    ));
    assert!(
        stream.events.next().await.is_none(),
        "Closed is the last event"
    );

    let record = mock.last_connection().unwrap();
    assert_eq!(record.path, "/v1/listen");
    assert_eq!(record.authorization.as_deref(), Some("Token test-key"));
    assert_eq!(record.param("model"), Some("nova-3"));
    assert_eq!(record.param("encoding"), Some("linear16"));
    assert_eq!(record.param("sample_rate"), Some("16000"));
    assert_eq!(record.param("interim_results"), Some("true"));
    assert_eq!(record.param("utterance_end_ms"), Some("1000"));
    assert_eq!(record.param("vad_events"), Some("true"));
    // Every byte arrived, in order, batched into ≥ 80 ms messages.
    assert_eq!(record.audio, sent);
    assert!(
        record.binary_messages <= sent.len() / 2560 + 1,
        "{}",
        record.binary_messages
    );
    assert_eq!(record.control_types(), vec!["CloseStream"]);
    assert_eq!(mock.remaining_transcripts(), 0);
}

#[tokio::test]
async fn flux_audio_in_turn_events_out() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig::with_transcripts([
        "yes please",
        "goodbye",
    ]))
    .await;
    let mut stream = connect(flux(&mock)).await.expect("connect");
    assert!(stream.info.turn_events);
    assert_eq!(stream.info.provider, "deepgram-flux");

    // Voice, then nothing: the client's real-time silence keeps the audio clock running, so
    // the mock sees the pause and ends the turn.
    push(&stream, &voiced_pcm(600));
    let events = collect_until(&mut stream.events, |e| {
        matches!(e, SttEvent::EndOfTurn { .. })
    })
    .await;
    assert!(
        matches!(&events[0], SttEvent::Connected { request_id: Some(id) } if Some(id) == stream.info.request_id.as_ref()),
        "{events:?}"
    );
    let start = position(&events, |e| {
        matches!(e, SttEvent::StartOfTurn { turn_index: 0, .. })
    });
    let eager = position(
        &events,
        |e| matches!(e, SttEvent::EagerEndOfTurn { turn_index: 0, text, .. } if text == "yes please"),
    );
    let end = events.len() - 1;
    assert!(start < eager && eager < end, "{events:?}");
    match &events[end] {
        SttEvent::EndOfTurn {
            turn_index,
            text,
            words,
            confidence,
            manual,
            audio_window_start,
            ..
        } => {
            assert_eq!(*turn_index, 0);
            assert_eq!(text, "yes please");
            assert_eq!(words.len(), 2);
            assert!(*confidence >= 0.7);
            assert!(!manual);
            assert!(audio_window_start.abs() < 1e-6);
        }
        other => panic!("{other:?}"),
    }

    push(&stream, &voiced_pcm(300));
    let events = collect_until(&mut stream.events, |e| {
        matches!(e, SttEvent::EndOfTurn { .. })
    })
    .await;
    assert!(events
        .iter()
        .any(|e| matches!(e, SttEvent::StartOfTurn { turn_index: 1, .. })));
    assert!(matches!(
        events.last(),
        Some(SttEvent::EndOfTurn { turn_index: 1, text, .. }) if text == "goodbye"
    ));

    let record = mock.last_connection().unwrap();
    assert_eq!(record.path, "/v2/listen");
    assert_eq!(record.authorization.as_deref(), Some("Token test-key"));
    assert_eq!(record.param("model"), Some("flux-general-en"));
    assert_eq!(record.param("eot_threshold"), Some("0.7"));
    assert_eq!(record.param("eager_eot_threshold"), Some("0.5"));
    assert_eq!(record.param("eot_timeout_ms"), Some("3000"));
    // More audio arrived than we pushed: the silence filler.
    assert!(record.audio_bytes > 900 * 32, "{}", record.audio_bytes);
    assert!(record.control.is_empty(), "Flux has no KeepAlive message");
}

#[tokio::test]
async fn wrong_key_is_a_clean_401() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig::default()).await;
    let err = connect(DeepgramConfig::v1("wrong").with_base_url(mock.base_url()))
        .await
        .expect_err("must be rejected");
    match &err {
        SttError::Rejected { status, body } => {
            assert_eq!(*status, 401);
            assert!(body.contains("INVALID_AUTH"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_auth() && !err.is_transient());
    let record = mock.last_connection().unwrap();
    assert_eq!(record.authorization.as_deref(), Some("Token wrong"));
    assert_eq!(record.rejected, Some(401));
}

#[tokio::test]
async fn upgrade_500_is_an_error_and_the_next_connect_works() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig {
        fault: MockFault::RejectUpgrade { status: 500 },
        ..MockDeepgramConfig::default()
    })
    .await;
    let err = connect(flux(&mock)).await.expect_err("500");
    assert!(
        matches!(err, SttError::Rejected { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());

    mock.set_fault(MockFault::None);
    let mut stream = connect(flux(&mock)).await.expect("second attempt");
    let first = collect_until(&mut stream.events, |_| true).await;
    assert!(matches!(first[0], SttEvent::Connected { .. }));
    assert_eq!(mock.connection_count(), 2);
}

#[tokio::test]
async fn unknown_parameter_is_a_400() {
    // v1 parameters sent to the Flux endpoint: the provider rejects the upgrade.
    let mock = MockDeepgram::spawn(MockDeepgramConfig::default()).await;
    let config = v1(&mock).with_base_url(format!("{}/v2/listen", mock.base_url()));
    let err = connect(config).await.expect_err("400");
    match err {
        SttError::Rejected { status: 400, body } => assert!(body.contains("channels"), "{body}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_close_1011_becomes_error_then_closed() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig {
        fault: MockFault::CloseAfter {
            after: Duration::from_millis(150),
            code: 1011,
        },
        ..MockDeepgramConfig::default()
    })
    .await;
    let mut stream = connect(v1(&mock)).await.expect("connect");
    push(&stream, &silent_pcm(100));
    let events = collect_until(&mut stream.events, |e| matches!(e, SttEvent::Closed { .. })).await;
    let n = events.len();
    assert!(n >= 2, "{events:?}");
    assert!(
        matches!(&events[n - 2], SttEvent::Error { fatal: true, message } if message.contains("1011")),
        "{events:?}"
    );
    assert!(matches!(
        &events[n - 1],
        SttEvent::Closed { code: 1011, .. }
    ));
    assert_eq!(events.iter().filter(|e| e.is_fatal_error()).count(), 1);
    assert!(stream.events.next().await.is_none());
    // The sender notices the stream is gone.
    assert_eq!(
        stream.audio.send_audio(Bytes::from_static(&[0, 0])),
        Err(SttSendError::Closed)
    );
}

#[tokio::test]
async fn kicked_connection_is_reported() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig::default()).await;
    let mut stream = connect(flux(&mock)).await.expect("connect");
    collect_until(&mut stream.events, |e| {
        matches!(e, SttEvent::Connected { .. })
    })
    .await;
    mock.kick_all(1011, "provider crashed");
    let events = collect_until(&mut stream.events, |e| matches!(e, SttEvent::Closed { .. })).await;
    assert!(events.iter().any(SttEvent::is_fatal_error), "{events:?}");
    assert!(matches!(
        events.last(),
        Some(SttEvent::Closed { code: 1011, reason }) if reason == "provider crashed"
    ));
}

#[tokio::test]
async fn provider_error_message_is_fatal() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig {
        fault: MockFault::ErrorAfter {
            after: Duration::from_millis(100),
        },
        ..MockDeepgramConfig::default()
    })
    .await;
    let mut stream = connect(flux(&mock)).await.expect("connect");
    let events = collect_until(&mut stream.events, |e| matches!(e, SttEvent::Closed { .. })).await;
    let errors: Vec<_> = events.iter().filter(|e| e.is_fatal_error()).collect();
    assert_eq!(errors.len(), 1, "{events:?}");
    assert!(
        matches!(errors[0], SttEvent::Error { message, .. } if message.contains("INTERNAL_SERVER_ERROR")),
        "{events:?}"
    );
    assert!(matches!(
        events.last(),
        Some(SttEvent::Closed { code: 1011, .. })
    ));
}

#[tokio::test]
async fn idle_v1_stream_without_keepalive_is_closed_by_the_provider() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..MockDeepgramConfig::default()
    })
    .await;
    let config = DeepgramConfig {
        keepalive_interval: Duration::from_secs(3600),
        ..v1(&mock)
    };
    let mut stream = connect(config).await.expect("connect");
    let events = collect_until(&mut stream.events, |e| matches!(e, SttEvent::Closed { .. })).await;
    assert!(events.iter().any(SttEvent::is_fatal_error), "{events:?}");
    assert!(matches!(
        events.last(),
        Some(SttEvent::Closed { code: 1011, reason }) if reason.contains("NET-0001")
    ));
}

/// G22 wiring with a short injected interval (the exact 5 s schedule is unit-tested on the
/// pure `KeepAlive` scheduler): KeepAlive flows while idle and keeps the provider from closing
/// the stream; audio suppresses it.
#[tokio::test]
async fn v1_keepalive_only_while_idle_and_prevents_idle_close() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig {
        idle_timeout: Some(Duration::from_millis(700)),
        ..MockDeepgramConfig::default()
    })
    .await;
    let config = DeepgramConfig {
        keepalive_interval: Duration::from_millis(250),
        ..v1(&mock)
    };
    let mut stream = connect(config).await.expect("connect");

    // Idle for well over the provider's idle timeout.
    assert!(
        mock.wait_for(WAIT, |c| c[0]
            .control_types()
            .iter()
            .filter(|t| *t == "KeepAlive")
            .count()
            >= 6)
            .await
    );
    let idle = mock.last_connection().unwrap();
    assert_eq!(
        idle.server_close, None,
        "provider never closed for idleness"
    );
    assert!(idle.control_types().iter().all(|t| t == "KeepAlive"));

    // Audio every 20 ms for 1 s: at most one KeepAlive that was already due when it started.
    let before = idle.control_count("KeepAlive");
    for _ in 0..50 {
        push(&stream, &silent_pcm(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let busy = mock.last_connection().unwrap();
    assert!(
        busy.control_count("KeepAlive") <= before + 1,
        "{before} → {}",
        busy.control_count("KeepAlive")
    );
    assert_eq!(busy.server_close, None);
    assert!(matches!(stream.events.try_recv(), Err(TryRecvError::Empty)));
}

#[tokio::test]
async fn flux_silence_keepalive_prevents_idle_close() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig {
        idle_timeout: Some(Duration::from_millis(400)),
        ..MockDeepgramConfig::default()
    })
    .await;
    let config = DeepgramConfig {
        flux_silence_after: Duration::from_millis(50),
        flux_silence_chunk: Duration::from_millis(40),
        ..flux(&mock)
    };
    let mut stream = connect(config).await.expect("connect");
    // Wait until well past the idle timeout's worth of silence has been streamed.
    assert!(
        mock.wait_for(WAIT, |c| c.last().is_some_and(|c| c.binary_messages >= 20))
            .await
    );
    let record = mock.last_connection().unwrap();
    assert_eq!(record.server_close, None);
    assert!(record.audio.iter().all(|b| *b == 0), "digital silence");
    assert_eq!(record.audio_bytes % 1280, 0, "whole 40 ms chunks");
    let first = collect_until(&mut stream.events, |_| true).await;
    assert!(matches!(first[0], SttEvent::Connected { .. }));
    assert!(
        matches!(stream.events.try_recv(), Err(TryRecvError::Empty)),
        "nothing else, still open"
    );
}

#[tokio::test]
async fn v1_finalize_flushes_the_open_segment() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig::with_transcripts(["one two three"])).await;
    let mut stream = connect(v1(&mock)).await.expect("connect");
    push(&stream, &voiced_pcm(400));
    stream.audio.finalize().unwrap();
    let events = collect_until(&mut stream.events, |e| matches!(e, SttEvent::Final { .. })).await;
    assert!(matches!(
        events.last(),
        Some(SttEvent::Final { text, from_finalize: true, .. }) if text == "one two three"
    ));
    let record = mock.last_connection().unwrap();
    assert_eq!(record.control_types(), vec!["Finalize"]);
    // Finalize went out after all audio pushed before it.
    assert_eq!(record.audio_bytes, 400 * 32);
}

#[tokio::test]
async fn flux_finalize_forces_end_of_turn() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig::with_transcripts(["stop"])).await;
    let mut stream = connect(flux(&mock)).await.expect("connect");
    push(&stream, &voiced_pcm(300));
    stream.audio.finalize().unwrap();
    let events = collect_until(&mut stream.events, |e| {
        matches!(e, SttEvent::EndOfTurn { .. })
    })
    .await;
    assert!(matches!(
        events.last(),
        Some(SttEvent::EndOfTurn { text, manual: true, .. }) if text == "stop"
    ));
    assert_eq!(
        mock.last_connection().unwrap().control_types(),
        vec!["ForceEndTurn"]
    );
}

#[tokio::test]
async fn silent_provider_sends_nothing_but_keeps_the_socket() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig {
        fault: MockFault::Silent,
        ..MockDeepgramConfig::with_transcripts(["never"])
    })
    .await;
    let mut stream = connect(flux(&mock)).await.expect("connect");
    push(&stream, &voiced_pcm(1000));
    assert!(mock.wait_for(WAIT, |c| c[0].audio_bytes >= 32_000).await);
    assert!(
        matches!(stream.events.try_recv(), Err(TryRecvError::Empty)),
        "no events, not closed"
    );
    assert!(mock.last_connection().unwrap().sent.is_empty());
    assert_eq!(mock.remaining_transcripts(), 1);
}

#[tokio::test]
async fn dropping_the_stream_sends_close_stream() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig::default()).await;
    let stream = connect(v1(&mock)).await.expect("connect");
    push(&stream, &silent_pcm(100));
    drop(stream);
    assert!(
        mock.wait_for(WAIT, |c| c[0]
            .control
            .iter()
            .any(|m| m.contains("CloseStream")))
            .await
    );
    assert!(mock.wait_for(WAIT, |c| c[0].server_close.is_some()).await);
    assert_eq!(mock.last_connection().unwrap().audio_bytes, 100 * 32);
}

#[tokio::test]
async fn mock_latency_delays_but_keeps_order() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig {
        latency: Duration::from_millis(150),
        ..MockDeepgramConfig::with_transcripts(["late answer"])
    })
    .await;
    let mut stream = connect(v1(&mock)).await.expect("connect");
    let mut sent = voiced_pcm(300);
    sent.extend(silent_pcm(1100));
    push(&stream, &sent);
    let events = collect_until(&mut stream.events, |e| {
        matches!(e, SttEvent::UtteranceEnd { .. })
    })
    .await;
    assert!(
        matches!(events[0], SttEvent::SpeechStarted { .. }),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, SttEvent::Final { text, .. } if text == "late answer")));
}

#[tokio::test]
async fn network_failures_are_errors_not_panics() {
    // Nothing listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let err = connect(DeepgramConfig::v1(KEY).with_base_url(format!("ws://127.0.0.1:{port}")))
        .await
        .expect_err("refused");
    assert!(matches!(err, SttError::Connect(_)), "{err:?}");

    // wss against a peer that is not TLS: the rustls path runs and fails cleanly.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let err = connect(DeepgramConfig::flux(KEY).with_base_url(format!("wss://{addr}")))
        .await
        .expect_err("tls must fail");
    assert!(matches!(err, SttError::Connect(_)), "{err:?}");

    // A peer that accepts TCP and never answers the upgrade: connect timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = DeepgramConfig {
        connect_timeout: Duration::from_millis(200),
        ..DeepgramConfig::v1(KEY).with_base_url(format!("ws://{addr}"))
    };
    let err = connect(config).await.expect_err("timeout");
    assert_eq!(err, SttError::Timeout { after_ms: 200 });
    hold.abort();

    // Invalid configuration never reaches the network.
    let err = DeepgramStt::new(DeepgramConfig::v1(KEY).with_base_url("api.deepgram.com"))
        .expect_err("no scheme");
    assert!(matches!(err, SttError::Config(_)));
}

#[tokio::test]
async fn audio_sent_now_skips_the_batch() {
    let mock = MockDeepgram::spawn(MockDeepgramConfig::default()).await;
    let stream = connect(v1(&mock)).await.expect("connect");
    let sent = voiced_pcm(200);
    for frame in sent.chunks(640) {
        stream
            .audio
            .send_audio_now(Bytes::copy_from_slice(frame))
            .expect("stream open");
    }
    stream.audio.close().unwrap();
    let mut events = stream.events;
    collect_until(&mut events, |e| matches!(e, SttEvent::Closed { .. })).await;
    let record = mock.last_connection().unwrap();
    assert_eq!(record.audio, sent);
    // One message per 20 ms frame: nothing waited to fill a 40 ms batch.
    assert_eq!(record.binary_messages, sent.len() / 640);
}
