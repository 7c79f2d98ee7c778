//! The Cartesia client (WebSocket sessions and the HTTP fallback) against the
//! protocol-faithful mock (`talky_testkit::cartesia`).

use std::time::Duration;

use futures::StreamExt;
use talky_core::ports::tts::{
    Tts, TtsChunk, TtsContextAudio, TtsEncoding, TtsError, TtsRequest, TtsSessionOptions,
};
use talky_providers::cartesia::{CartesiaConfig, CartesiaTts};
use talky_testkit::cartesia::{
    mock_audio, mock_audio_encoded, CartesiaFault, CartesiaLogEntry, MockCartesia,
    MockCartesiaConfig,
};

fn client(mock: &MockCartesia) -> CartesiaTts {
    CartesiaTts::new(CartesiaConfig {
        base_url: mock.base_url(),
        api_key: "test-key".into(),
        voice_id: "a0e99841-438c-4a64-b679-ae501e7d6091".into(),
        ..CartesiaConfig::default()
    })
    .expect("valid config")
}

/// Reads a context's audio to its end: (bytes, error if any). Checks sample alignment.
async fn drain(audio: &mut TtsContextAudio) -> (Vec<u8>, Option<TtsError>) {
    let mut bytes = Vec::new();
    let wait = async {
        while let Some(item) = audio.next().await {
            match item {
                Ok(chunk) => {
                    check_chunk(&chunk, 16_000);
                    bytes.extend_from_slice(&chunk.audio);
                }
                Err(e) => return Some(e),
            }
        }
        None
    };
    let err = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("context must end");
    (bytes, err)
}

fn check_chunk(chunk: &TtsChunk, rate: u32) {
    assert_eq!(chunk.sample_rate, rate);
    assert_eq!(chunk.encoding, TtsEncoding::PcmS16le);
    assert!(!chunk.audio.is_empty());
    assert_eq!(chunk.audio.len() % 2, 0, "chunks hold whole s16 samples");
}

