//! One Deepgram stream: the WebSocket upgrade and the task that owns the socket.
//!
//! The task multiplexes four things without ever blocking the caller (who only touches
//! unbounded channels): server messages → events, caller commands → socket, keep-alive traffic
//! when the caller is quiet, and the close handshake. Whatever way the socket ends, the task
//! emits exactly one `Closed` as its last event, preceded by a fatal `Error` when the end was not
//! asked for.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::channel::mpsc::UnboundedSender;
use futures::{Sink, SinkExt, Stream, StreamExt};
use talky_core::ports::stt::{
    stt_stream_pair, SttCommand, SttEncoding, SttError, SttEvent, SttOptions, SttStream,
    SttStreamBackend, SttStreamInfo,
};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::messages::{parse_flux_message, parse_v1_message};
use super::DeepgramConfig;

/// Longest provider error body kept in an [`SttError::Rejected`].
const MAX_ERROR_BODY: usize = 512;
/// After a failed write, how long to look for the server's close frame (to report its code).
const CLOSE_PROBE: Duration = Duration::from_millis(250);
/// Upper bound on finishing our side of the close handshake.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Upgrades and spawns the stream task.
pub(super) async fn open(
    config: &DeepgramConfig,
    provider: &str,
    opts: &SttOptions,
) -> Result<SttStream, SttError> {
    config.validate()?;
    let url = config.listen_url(opts)?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| SttError::Config(format!("invalid deepgram URL {url}: {e}")))?;
    let auth =
        HeaderValue::from_str(&format!("Token {}", config.api_key.trim())).map_err(|_| {
            SttError::Config("deepgram api key contains characters not allowed in a header".into())
        })?;
    request.headers_mut().insert(AUTHORIZATION, auth);

    let connect = tokio_tungstenite::connect_async_with_config(
        request,
        Some(crate::call_socket_config(4 * 1024)),
        true,
    );
    let (ws, response) = match tokio::time::timeout(config.connect_timeout, connect).await {
        Err(_) => {
            return Err(SttError::Timeout {
                after_ms: config.connect_timeout.as_millis() as u64,
            })
        }
        Ok(Err(e)) => return Err(connect_error(e)),
        Ok(Ok(pair)) => pair,
    };
    let request_id = response
        .headers()
        .get("dg-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    tracing::debug!(provider, endpoint = %config.endpoint()?, ?request_id, "deepgram stream open");

    let (stream, backend) = stt_stream_pair(SttStreamInfo {
        provider: provider.to_string(),
        turn_events: config.flux,
        request_id,
    });
    tokio::spawn(run(ws, backend, Settings::new(config, opts)));
    Ok(stream)
}

/// Maps a failed upgrade to the port's error; an HTTP answer keeps its status and body.
fn connect_error(e: WsError) -> SttError {
    match e {
        WsError::Http(response) => {
            let status = response.status().as_u16();
            let mut body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default();
            if body.is_empty() {
                body = response
                    .headers()
                    .get("dg-error")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
            }
            if body.len() > MAX_ERROR_BODY {
                let mut cut = MAX_ERROR_BODY;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
                body.push('…');
            }
            SttError::Rejected { status, body }
        }
        other => SttError::Connect(other.to_string()),
    }
}

/// How the stream keeps the provider from timing out while the caller sends nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum KeepAliveMode {
    /// v1: `{"type":"KeepAlive"}` every `interval` while no audio was sent for `interval`.
    Message { interval: Duration },
    /// Flux: after `after` without audio, one silence chunk per `chunk` (real time).
    Silence { after: Duration, chunk: Duration },
}

/// Pure keep-alive schedule, so its timing is testable without a socket.
#[derive(Debug, Clone)]
pub(super) struct KeepAlive {
    mode: KeepAliveMode,
    last_audio: Instant,
    last_fill: Option<Instant>,
}

impl KeepAlive {
    pub(super) fn new(mode: KeepAliveMode, now: Instant) -> Self {
        Self {
            mode,
            last_audio: now,
            last_fill: None,
        }
    }

    /// When the next keep-alive message / silence chunk is due.
    pub(super) fn next_due(&self) -> Instant {
        match (self.mode, self.last_fill) {
            (KeepAliveMode::Message { interval }, None) => self.last_audio + interval,
            (KeepAliveMode::Message { interval }, Some(t)) => t + interval,
            (KeepAliveMode::Silence { after, .. }, None) => self.last_audio + after,
            (KeepAliveMode::Silence { chunk, .. }, Some(t)) => t + chunk,
        }
    }

