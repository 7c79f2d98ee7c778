//! The OpenAI-compatible client against the protocol-faithful mock (`talky_testkit::openai`).

use std::time::Duration;

use futures::StreamExt;
use talky_core::ports::llm::{
    AgentTool, ChatMessage, ChatRequest, FinishReason, Llm, LlmDeadlines, LlmError, LlmEvent,
    TimeoutKind, ToolCall, Usage,
};
use talky_providers::llm::{LlmConfig, OpenAiCompatLlm};
use talky_testkit::openai::{LlmFault, MockLlm, MockLlmConfig, MockReply, UsageStyle};

fn client(mock: &MockLlm) -> OpenAiCompatLlm {
    OpenAiCompatLlm::new(LlmConfig {
        base_url: mock.base_url(),
        api_key: Some("test-key".into()),
        model: "llama-3.1-8b-instant".into(),
        ..LlmConfig::default()
    })
    .expect("valid config")
}

fn request(user: &str) -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You are Maya from Northwind Dental."),
        ChatMessage::assistant("Hi, this is Maya from Northwind Dental."),
        ChatMessage::user(user),
    ])
}

/// Collects a whole stream: every item, stopping after the first error.
async fn collect(llm: &OpenAiCompatLlm, req: ChatRequest) -> Vec<Result<LlmEvent, LlmError>> {
    let stream = llm.stream_chat(req).await.expect("stream accepted");
    stream.collect().await
}

fn text_of(events: &[Result<LlmEvent, LlmError>]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(LlmEvent::Token(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn token_count(events: &[Result<LlmEvent, LlmError>]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Ok(LlmEvent::Token(_))))
        .count()
}

#[tokio::test]
async fn streamed_tokens_are_assembled_and_request_is_faithful() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    mock.push_reply(MockReply::text("Sure, Tuesday at 3 works. See you then!"));
    let llm = client(&mock);
    let events = collect(&llm, request("Can I come Tuesday?")).await;

    assert_eq!(text_of(&events), "Sure, Tuesday at 3 works. See you then!");
    // 39 characters in 4-character fragments: the reply really was streamed in pieces.
    assert_eq!(token_count(&events), 10);
    let last = events.last().expect("events").clone().expect("no error");
    let prompt_chars = "You are Maya from Northwind Dental.".len()
        + "Hi, this is Maya from Northwind Dental.".len()
        + "Can I come Tuesday?".len();
    assert_eq!(
        last,
        LlmEvent::Done {
            finish_reason: FinishReason::Stop,
            usage: Some(Usage {
                prompt_tokens: (prompt_chars / 4) as u32,
                completion_tokens: 10,
                total_tokens: (prompt_chars / 4) as u32 + 10,
            }),
        }
    );

    let req = mock.last_request().expect("recorded");
    assert!(req.path.ends_with("/v1/chat/completions"), "{}", req.path);
    assert_eq!(req.authorization.as_deref(), Some("Bearer test-key"));
    assert_eq!(req.accept.as_deref(), Some("text/event-stream"));
    assert!(req.is_stream());
    assert_eq!(req.body["model"], "llama-3.1-8b-instant");
    assert_eq!(req.body["stream_options"]["include_usage"], true);
    let roles: Vec<String> = req.messages().into_iter().map(|(r, _)| r).collect();
    assert_eq!(roles, ["system", "assistant", "user"]);
    assert_eq!(req.messages()[2].1, "Can I come Tuesday?");
}

