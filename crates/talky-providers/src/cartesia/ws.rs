//! One Cartesia WebSocket session: the upgrade and the task that owns the socket.
//!
//! The task multiplexes caller commands (open / text / cancel / close, from the runtime-free
//! channel of [`talky_core::ports::tts`]) and server messages, routing audio to the context it
//! belongs to. Messages for unknown, finished or cancelled contexts are dropped (§6.1). When the
//! socket ends for any reason, every open context gets one [`TtsError::Closed`] and the command
//! receiver is dropped, so [`TtsSession::is_closed`] turns true and the caller reconnects.

use std::collections::HashMap;

use futures::channel::mpsc::UnboundedReceiver;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use talky_core::ports::tts::{
    tts_session_pair, TtsAudioSink, TtsCommand, TtsError, TtsSession, TtsSessionOptions,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::messages::{parse_server_message, ServerMessage};
use super::{
    error_body_message, error_from_status, parse_retry_after, ByteCarry, CartesiaConfig, Resolved,
};

/// Upgrades and spawns the session task.
pub(super) async fn open(
    config: &CartesiaConfig,
    resolved: Resolved,
    opts: TtsSessionOptions,
) -> Result<TtsSession, TtsError> {
    let mut url = reqwest::Url::parse(&config.websocket_url()?)
        .map_err(|e| TtsError::Config(format!("invalid cartesia websocket URL: {e}")))?;
    if config.auth_in_query {
        url.query_pairs_mut()
            .append_pair("api_key", &config.api_key)
            .append_pair("cartesia_version", &config.version);
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| TtsError::Config(format!("invalid cartesia websocket request: {e}")))?;
    if !config.auth_in_query {
        let key = HeaderValue::from_str(config.api_key.trim()).map_err(|_| {
            TtsError::Config("cartesia api key contains characters not allowed in a header".into())
        })?;
        let version = HeaderValue::from_str(config.version.trim())
            .map_err(|_| TtsError::Config("invalid cartesia version".into()))?;
        request.headers_mut().insert("X-API-Key", key);
        request.headers_mut().insert("Cartesia-Version", version);
    }
    let connect = tokio_tungstenite::connect_async_with_config(
        request,
        Some(crate::call_socket_config(16 * 1024)),
        true,
    );
    let (ws, _response) = match tokio::time::timeout(config.ws_connect_timeout, connect).await {
        Err(_) => {
            return Err(TtsError::Timeout(format!(
                "cartesia websocket connect after {:?}",
                config.ws_connect_timeout
            )))
        }
        Ok(Err(e)) => return Err(connect_error(e)),
        Ok(Ok(pair)) => pair,
    };
    tracing::debug!(endpoint = %config.websocket_url()?, "cartesia session open");
    let (session, commands) = tts_session_pair(opts);
    tokio::spawn(run(ws, commands, resolved));
    Ok(session)
}

fn connect_error(e: WsError) -> TtsError {
    match e {
        WsError::Http(resp) => {
            let status = resp.status().as_u16();
            let retry_after = parse_retry_after(resp.headers());
            let body = resp.body().as_deref().unwrap_or_default();
            error_from_status(status, error_body_message(body), retry_after)
        }
        other => TtsError::Connect(other.to_string()),
    }
}

/// Where one context's audio goes.
struct Route {
    sink: TtsAudioSink,
    carry: ByteCarry,
    chunks: usize,
}

async fn run<S>(ws: S, mut commands: UnboundedReceiver<TtsCommand>, resolved: Resolved)
where
    S: futures::Stream<Item = Result<Message, WsError>>
        + futures::Sink<Message, Error = WsError>
        + Unpin
        + Send
        + 'static,
{
    let (mut tx, mut rx) = ws.split();
    let mut routes: HashMap<String, Route> = HashMap::new();
    let bps = resolved.encoding.bytes_per_sample();

    let end_reason: String = loop {
        tokio::select! {
            cmd = commands.next() => match cmd {
                None => {
                    let _ = tx.send(Message::Close(None)).await;
                    break "session dropped".into();
                }
                Some(TtsCommand::Open { context_id, sink }) => {
                    routes.insert(context_id, Route { sink, carry: ByteCarry::default(), chunks: 0 });
                }
                Some(TtsCommand::Text { context_id, text, more }) => {
                    if !routes.contains_key(&context_id) {
                        continue;
                    }
                    let mut transcript = text;
                    if more && transcript.trim().is_empty() {
                        continue;
                    }
                    // Sentences are concatenated by the provider: keep a word boundary.
                    if more && !transcript.ends_with(char::is_whitespace) {
                        transcript.push(' ');
                    }
                    let mut body = resolved.body(&transcript);
                    body.insert("context_id".into(), json!(context_id));
                    body.insert("continue".into(), json!(more));
                    if let Err(e) = tx.send(Message::text(Value::Object(body).to_string())).await {
                        break format!("write failed: {e}");
                    }
                }
                Some(TtsCommand::Cancel { context_id }) => {
                    if let Some(route) = routes.remove(&context_id) {
                        route.sink.mark_cancelled();
                        let msg = json!({"context_id": context_id, "cancel": true});
                        if let Err(e) = tx.send(Message::text(msg.to_string())).await {
                            break format!("write failed: {e}");
                        }
                    }
                }
                Some(TtsCommand::Close) => {
                    let _ = tx.send(Message::Close(None)).await;
                    break "session closed".into();
                }
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(text))) => on_text(&text, &mut routes, &resolved, bps),
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(f) => format!("server closed the socket ({} {})", u16::from(f.code), f.reason),
                        None => "server closed the socket".into(),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("socket error: {e}"),
                None => break "socket ended".into(),
            },
        }
    };
    tracing::debug!(reason = %end_reason, open_contexts = routes.len(), "cartesia session ended");
    for (_, route) in routes.drain() {
        route.sink.send(Err(TtsError::Closed(end_reason.clone())));
    }
    drop(commands);
}