/// Waits (bounded) for a condition that another task makes true.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn websocket_audio_equals_the_mock_output() {
    let mock = MockCartesia::spawn(MockCartesiaConfig {
        odd_chunks: true,
        ..MockCartesiaConfig::default()
    })
    .await;
    let tts = client(&mock);
    let session = tts
        .open_session(TtsSessionOptions::default())
        .await
        .expect("session");
    let mut ctx = session.open_context("call-7-u1").unwrap();
    ctx.input.send("Hello there.").unwrap();
    ctx.input.send("How are you today?").unwrap();
    ctx.input.finish().unwrap();
    let (audio, err) = drain(&mut ctx.audio).await;
    assert_eq!(err, None);
    let mut expected = mock_audio("Hello there.", 16_000, 60);
    expected.extend(mock_audio("How are you today?", 16_000, 60));
    assert_eq!(audio.len(), (12 + 18) * 960 * 2, "60 ms per character");
    assert!(
        audio == expected,
        "audio differs from the mock's deterministic output"
    );

    assert_eq!(
        mock.requests_for("call-7-u1"),
        vec![
            ("Hello there. ".to_string(), true),
            ("How are you today? ".to_string(), true),
            (String::new(), false),
        ]
    );
    let log = mock.log();
    assert!(matches!(
        &log[0],
        CartesiaLogEntry::Connected { auth_in_query: false, version, .. } if version == "2025-04-16"
    ));
    let body = log
        .iter()
        .find_map(|e| match e {
            CartesiaLogEntry::Request { body, .. } => Some(body.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(body["model_id"], "sonic-3");
    assert_eq!(body["voice"]["mode"], "id");
    assert_eq!(body["voice"]["id"], "a0e99841-438c-4a64-b679-ae501e7d6091");
    assert_eq!(body["language"], "en");
    assert_eq!(body["output_format"]["container"], "raw");
    assert_eq!(body["output_format"]["encoding"], "pcm_s16le");
    assert_eq!(body["output_format"]["sample_rate"], 16000);
    assert_eq!(body["context_id"], "call-7-u1");
    assert_eq!(body["continue"], true);
}

#[tokio::test]
async fn several_utterances_share_one_socket() {
    let mock = MockCartesia::spawn(MockCartesiaConfig::default()).await;
    let tts = client(&mock);
    let session = tts
        .open_session(TtsSessionOptions::default())
        .await
        .unwrap();

    // Two contexts in flight at once: audio is routed by context id.
    let mut a = session.open_context("c-u1").unwrap();
    let mut b = session.open_context("c-u2").unwrap();
    a.input.send("First.").unwrap();
    b.input.send_last("Second one.").unwrap();
    a.input.finish().unwrap();
    let (audio_a, err_a) = drain(&mut a.audio).await;
    let (audio_b, err_b) = drain(&mut b.audio).await;
    assert_eq!((err_a, err_b), (None, None));
    assert!(audio_a == mock_audio("First.", 16_000, 60));
    assert!(audio_b == mock_audio("Second one.", 16_000, 60));

    // And a later utterance on the same socket.
    let mut c = session.open_context("c-u3").unwrap();
    c.input.send_last("Bye.").unwrap();
    let (audio_c, err_c) = drain(&mut c.audio).await;
    assert_eq!(err_c, None);
    assert!(audio_c == mock_audio("Bye.", 16_000, 60));
    assert_eq!(mock.connection_count(), 1);
}

#[tokio::test]
async fn cancel_stops_audio_and_late_chunks_are_dropped() {
    let mock = MockCartesia::spawn(MockCartesiaConfig {
        inter_chunk_delay: Duration::from_millis(20),
        late_chunks_after_cancel: 2,
        ..MockCartesiaConfig::default()
    })
    .await;
    let tts = client(&mock);
    let session = tts
        .open_session(TtsSessionOptions::default())
        .await
        .unwrap();
    let long = "This is a long answer that the caller is going to interrupt very soon, \
                well before it reaches the end of the sentence.";
    let full = mock_audio(long, 16_000, 60).len();

    let mut ctx = session.open_context("c-u1").unwrap();
    ctx.input.send_last(long).unwrap();
    let first = ctx.audio.next().await.expect("audio").expect("chunk");
    check_chunk(&first, 16_000);
    ctx.input.cancel();
    // The stream ends at once: no further audio is delivered after cancel.
    assert!(ctx.audio.next().await.is_none());
    assert!(ctx.input.is_cancelled());

    eventually("the mock received the cancel", || {
        mock.cancels() == vec!["c-u1".to_string()]
    })
    .await;
    // The provider stopped generating (it would have sent `full` bytes otherwise).
    let sent = mock.audio_bytes_sent("c-u1");
    assert!(sent < full, "sent {sent} of {full} bytes");

    // The session survives; the late chunks of c-u1 do not leak into the next context.
    let mut next = session.open_context("c-u2").unwrap();
    next.input.send_last("Sorry, go ahead.").unwrap();
    let (audio, err) = drain(&mut next.audio).await;
    assert_eq!(err, None);
    assert!(audio == mock_audio("Sorry, go ahead.", 16_000, 60));
}

#[tokio::test]
async fn dropping_the_audio_stream_cancels_the_context() {
    let mock = MockCartesia::spawn(MockCartesiaConfig {
        inter_chunk_delay: Duration::from_millis(20),
        ..MockCartesiaConfig::default()
    })
    .await;
    let tts = client(&mock);
    let session = tts
        .open_session(TtsSessionOptions::default())
        .await
        .unwrap();
    let mut ctx = session.open_context("c-u9").unwrap();
    ctx.input
        .send_last("A sentence long enough to still be playing when we hang up.")
        .unwrap();
    ctx.audio.next().await.expect("audio").expect("chunk");
    drop(ctx.audio);
    eventually("cancel after drop", || {
        mock.cancels() == vec!["c-u9".to_string()]
    })
    .await;
}

#[tokio::test]
async fn context_failures_are_typed() {
    let mock = MockCartesia::spawn(MockCartesiaConfig::default()).await;
    let tts = client(&mock);
    let session = tts
        .open_session(TtsSessionOptions::default())
        .await
        .unwrap();

    mock.set_fault(CartesiaFault::Error {
        status: 500,
        message: "generation backend unavailable".into(),
    });
    let mut ctx = session.open_context("c-u1").unwrap();
    ctx.input.send_last("Hello.").unwrap();
    let (audio, err) = drain(&mut ctx.audio).await;
    assert!(audio.is_empty());
    match err {
        Some(TtsError::Provider {
            status_code: Some(500),
            message,
        }) => assert!(
            message.contains("generation backend unavailable"),
            "{message}"
        ),
        other => panic!("unexpected {other:?}"),
    }

    mock.set_fault(CartesiaFault::EmptyDone);
    let mut ctx = session.open_context("c-u2").unwrap();
    ctx.input.send_last("Hello.").unwrap();
    assert_eq!(
        drain(&mut ctx.audio).await,
        (Vec::new(), Some(TtsError::Empty))
    );

    // A context error does not kill the socket.
    mock.set_fault(CartesiaFault::None);
    let mut ctx = session.open_context("c-u3").unwrap();
    ctx.input.send_last("Hello.").unwrap();
    let (audio, err) = drain(&mut ctx.audio).await;
    assert_eq!(err, None);
    assert!(audio == mock_audio("Hello.", 16_000, 60));
    assert!(!session.is_closed());
}

#[tokio::test]
async fn socket_dropped_mid_stream_closes_the_session() {
    let mock = MockCartesia::spawn(MockCartesiaConfig {
        fault: CartesiaFault::CloseAfterChunks(2),
        ..MockCartesiaConfig::default()
    })
    .await;
    let tts = client(&mock);
    let session = tts
        .open_session(TtsSessionOptions::default())
        .await
        .unwrap();
    let mut ctx = session.open_context("c-u1").unwrap();
    ctx.input
        .send_last("A sentence that will be cut off.")
        .unwrap();
    let (audio, err) = drain(&mut ctx.audio).await;
    assert!(matches!(err, Some(TtsError::Closed(_))), "{err:?}");
    assert!(audio.len() <= 2 * 3200);
    eventually("session reports closed", || session.is_closed()).await;
    assert!(matches!(
        session.open_context("c-u2"),
        Err(TtsError::Closed(_))
    ));
}

#[tokio::test]
async fn websocket_auth_is_checked() {
    let mock = MockCartesia::spawn(MockCartesiaConfig::default()).await;
    let bad = CartesiaTts::new(CartesiaConfig {
        api_key: "nope".into(),
        ..client(&mock).config().clone()
    })
    .unwrap();
    match bad.open_session(TtsSessionOptions::default()).await {
        Err(TtsError::Unauthorized { status: 401, .. }) => {}
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }

    let query = CartesiaTts::new(CartesiaConfig {
        auth_in_query: true,
        ..client(&mock).config().clone()
    })
    .unwrap();
    let session = query
        .open_session(TtsSessionOptions::default())
        .await
        .unwrap();
    let mut ctx = session.open_context("q-u1").unwrap();
    ctx.input.send_last("Hi.").unwrap();
    let (audio, err) = drain(&mut ctx.audio).await;
    assert_eq!(err, None);
    assert!(audio == mock_audio("Hi.", 16_000, 60));
    assert!(mock.log().iter().any(|e| matches!(
        e,
        CartesiaLogEntry::Connected {
            auth_in_query: true,
            ..
        }
    )));

    mock.set_fault(CartesiaFault::Reject { status: 503 });
    match client(&mock)
        .open_session(TtsSessionOptions::default())
        .await
    {
        Err(e @ TtsError::Http { status: 503, .. }) => assert!(e.is_transient()),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn http_fallback_returns_pcm() {
    let mock = MockCartesia::spawn(MockCartesiaConfig {
        odd_chunks: true,
        chunk_bytes: 1001,
        ..MockCartesiaConfig::default()
    })
    .await;
    let tts = client(&mock);
    let mut stream = tts
        .synthesize_stream(TtsRequest::new("  Thanks for your time!  "))
        .await
        .expect("accepted");
    let mut audio = Vec::new();
    while let Some(item) = stream.next().await {
        let chunk = item.expect("audio");
        check_chunk(&chunk, 16_000);
        audio.extend_from_slice(&chunk.audio);
    }
    assert!(audio == mock_audio("Thanks for your time!", 16_000, 60));
    let body = &mock.http_requests()[0];
    assert_eq!(body["transcript"], "Thanks for your time!");
    assert!(body.get("context_id").is_none());
    assert!(body.get("continue").is_none());
    assert_eq!(body["output_format"]["encoding"], "pcm_s16le");

    // Twilio format: 8 kHz μ-law, one byte per sample.
    let mut req = TtsRequest::new("Hi.");
    req.output_sample_rate = 8000;
    req.encoding = TtsEncoding::PcmMulaw;
    let chunks: Vec<TtsChunk> = tts
        .synthesize_stream(req)
        .await
        .unwrap()
        .map(|c| c.expect("audio"))
        .collect()
        .await;
    assert!(chunks
        .iter()
        .all(|c| c.sample_rate == 8000 && c.encoding == TtsEncoding::PcmMulaw));
    let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.audio.to_vec()).collect();
    assert!(bytes == mock_audio_encoded("Hi.", "pcm_mulaw", 8000, 60).unwrap());
}

#[tokio::test]
async fn http_fallback_errors_are_typed() {
    let mock = MockCartesia::spawn(MockCartesiaConfig::default()).await;
    let tts = client(&mock);

    mock.set_fault(CartesiaFault::Error {
        status: 500,
        message: "internal".into(),
    });
    match tts.synthesize_stream(TtsRequest::new("Hello.")).await {
        Err(TtsError::Http {
            status: 500,
            message,
        }) => assert!(message.contains("internal")),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }

    mock.set_fault(CartesiaFault::EmptyDone);
    let items: Vec<_> = tts
        .synthesize_stream(TtsRequest::new("Hello."))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items, vec![Err(TtsError::Empty)]);

    mock.set_fault(CartesiaFault::CloseAfterChunks(1));
    let items: Vec<_> = tts
        .synthesize_stream(TtsRequest::new("A longer sentence for the fallback."))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(matches!(items.first(), Some(Ok(_))), "{items:?}");
    assert!(
        matches!(items.last(), Some(Err(TtsError::Closed(_)))),
        "{items:?}"
    );

    mock.set_fault(CartesiaFault::None);
    let bad = CartesiaTts::new(CartesiaConfig {
        api_key: "nope".into(),
        ..tts.config().clone()
    })
    .unwrap();
    match bad.synthesize_stream(TtsRequest::new("Hello.")).await {
        Err(TtsError::Unauthorized { status: 401, .. }) => {}
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
}