    /// Caller audio went out: the schedule restarts.
    pub(super) fn on_audio(&mut self, now: Instant) {
        self.last_audio = now;
        self.last_fill = None;
    }

    /// A keep-alive message or silence chunk went out.
    pub(super) fn on_fill(&mut self, now: Instant) {
        self.last_fill = Some(now);
    }
}

/// Per-stream knobs derived from the configuration and the stream options.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    flux: bool,
    keepalive: KeepAliveMode,
    min_chunk: Duration,
    min_chunk_bytes: usize,
    silence: Bytes,
    close_timeout: Duration,
}

impl Settings {
    pub(super) fn new(config: &DeepgramConfig, opts: &SttOptions) -> Self {
        let bytes_per_ms = opts.bytes_per_ms().max(1);
        let sample = opts.encoding.bytes_per_sample();
        let whole = |ms: u128| {
            let n = ms as usize * bytes_per_ms;
            n - n % sample
        };
        let silence_len = whole(config.flux_silence_chunk.as_millis()).max(sample);
        let fill = match opts.encoding {
            SttEncoding::Linear16 => 0u8,
            SttEncoding::Mulaw => 0xFF,
        };
        Self {
            flux: config.flux,
            keepalive: if config.flux {
                KeepAliveMode::Silence {
                    after: config.flux_silence_after,
                    chunk: config.flux_silence_chunk,
                }
            } else {
                KeepAliveMode::Message {
                    interval: config.keepalive_interval,
                }
            },
            min_chunk: config.min_chunk,
            min_chunk_bytes: whole(config.min_chunk.as_millis()),
            silence: Bytes::from(vec![fill; silence_len]),
            close_timeout: config.close_timeout,
        }
    }
}

/// Delivers events; remembers whether the consumer went away and whether a fatal error was
/// already reported (a provider `Error` followed by its close is reported once).
struct Emitter {
    tx: UnboundedSender<SttEvent>,
    consumer_gone: bool,
    fatal_sent: bool,
}

impl Emitter {
    fn emit(&mut self, event: SttEvent) {
        if event.is_fatal_error() {
            if self.fatal_sent {
                return;
            }
            self.fatal_sent = true;
        }
        if self.tx.unbounded_send(event).is_err() {
            self.consumer_gone = true;
        }
    }

    fn fatal(&mut self, message: String) {
        tracing::warn!(%message, "deepgram stream failed");
        self.emit(SttEvent::Error {
            message,
            fatal: true,
        });
    }
}

/// Why the socket loop stopped.
enum End {
    ServerClosed { code: u16, reason: String },
    Transport(String),
    WriteFailed(String),
    CloseTimeout,
    ConsumerGone,
}