#[tokio::test]
async fn tool_call_is_assembled_from_argument_deltas() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    let args = r#"{"outcome":"not_interested","reason":"asked not to be called"}"#;
    mock.push_reply(MockReply::text("Okay, bye.").with_tool_call("end_call", args));
    let llm = client(&mock);
    let events = collect(&llm, request("Stop calling me.").with_agent_tools()).await;

    assert_eq!(text_of(&events), "Okay, bye.");
    let calls: Vec<&LlmEvent> = events
        .iter()
        .filter_map(|e| match e {
            Ok(ev @ LlmEvent::ToolCall { .. }) => Some(ev),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        vec![&LlmEvent::ToolCall {
            id: "call_mock_0".into(),
            name: "end_call".into(),
            arguments_json: args.into(),
        }]
    );
    let call = ToolCall {
        id: "call_mock_0".into(),
        name: "end_call".into(),
        arguments_json: args.into(),
    };
    assert_eq!(
        AgentTool::from_call(&call),
        Some(AgentTool::EndCall {
            outcome: "not_interested".into(),
            reason: Some("asked not to be called".into()),
        })
    );
    assert!(matches!(
        events.last(),
        Some(Ok(LlmEvent::Done {
            finish_reason: FinishReason::ToolCalls,
            ..
        }))
    ));
    let body = mock.last_request().unwrap().body;
    assert_eq!(body["tool_choice"], "auto");
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["end_call", "mark_goal", "request_callback"]);
}

#[tokio::test]
async fn tool_results_round_trip_in_history() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    let llm = client(&mock);
    let mut req = request("Book me in.");
    req.messages.push(ChatMessage::assistant_with_tools(
        "",
        vec![ToolCall {
            id: "call_9".into(),
            name: "mark_goal".into(),
            arguments_json: r#"{"achieved":true}"#.into(),
        }],
    ));
    req.messages
        .push(ChatMessage::tool_result("call_9", "recorded"));
    let events = collect(&llm, req).await;
    assert_eq!(text_of(&events), "Hello! How can I help you today?");
    let body = mock.last_request().unwrap().body;
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs[3]["role"], "assistant");
    assert_eq!(msgs[3]["tool_calls"][0]["function"]["name"], "mark_goal");
    assert_eq!(msgs[4]["role"], "tool");
    assert_eq!(msgs[4]["tool_call_id"], "call_9");
}