fn on_text(text: &str, routes: &mut HashMap<String, Route>, resolved: &Resolved, bps: usize) {
    match parse_server_message(text) {
        ServerMessage::Chunk { context_id, data } => {
            let Some(route) = context_id.as_deref().and_then(|id| routes.get_mut(id)) else {
                return;
            };
            if data.is_empty() {
                return;
            }
            route.chunks += 1;
            let audio = route.carry.push(&data, bps);
            if !audio.is_empty() {
                // A refused send means the caller cancelled; the Cancel command that follows
                // removes the route and tells the provider.
                route.sink.send(Ok(resolved.chunk(audio)));
            }
        }
        ServerMessage::Done { context_id } => {
            let Some(route) = context_id.as_deref().and_then(|id| routes.remove(id)) else {
                return;
            };
            if route.chunks == 0 {
                route.sink.send(Err(TtsError::Empty));
            }
        }
        ServerMessage::Error {
            context_id,
            status_code,
            message,
        } => match context_id {
            Some(id) => {
                if let Some(route) = routes.remove(&id) {
                    route.sink.send(Err(TtsError::Provider {
                        status_code,
                        message,
                    }));
                }
            }
            None => {
                tracing::warn!(?status_code, %message, "cartesia connection-level error");
                for (_, route) in routes.drain() {
                    route.sink.send(Err(TtsError::Provider {
                        status_code,
                        message: message.clone(),
                    }));
                }
            }
        },
        ServerMessage::Malformed { context_id, reason } => {
            match context_id.and_then(|id| routes.remove(&id)) {
                Some(route) => {
                    route.sink.send(Err(TtsError::Protocol(reason)));
                }
                None => tracing::warn!(%reason, "cartesia: ignoring malformed message"),
            }
        }
        ServerMessage::Ignored { .. } => {}
    }
}
