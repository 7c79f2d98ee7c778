//! Startup and shutdown: turns a validated [`Config`] into running state (database,
//! mailer, keys), binds the listener and serves until SIGTERM / ctrl-c.

use crate::auth::jwt::JwtKey;
use crate::auth::ratelimit::RateLimiter;
use crate::config::Config;
use crate::state::{AppState, SharedState};
use anyhow::Context;
use axum::extract::Request;
use axum::ServiceExt;
use base64::Engine as _;
use rand::RngCore;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use talky_core::ports::mail::Mailer;
use talky_core::ports::recording::RecordingStore;
use talky_core::ports::store::Store;
use talky_core::ports::telephony::Telephony;
use talky_core::{Clock, SystemClock};
use talky_providers::mail::{OutboxMailer, SmtpMailer};
use talky_providers::storage::LocalRecordingStore;
use talky_providers::telephony::SimulatedCarrier;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// Reads a secret from config, or from `<data_dir>/<file>`, generating it there on first run.
pub fn load_or_create_secret(
    configured: Option<&str>,
    data_dir: &Path,
    file: &str,
) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = configured {
        return Ok(s.as_bytes().to_vec());
    }
    let path = data_dir.join(file);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        anyhow::ensure!(
            text.len() >= 32,
            "{} holds a secret shorter than 32 bytes",
            path.display()
        );
        return Ok(text.as_bytes().to_vec());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(file = %path.display(), "generated a new secret");
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// The mailer the configuration asks for: SMTP when `smtp_url` is set, else the outbox.
pub fn build_mailer(cfg: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    let from = cfg.mail_from_box()?;
    Ok(match &cfg.smtp_url {
        Some(url) => Arc::new(SmtpMailer::from_url(&url.0, from)?),
        None => {
            let dir = cfg.data_dir.join("outbox");
            tracing::info!(dir = %dir.display(), "no smtp_url configured: mail goes to the outbox folder");
            Arc::new(OutboxMailer::new(dir, from))
        }
    })
}

/// The replaceable services a server runs on (tests substitute their own).
pub struct Services {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub telephony: Arc<dyn Telephony>,
    pub recordings: Arc<dyn RecordingStore>,
    pub voice: crate::voice::VoiceProviders,
}

impl Services {
    /// The configured mailer, the system clock, the simulated carrier and local recordings.
    pub fn from_config(cfg: &Config, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            mailer: build_mailer(cfg)?,
            clock: Arc::new(SystemClock),
            telephony: Arc::new(SimulatedCarrier::new()),
            recordings: Arc::new(LocalRecordingStore::new(cfg.recordings_dir())),
            voice: crate::voice::VoiceProviders::from_config(cfg)?,
        })
    }
}

/// Builds the shared state from its parts.
pub fn build_state(cfg: Config, services: Services) -> anyhow::Result<SharedState> {
    let Services {
        store,
        mailer,
        clock,
        telephony,
        recordings,
        voice,
    } = services;
    let jwt = load_or_create_secret(
        cfg.auth.jwt_secret.as_ref().map(|s| s.0.as_str()),
        &cfg.data_dir,
        "jwt_secret",
    )?;
    let media = load_or_create_secret(
        cfg.media.token_secret.as_ref().map(|s| s.0.as_str()),
        &cfg.data_dir,
        "media_secret",
    )?;
    Ok(Arc::new(AppState {
        store,
        mailer,
        clock,
        telephony,
        recordings,
        voice,
        jwt: JwtKey::new(&jwt),
        media_key: JwtKey::new(&media),
        auth_limiter: RateLimiter::new(cfg.auth.ip_rate_per_min, 60),
        active_sessions: Default::default(),
        pending_sockets: Default::default(),
        live_calls: Default::default(),
        shutdown: tokio_util::sync::CancellationToken::new(),
        session_ended: tokio::sync::broadcast::channel(64).0,
        public_url: cfg.public_url(),
        config: Arc::new(cfg),
    }))
}

/// Serves `state` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = crate::http::router(state);
    let app = NormalizePathLayer::trim_trailing_slash().layer(router);
    axum::serve(
        listener,
        ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("HTTP server failed")
}

/// `talky serve`: connect, migrate, bind, serve until a signal.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data_dir {}", cfg.data_dir.display()))?;
    let url = cfg.database_url();
    let store = talky_store::connect(&url)
        .await
        .with_context(|| format!("opening database {}", redact_url(&url)))?;
    report_spool_leftovers(&cfg.data_dir.join("spool"));
    let services = Services::from_config(&cfg, store)?;
    let listen = cfg.listen;
    let state = build_state(cfg, services)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, public_url = %state.public_url, "Talky is listening");
    let sessions = state.clone();
    serve(listener, state.clone(), async move {
        shutdown_signal().await;
        // H8: every live voice session hangs up and persists.
        sessions.shutdown.cancel();
    })
    .await?;
    drain_sessions(&state, std::time::Duration::from_secs(10)).await;
    tracing::info!("Talky stopped");
    Ok(())
}

/// Recording spool files left by an earlier process (a crash mid-call, or a recording whose
/// storage write failed) are kept for an operator; say so once at startup.
fn report_spool_leftovers(spool: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(spool) else {
        return;
    };
    let files = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .count();
    if files > 0 {
        tracing::warn!(
            files,
            spool = %spool.display(),
            "recording spool holds files from an earlier run (raw tracks of interrupted calls, or \
             WAVs whose storage write failed); they are kept for recovery and can be removed"
        );
    }
}

/// Waits (at most `limit`) for live voice sessions to finish persisting after shutdown.
pub async fn drain_sessions(state: &SharedState, limit: std::time::Duration) {
    use std::sync::atomic::Ordering;
    let deadline = tokio::time::Instant::now() + limit;
    let mut ended = state.session_ended.subscribe();
    while state.active_sessions.load(Ordering::Acquire) > 0 {
        match tokio::time::timeout_at(deadline, ended.recv()).await {
            Ok(_) => {}
            Err(_) => {
                let left = state.active_sessions.load(Ordering::Acquire);
                tracing::warn!(
                    sessions = left,
                    "shutdown: voice sessions still running after the grace period"
                );
                return;
            }
        }
    }
}

/// Hides a password in a database URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn secret_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = super::load_or_create_secret(None, dir.path(), "s").unwrap();
        let b = super::load_or_create_secret(None, dir.path(), "s").unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 32);
        let c = super::load_or_create_secret(Some("x"), dir.path(), "s").unwrap();
        assert_eq!(c, b"x");
    }
}