#[tokio::test]
async fn http_errors_map_to_typed_errors() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    let llm = client(&mock);

    mock.push_reply(MockReply::fault(LlmFault::server_error()));
    match llm.stream_chat(request("hi")).await {
        Err(LlmError::Server { status, message }) => {
            assert_eq!(status, 500);
            assert!(message.contains("server had an error"), "{message}");
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("500 must fail the request"),
    }

    mock.push_reply(MockReply::fault(LlmFault::rate_limited(7)));
    match llm.stream_chat(request("hi")).await {
        Err(LlmError::RateLimited {
            retry_after,
            message,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(message.contains("Rate limit"), "{message}");
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("429 must fail the request"),
    }

    mock.push_reply(MockReply::fault(LlmFault::rate_limited(1)));
    assert!(matches!(
        llm.complete(request("summarise")).await,
        Err(LlmError::RateLimited { .. })
    ));

    let wrong_key = OpenAiCompatLlm::new(LlmConfig {
        base_url: mock.base_url(),
        api_key: Some("wrong".into()),
        ..LlmConfig::default()
    })
    .unwrap();
    match wrong_key.stream_chat(request("hi")).await {
        Err(LlmError::Unauthorized {
            status: 401,
            message,
        }) => {
            assert!(message.contains("invalid_api_key"), "{message}")
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("bad key must fail"),
    }
    assert!(!mock.last_request().unwrap().authorized);
}

#[tokio::test]
async fn empty_stream_is_done_without_tokens() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    mock.push_reply(MockReply::fault(LlmFault::Empty));
    let llm = client(&mock);
    let events = collect(&llm, request("...")).await;
    assert_eq!(
        events,
        vec![Ok(LlmEvent::Done {
            finish_reason: FinishReason::Empty,
            usage: None,
        })]
    );
}

#[tokio::test]
async fn stall_after_tokens_hits_the_inter_token_deadline() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    mock.push_reply(
        MockReply::fragments(["Let ", "me ", "check ", "that."])
            .with_fault(LlmFault::StallAfter(2)),
    );
    let llm = client(&mock);
    let mut req = request("Is Tuesday free?");
    req.deadlines = LlmDeadlines {
        first_token: Some(Duration::from_secs(5)),
        inter_token: Some(Duration::from_millis(300)),
    };
    let events = tokio::time::timeout(Duration::from_secs(20), collect(&llm, req))
        .await
        .expect("the client's own deadline must end the stream");
    assert_eq!(
        events,
        vec![
            Ok(LlmEvent::Token("Let ".into())),
            Ok(LlmEvent::Token("me ".into())),
            Err(LlmError::Timeout(TimeoutKind::InterToken)),
        ]
    );
}

#[tokio::test]
async fn slow_first_token_hits_the_first_token_deadline() {
    let mock = MockLlm::spawn(MockLlmConfig {
        time_to_first_token: Duration::from_secs(60),
        ..MockLlmConfig::default()
    })
    .await;
    let llm = OpenAiCompatLlm::new(LlmConfig {
        base_url: mock.base_url(),
        api_key: Some("test-key".into()),
        first_token_timeout: Duration::from_millis(300),
        ..LlmConfig::default()
    })
    .unwrap();
    let events = tokio::time::timeout(Duration::from_secs(20), collect(&llm, request("hello?")))
        .await
        .expect("deadline must fire");
    assert_eq!(
        events,
        vec![Err(LlmError::Timeout(TimeoutKind::FirstToken))]
    );
}

/// G16: time the consumer spends on playback back-pressure is not provider time. Each gap
/// between polls is far longer than the inter-token deadline; the stream must still complete.
#[tokio::test]
async fn slow_consumer_is_not_timed_out() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    let sentences = [
        "One sentence. ",
        "Two sentences. ",
        "Three sentences. ",
        "Four sentences. ",
        "Five sentences.",
    ];
    mock.push_reply(MockReply::fragments(sentences));
    let llm = client(&mock);
    let mut req = request("Tell me five things.");
    req.deadlines = LlmDeadlines {
        first_token: Some(Duration::from_secs(5)),
        inter_token: Some(Duration::from_millis(100)),
    };
    let mut stream = llm.stream_chat(req).await.unwrap();
    let mut text = String::new();
    let mut done = false;
    while let Some(ev) = stream.next().await {
        match ev.expect("no timeout while the consumer is slow") {
            LlmEvent::Token(t) => text.push_str(&t),
            LlmEvent::Done { finish_reason, .. } => {
                assert_eq!(finish_reason, FinishReason::Stop);
                done = true;
            }
            other => panic!("unexpected {other:?}"),
        }
        // Playback back-pressure: 2.5× the inter-token deadline.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(done);
    assert_eq!(text, sentences.concat());
}

/// Tool-call argument deltas are fragments too: a long, slowly streamed call whose assembly
/// takes far longer than the inter-token deadline completes as long as deltas keep coming.
#[tokio::test]
async fn slow_tool_call_deltas_count_as_progress() {
    let mock = MockLlm::spawn(MockLlmConfig {
        inter_token_delay: Duration::from_millis(40),
        ..MockLlmConfig::default()
    })
    .await;
    let args = r#"{"achieved":true,"detail":"booked a cleaning for Tuesday at 3 pm"}"#;
    mock.push_reply(MockReply::default().with_tool_call("mark_goal", args));
    let llm = client(&mock);
    let mut req = request("Tuesday at 3 then.");
    req.deadlines.inter_token = Some(Duration::from_millis(400));
    let events = collect(&llm, req).await;
    // 23 argument deltas × 40 ms ≫ 400 ms, yet no timeout.
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        Ok(LlmEvent::ToolCall {
            id: "call_mock_0".into(),
            name: "mark_goal".into(),
            arguments_json: args.into(),
        })
    );
    assert!(matches!(
        events[1],
        Ok(LlmEvent::Done {
            finish_reason: FinishReason::ToolCalls,
            usage: Some(_),
        })
    ));
}