fn control(kind: &str) -> Message {
    Message::text(format!(r#"{{"type":"{kind}"}}"#))
}

/// Owns the socket until it ends. Generic over the socket so it can be driven by any
/// WebSocket-shaped stream.
pub(super) async fn run<S>(ws: S, backend: SttStreamBackend, settings: Settings)
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let (mut sink, mut source) = ws.split();
    let SttStreamBackend {
        mut commands,
        events,
    } = backend;
    let mut out = Emitter {
        tx: events,
        consumer_gone: false,
        fatal_sent: false,
    };
    let parse: fn(&str) -> Option<SttEvent> = if settings.flux {
        parse_flux_message
    } else {
        parse_v1_message
    };
    let (finalize_msg, close_msg) = if settings.flux {
        ("ForceEndTurn", "CloseStream")
    } else {
        ("Finalize", "CloseStream")
    };

    let mut pending = BytesMut::new();
    let mut pending_since: Option<Instant> = None;
    let mut keepalive = KeepAlive::new(settings.keepalive, Instant::now());
    // Set once we stopped accepting commands (CloseStream sent, or a fatal provider error).
    let mut close_deadline: Option<Instant> = None;
    let mut close_requested = false;

    let end = loop {
        let keepalive_due = keepalive.next_due();
        let flush_due = pending_since.map(|t| t + settings.min_chunk);
        let far = Instant::now() + Duration::from_secs(3600);

        tokio::select! {
            biased;

            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(event) = parse(text.as_str()) {
                        let fatal = event.is_fatal_error();
                        out.emit(event);
                        if fatal && close_deadline.is_none() {
                            // The provider closes after a fatal error; make sure the stream
                            // ends even if it does not.
                            close_deadline = Some(Instant::now() + settings.close_timeout);
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    break End::ServerClosed { code, reason };
                }
                Some(Ok(_)) => {} // binary, ping (answered by tungstenite), pong
                Some(Err(e)) => break End::Transport(e.to_string()),
                None => break End::Transport("connection dropped without a close frame".into()),
            },

            command = commands.next(), if close_deadline.is_none() => {
                let now = Instant::now();
                let result = match command {
                    Some(SttCommand::Audio(audio)) => {
                        keepalive.on_audio(now);
                        if pending.is_empty() && audio.len() >= settings.min_chunk_bytes {
                            sink.send(Message::Binary(audio)).await
                        } else {
                            if pending.is_empty() {
                                pending_since = Some(now);
                            }
                            pending.extend_from_slice(&audio);
                            if pending.len() >= settings.min_chunk_bytes {
                                pending_since = None;
                                sink.send(Message::Binary(pending.split().freeze())).await
                            } else {
                                Ok(())
                            }
                        }
                    }
                    Some(SttCommand::Flush) => {
                        flush(&mut sink, &mut pending, &mut pending_since).await
                    }
                    Some(SttCommand::Finalize) => {
                        match flush(&mut sink, &mut pending, &mut pending_since).await {
                            Ok(()) => sink.send(control(finalize_msg)).await,
                            Err(e) => Err(e),
                        }
                    }
                    Some(SttCommand::Close) | None => {
                        close_requested = true;
                        close_deadline = Some(now + settings.close_timeout);
                        match flush(&mut sink, &mut pending, &mut pending_since).await {
                            Ok(()) => sink.send(control(close_msg)).await,
                            Err(e) => Err(e),
                        }
                    }
                };
                if let Err(e) = result {
                    break End::WriteFailed(e.to_string());
                }
            }

            _ = sleep_until(flush_due.unwrap_or(far)), if flush_due.is_some() => {
                if let Err(e) = flush(&mut sink, &mut pending, &mut pending_since).await {
                    break End::WriteFailed(e.to_string());
                }
            }

            _ = sleep_until(keepalive_due), if close_deadline.is_none() => {
                let now = Instant::now();
                let result = if !pending.is_empty() {
                    keepalive.on_audio(now);
                    flush(&mut sink, &mut pending, &mut pending_since).await
                } else {
                    keepalive.on_fill(now);
                    match settings.keepalive {
                        KeepAliveMode::Message { .. } => sink.send(control("KeepAlive")).await,
                        KeepAliveMode::Silence { .. } => {
                            sink.send(Message::Binary(settings.silence.clone())).await
                        }
                    }
                };
                if let Err(e) = result {
                    break End::WriteFailed(e.to_string());
                }
            }

            _ = sleep_until(close_deadline.unwrap_or(far)), if close_deadline.is_some() => {
                break End::CloseTimeout;
            }
        }

        if out.consumer_gone {
            break End::ConsumerGone;
        }
    };

    // A write can fail because the server already closed: look for its close frame so the
    // caller learns the real code (e.g. 1011) instead of a generic I/O error.
    let end = match end {
        End::WriteFailed(message) => {
            let probe = tokio::time::timeout(CLOSE_PROBE, async {
                while let Some(Ok(msg)) = source.next().await {
                    match msg {
                        Message::Close(frame) => {
                            return Some(
                                frame
                                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                                    .unwrap_or((1005, String::new())),
                            )
                        }
                        Message::Text(text) => {
                            if let Some(event) = parse(text.as_str()) {
                                out.emit(event);
                            }
                        }
                        _ => {}
                    }
                }
                None
            })
            .await;
            match probe {
                Ok(Some((code, reason))) => End::ServerClosed { code, reason },
                _ => End::Transport(format!("write to Deepgram failed: {message}")),
            }
        }
        other => other,
    };

    match end {
        End::ServerClosed { code, reason } => {
            let normal = close_requested && (code == 1000 || code == 1005);
            if !normal {
                out.fatal(format!(
                    "Deepgram closed the stream unexpectedly (code {code}{}{reason})",
                    if reason.is_empty() { "" } else { ": " }
                ));
            }
            // Complete the close handshake (tungstenite already queued the reply).
            let _ = tokio::time::timeout(CLOSE_FLUSH, sink.close()).await;
            out.emit(SttEvent::Closed { code, reason });
        }
        End::Transport(message) | End::WriteFailed(message) => {
            out.fatal(format!("Deepgram connection lost: {message}"));
            out.emit(SttEvent::Closed {
                code: 1006,
                reason: message,
            });
        }
        End::CloseTimeout => {
            if !close_requested && !out.fatal_sent {
                out.fatal("Deepgram stream did not close after a fatal error".into());
            }
            let _ = tokio::time::timeout(CLOSE_FLUSH, sink.close()).await;
            out.emit(SttEvent::Closed {
                code: 1000,
                reason: "closed by client: server did not finish the close in time".into(),
            });
        }
        End::ConsumerGone => {
            // Nobody listens any more: tell the provider we are done and leave.
            if !close_requested {
                let _ = tokio::time::timeout(CLOSE_FLUSH, sink.send(control(close_msg))).await;
            }
            let _ = tokio::time::timeout(CLOSE_FLUSH, sink.close()).await;
        }
    }
}

/// Sends any batched audio now.
async fn flush<K>(
    sink: &mut K,
    pending: &mut BytesMut,
    pending_since: &mut Option<Instant>,
) -> Result<(), WsError>
where
    K: Sink<Message, Error = WsError> + Unpin,
{
    *pending_since = None;
    if pending.is_empty() {
        return Ok(());
    }
    sink.send(Message::Binary(pending.split().freeze())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_keepalive_schedule() {
        let t0 = Instant::now();
        let s = Duration::from_secs(5);
        let mut k = KeepAlive::new(KeepAliveMode::Message { interval: s }, t0);
        assert_eq!(k.next_due(), t0 + s);
        // Audio postpones it.
        k.on_audio(t0 + Duration::from_secs(3));
        assert_eq!(k.next_due(), t0 + Duration::from_secs(8));
        // Then every interval while quiet.
        k.on_fill(t0 + Duration::from_secs(8));
        assert_eq!(k.next_due(), t0 + Duration::from_secs(13));
        k.on_fill(t0 + Duration::from_secs(13));
        assert_eq!(k.next_due(), t0 + Duration::from_secs(18));
        k.on_audio(t0 + Duration::from_secs(14));
        assert_eq!(k.next_due(), t0 + Duration::from_secs(19));
    }

    #[test]
    fn flux_silence_schedule() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(
            KeepAliveMode::Silence {
                after: Duration::from_millis(200),
                chunk: Duration::from_millis(80),
            },
            t0,
        );
        assert_eq!(k.next_due(), t0 + Duration::from_millis(200));
        k.on_fill(t0 + Duration::from_millis(200));
        assert_eq!(k.next_due(), t0 + Duration::from_millis(280));
        k.on_audio(t0 + Duration::from_millis(250));
        assert_eq!(k.next_due(), t0 + Duration::from_millis(450));
    }

    #[test]
    fn settings_sizes() {
        let cfg = DeepgramConfig::flux("k");
        let s = Settings::new(&cfg, &SttOptions::default());
        assert_eq!(s.min_chunk_bytes, 2560);
        assert_eq!(s.silence.len(), 2560);
        assert!(s.silence.iter().all(|b| *b == 0));
        let mulaw = SttOptions {
            encoding: SttEncoding::Mulaw,
            sample_rate: 8000,
            ..SttOptions::default()
        };
        let s = Settings::new(&cfg, &mulaw);
        assert_eq!(s.silence.len(), 640);
        assert!(s.silence.iter().all(|b| *b == 0xFF));
    }

    #[test]
    fn http_rejection_keeps_status_and_body() {
        let response = tokio_tungstenite::tungstenite::http::Response::builder()
            .status(401)
            .body(Some(br#"{"err_code":"INVALID_AUTH"}"#.to_vec()))
            .unwrap();
        assert_eq!(
            connect_error(WsError::Http(response)),
            SttError::Rejected {
                status: 401,
                body: r#"{"err_code":"INVALID_AUTH"}"#.into()
            }
        );
        let response = tokio_tungstenite::tungstenite::http::Response::builder()
            .status(400)
            .header("dg-error", "unknown parameter")
            .body(None)
            .unwrap();
        assert_eq!(
            connect_error(WsError::Http(response)),
            SttError::Rejected {
                status: 400,
                body: "unknown parameter".into()
            }
        );
    }
}
