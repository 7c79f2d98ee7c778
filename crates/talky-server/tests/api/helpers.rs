//! `spawn_app()`: the real router and store on an ephemeral port, a capturing mailer and a
//! manual clock, so tests can read magic links and move time without sleeping.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use talky_core::ports::mail::{MailError, MailMessage, Mailer};
use talky_core::ports::store::Store;
use talky_core::Clock;
use talky_providers::storage::LocalRecordingStore;
use talky_providers::telephony::SimulatedCarrier;
use talky_server::config::{Config, Secret};
use talky_store::testing::TestDb;
use talky_store::Engine;
use tokio::sync::mpsc;

/// A clock tests move by hand.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Hands every message to the test through a channel.
pub struct CapturingMailer(mpsc::UnboundedSender<MailMessage>);

#[async_trait]
impl Mailer for CapturingMailer {
    async fn send(&self, msg: MailMessage) -> Result<(), MailError> {
        let _ = self.0.send(msg);
        Ok(())
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub store: Arc<dyn Store>,
    /// The simulated carrier: what was hung up.
    pub carrier: Arc<SimulatedCarrier>,
    /// Where recordings are stored.
    pub recordings_dir: std::path::PathBuf,
    pub mail: tokio::sync::Mutex<mpsc::UnboundedReceiver<MailMessage>>,
    /// Calls whose voice session ended and was persisted.
    pub session_ended: tokio::sync::Mutex<tokio::sync::broadcast::Receiver<talky_core::CallId>>,
    /// The key media-socket tokens are signed with (to mint tokens for calls made in tests).
    pub media_key: talky_server::auth::jwt::JwtKey,
    db: Option<TestDb>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub ip_rate_per_min: u32,
    /// Speech providers; `None` = the configured defaults (unreachable in tests).
    pub voice: Option<talky_server::voice::VoiceProviders>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ip_rate_per_min: 10_000,
            voice: None,
        }
    }
}

pub async fn spawn_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, Options::default()).await
}

pub async fn spawn_app_with(engine: Engine, opts: Options) -> TestApp {
    let db = TestDb::new(engine).await;
    let store: Arc<dyn Store> = Arc::new(db.store.clone());
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().to_path_buf(),
        listen: addr,
        ..Config::default()
    };
    cfg.auth.jwt_secret = Some(Secret("test-secret-test-secret-test-secret!".into()));
    cfg.auth.ip_rate_per_min = opts.ip_rate_per_min;
    let (tx, rx) = mpsc::unbounded_channel();
    let clock = ManualClock(Arc::new(Mutex::new(Utc::now())));
    let carrier = Arc::new(SimulatedCarrier::new());
    let services = talky_server::app::Services {
        store: store.clone(),
        mailer: Arc::new(CapturingMailer(tx)),
        clock: Arc::new(clock.clone()),
        telephony: carrier.clone(),
        recordings: Arc::new(LocalRecordingStore::new(dir.path().join("recordings"))),
        voice: match opts.voice {
            Some(v) => v,
            None => talky_server::voice::VoiceProviders::from_config(&Config::default()).unwrap(),
        },
    };
    let state = talky_server::app::build_state(cfg, services).unwrap();
    let session_ended = state.session_ended.subscribe();
    let media_key = state.media_key.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        talky_server::app::serve(listener, state, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        clock,
        store,
        carrier,
        recordings_dir: dir.path().join("recordings"),
        mail: tokio::sync::Mutex::new(rx),
        session_ended: tokio::sync::Mutex::new(session_ended),
        media_key,
        db: Some(db),
        shutdown: Some(stop_tx),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_auth(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// The next mail sent (waits at most 10 s, then fails the test).
    pub async fn next_mail(&self) -> MailMessage {
        let mut rx = self.mail.lock().await;
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("no mail within 10 s")
            .expect("mailer dropped")
    }

    /// Mail already delivered to the channel, without waiting.
    pub async fn pending_mail(&self) -> Vec<MailMessage> {
        let mut rx = self.mail.lock().await;
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(m);
        }
        out
    }

    /// The token inside a magic-link mail.
    pub fn token_of(mail: &MailMessage) -> String {
        let link = mail.link.as_ref().expect("mail has a link");
        assert!(mail.text_body.contains(link), "link is in the body");
        link.split("token=")
            .nth(1)
            .expect("token in link")
            .to_string()
    }

    pub async fn verify(&self, token: &str) -> reqwest::Response {
        self.post("/api/v1/auth/verify", serde_json::json!({ "token": token }))
            .await
    }

    /// Registers a tenant and returns its owner's access token.
    pub async fn register_owner(&self, email: &str, business: &str) -> String {
        let r = self
            .post(
                "/api/v1/auth/register",
                serde_json::json!({"email": email, "business_name": business}),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let mail = self.next_mail().await;
        assert_eq!(mail.to, email.to_lowercase());
        let v: Value = self
            .verify(&Self::token_of(&mail))
            .await
            .json()
            .await
            .unwrap();
        v["access_token"]
            .as_str()
            .expect("access token")
            .to_string()
    }

    /// Signs in an existing user by login link.
    pub async fn login(&self, email: &str) -> String {
        let r = self
            .post("/api/v1/auth/login", serde_json::json!({ "email": email }))
            .await;
        assert_eq!(r.status(), 200);
        let mail = self.next_mail().await;
        let v: Value = self
            .verify(&Self::token_of(&mail))
            .await
            .json()
            .await
            .unwrap();
        v["access_token"]
            .as_str()
            .expect("access token")
            .to_string()
    }

    pub async fn cleanup(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

/// Runs `f` once per engine under test.
#[macro_export]
macro_rules! for_each_engine {
    (|$app:ident| $body:expr) => {
        for engine in talky_store::testing::engines() {
            let $app = $crate::helpers::spawn_app(engine).await;
            $body;
            $app.cleanup().await;
        }
    };
}

pub async fn json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(Value::Null);
    (status, v)
}