#[tokio::test]
async fn broken_streams_end_with_an_error_after_usable_text() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    let llm = client(&mock);

    mock.push_reply(
        MockReply::fragments(["Sure", ", one", " sec"]).with_fault(LlmFault::MalformedAfter(1)),
    );
    let events = collect(&llm, request("a")).await;
    assert_eq!(events[0], Ok(LlmEvent::Token("Sure".into())));
    assert!(
        matches!(events[1], Err(LlmError::Protocol(_))),
        "{events:?}"
    );
    assert_eq!(events.len(), 2);

    mock.push_reply(
        MockReply::fragments(["Sure", ", one", " sec"]).with_fault(LlmFault::DisconnectAfter(2)),
    );
    let events = collect(&llm, request("b")).await;
    assert_eq!(text_of(&events), "Sure, one");
    assert!(
        matches!(events.last(), Some(Err(LlmError::Broken(_)))),
        "{events:?}"
    );

    mock.push_reply(
        MockReply::fragments(["Sure", ", one", " sec"]).with_fault(LlmFault::ErrorEventAfter(1)),
    );
    let events = collect(&llm, request("c")).await;
    assert_eq!(text_of(&events), "Sure");
    match events.last() {
        Some(Err(LlmError::Broken(m))) => assert!(m.contains("overloaded"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn usage_chunk_variants_are_accepted() {
    for style in [
        UsageStyle::NullChoices,
        UsageStyle::NoChoices,
        UsageStyle::Off,
    ] {
        let mock = MockLlm::spawn(MockLlmConfig {
            usage_style: style,
            ..MockLlmConfig::default()
        })
        .await;
        let events = collect(&client(&mock), request("hi")).await;
        assert_eq!(text_of(&events), "Hello! How can I help you today?");
        match events.last() {
            Some(Ok(LlmEvent::Done {
                finish_reason: FinishReason::Stop,
                usage,
            })) => assert_eq!(usage.is_some(), style != UsageStyle::Off, "{style:?}"),
            other => panic!("{style:?}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn no_key_sends_no_authorization_header() {
    let mock = MockLlm::spawn(MockLlmConfig {
        api_key: None,
        ..MockLlmConfig::default()
    })
    .await;
    for key in [None, Some(String::new())] {
        let llm = OpenAiCompatLlm::new(LlmConfig {
            base_url: format!("http://{}/", mock.addr),
            api_key: key,
            model: "llama3.2".into(),
            ..LlmConfig::default()
        })
        .unwrap();
        let events = collect(&llm, request("hi")).await;
        assert!(matches!(events.last(), Some(Ok(LlmEvent::Done { .. }))));
        let req = mock.last_request().unwrap();
        assert_eq!(req.authorization, None);
        assert_eq!(req.path, "/chat/completions");
        assert_eq!(req.body["model"], "llama3.2");
    }
}

#[tokio::test]
async fn non_streaming_completion_returns_content() {
    let mock = MockLlm::spawn(MockLlmConfig::default()).await;
    mock.push_reply(MockReply::text("The lead booked Tuesday 3 pm."));
    let llm = client(&mock);
    let summary = llm.complete(request("Summarise the call.")).await.unwrap();
    assert_eq!(summary, "The lead booked Tuesday 3 pm.");
    let req = mock.last_request().unwrap();
    assert!(!req.is_stream());
    assert!(req.body.get("stream_options").is_none());

    mock.push_reply(MockReply::fault(LlmFault::Empty));
    assert_eq!(llm.complete(request("again")).await, Err(LlmError::Empty));

    mock.push_reply(MockReply::fault(LlmFault::StallAfter(0)));
    let slow = OpenAiCompatLlm::new(LlmConfig {
        request_timeout: Duration::from_millis(300),
        ..llm.config().clone()
    })
    .unwrap();
    assert_eq!(
        slow.complete(request("stall")).await,
        Err(LlmError::Timeout(TimeoutKind::Request))
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let llm = OpenAiCompatLlm::new(LlmConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        ..LlmConfig::default()
    })
    .unwrap();
    match llm.stream_chat(request("hi")).await {
        Err(e @ LlmError::Connect(_)) => assert!(e.is_retryable()),
        Err(other) => panic!("unexpected {other:?}"),
        Ok(_) => panic!("nothing listens there"),
    }
}
