//! Dev tooling for Talky (never linked into `talky`): protocol-faithful mocks of the
//! providers — Deepgram STT v1 and Flux, an OpenAI-compatible chat endpoint, Cartesia TTS —
//! each with configurable latency, scripts and fault modes; the `talky-mock` binary serves
//! them all on one port.
pub mod cartesia;
pub mod deepgram;
pub mod openai;

/// Serves `app` on 127.0.0.1 at an ephemeral port until the returned task is aborted.
///
/// # Panics
/// If no loopback port can be bound (a test cannot run anyway).
pub(crate) async fn serve_on_loopback(
    app: axum::Router,
    name: &'static str,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("mock {name}: bind 127.0.0.1:0: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("mock {name}: local address: {e}"));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "mock {name} stopped");
        }
    });
    (addr, task)
}
