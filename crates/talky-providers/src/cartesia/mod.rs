//! Cartesia text-to-speech (protocols §6).
//!
//! [`CartesiaTts`] implements the core [`Tts`] port:
//!
//! * [`Tts::open_session`] opens the preferred WebSocket (`/tts/websocket`, one per call) and
//!   spawns a task that owns it ([`ws`]). Utterances are multiplexed by `context_id`; sentences go
//!   out with `continue: true`, the end of an utterance with `continue: false`; a cancel sends
//!   `{"context_id":…,"cancel":true}` and drops whatever still arrives for that context.
//! * [`Tts::synthesize_stream`] is the HTTP fallback `POST /tts/bytes` (raw PCM body, arbitrary
//!   chunk boundaries), used for single texts and for the G17 retry of a failed sentence.
//!
//! Auth is `X-API-Key` + `Cartesia-Version` headers (or the `api_key` / `cartesia_version` query
//! parameters on the WebSocket when [`CartesiaConfig::auth_in_query`] is set). Audio chunks
//! handed to callers always hold whole samples: odd bytes are carried to the next chunk.

mod messages;
mod ws;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{json, Map, Value};
use talky_core::ports::tts::{
    Tts, TtsChunk, TtsEncoding, TtsError, TtsRequest, TtsSession, TtsSessionOptions,
};

pub use messages::{parse_server_message, ServerMessage};

/// Cartesia REST/WebSocket host.
pub const DEFAULT_BASE_URL: &str = "https://api.cartesia.ai";
/// Pinned `Cartesia-Version`.
pub const DEFAULT_VERSION: &str = "2025-04-16";
/// Default model.
pub const DEFAULT_MODEL: &str = "sonic-3";
/// Output sample rates Cartesia accepts.
pub const SAMPLE_RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// Everything needed to talk to Cartesia. `Debug` never prints the key.
#[derive(Clone, PartialEq)]
pub struct CartesiaConfig {
    /// `https://api.cartesia.ai`; `/tts/bytes` is appended for HTTP, and the WebSocket URL is
    /// derived from it (`wss://…/tts/websocket`) unless `ws_url` is set.
    pub base_url: String,
    /// Full WebSocket URL override (`cartesia.ws_url`).
    pub ws_url: Option<String>,
    pub api_key: String,
    /// `Cartesia-Version` header value.
    pub version: String,
    /// Default voice (a voice UUID); sessions/requests may override it.
    pub voice_id: String,
    /// `model_id`, e.g. `sonic-3`.
    pub model: String,
    /// Default language (`en`).
    pub language: String,
    /// Output rate used when a request or session asks for rate 0 ("provider default").
    pub sample_rate: u32,
    /// Send the key and version as WebSocket query parameters instead of headers.
    pub auth_in_query: bool,
    /// WebSocket connect timeout (§0.1: 5 s).
    pub ws_connect_timeout: Duration,
    /// HTTP connect timeout (§0.1: 3 s).
    pub http_connect_timeout: Duration,
    /// Total timeout of one `/tts/bytes` request, body included (§0.1: 10 s).
    pub http_timeout: Duration,
}

impl Default for CartesiaConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            ws_url: None,
            api_key: String::new(),
            version: DEFAULT_VERSION.into(),
            voice_id: String::new(),
            model: DEFAULT_MODEL.into(),
            language: "en".into(),
            sample_rate: 16_000,
            auth_in_query: false,
            ws_connect_timeout: Duration::from_secs(5),
            http_connect_timeout: Duration::from_secs(3),
            http_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for CartesiaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CartesiaConfig")
            .field("base_url", &self.base_url)
            .field("ws_url", &self.ws_url)
            .field("api_key", &crate::llm::redact(&self.api_key))
            .field("version", &self.version)
            .field("voice_id", &self.voice_id)
            .field("model", &self.model)
            .field("language", &self.language)
            .field("sample_rate", &self.sample_rate)
            .field("auth_in_query", &self.auth_in_query)
            .field("ws_connect_timeout", &self.ws_connect_timeout)
            .field("http_connect_timeout", &self.http_connect_timeout)
            .field("http_timeout", &self.http_timeout)
            .finish()
    }
}

impl CartesiaConfig {
    /// The WebSocket endpoint (without auth query parameters).
    pub fn websocket_url(&self) -> Result<String, TtsError> {
        if let Some(u) = &self.ws_url {
            let u = u.trim();
            if !(u.starts_with("ws://") || u.starts_with("wss://")) {
                return Err(TtsError::Config(format!(
                    "cartesia ws_url {u:?} must start with ws:// or wss://"
                )));
            }
            return Ok(u.to_string());
        }
        let base = self.http_base()?;
        let rest = base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
            .unwrap_or(base);
        Ok(format!("{rest}/tts/websocket"))
    }

    /// The `/tts/bytes` endpoint.
    pub fn bytes_url(&self) -> Result<String, TtsError> {
        Ok(format!("{}/tts/bytes", self.http_base()?))
    }

    fn http_base(&self) -> Result<String, TtsError> {
        let base = self.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(TtsError::Config(format!(
                "cartesia base_url {base:?} must start with http:// or https://"
            )));
        }
        Ok(base.to_string())
    }

    /// Session options in the configured voice, language and rate.
    pub fn default_options(&self) -> TtsSessionOptions {
        TtsSessionOptions {
            voice_id: Some(self.voice_id.clone()),
            language: Some(self.language.clone()),
            output_sample_rate: self.sample_rate,
            encoding: TtsEncoding::PcmS16le,
            speed: None,
        }
    }
}

/// Voice + format resolved against the configuration: the constant part of every request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub model: String,
    pub voice_id: String,
    pub language: String,
    pub sample_rate: u32,
    pub encoding: TtsEncoding,
    pub speed: Option<f32>,
}

impl Resolved {
    fn new(config: &CartesiaConfig, opts: &TtsSessionOptions) -> Result<Self, TtsError> {
        let voice_id = opts
            .voice_id
            .clone()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| config.voice_id.clone());
        if voice_id.trim().is_empty() {
            return Err(TtsError::Config("cartesia voice_id is empty".into()));
        }
        let sample_rate = match opts.output_sample_rate {
            0 => config.sample_rate,
            r => r,
        };
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(TtsError::Config(format!(
                "cartesia cannot produce {sample_rate} Hz (allowed: {SAMPLE_RATES:?})"
            )));
        }
        Ok(Self {
            model: config.model.clone(),
            voice_id,
            language: opts
                .language
                .clone()
                .filter(|l| !l.trim().is_empty())
                .unwrap_or_else(|| config.language.clone()),
            sample_rate,
            encoding: opts.encoding,
            speed: opts.speed,
        })
    }

    /// The request body shared by HTTP and WebSocket (§6.1/§6.2), without context fields.
    pub(crate) fn body(&self, transcript: &str) -> Map<String, Value> {
        let encoding = match self.encoding {
            TtsEncoding::PcmS16le => "pcm_s16le",
            TtsEncoding::PcmMulaw => "pcm_mulaw",
            TtsEncoding::PcmAlaw => "pcm_alaw",
        };
        let mut body = Map::new();
        body.insert("model_id".into(), json!(self.model));
        body.insert("transcript".into(), json!(transcript));
        body.insert("voice".into(), json!({"mode": "id", "id": self.voice_id}));
        body.insert("language".into(), json!(self.language));
        body.insert(
            "output_format".into(),
            json!({"container": "raw", "encoding": encoding, "sample_rate": self.sample_rate}),
        );
        if let Some(speed) = self.speed {
            let speed = ((speed.clamp(0.6, 1.5) as f64) * 100.0).round() / 100.0;
            body.insert("generation_config".into(), json!({ "speed": speed }));
        }
        body
    }

    pub(crate) fn chunk(&self, audio: Bytes) -> TtsChunk {
        TtsChunk {
            audio,
            sample_rate: self.sample_rate,
            encoding: self.encoding,
        }
    }
}

/// Keeps chunks sample-aligned: odd trailing bytes wait for the next chunk.
#[derive(Debug, Default)]
pub(crate) struct ByteCarry {
    carry: Vec<u8>,
}

impl ByteCarry {
    /// Whole samples from `carry + data`; the remainder is kept.
    pub(crate) fn push(&mut self, data: &[u8], bytes_per_sample: usize) -> Bytes {
        let partial = data.len() % bytes_per_sample;
        if self.carry.is_empty() && partial == 0 {
            return Bytes::copy_from_slice(data);
        }
        let mut all = std::mem::take(&mut self.carry);
        all.extend_from_slice(data);
        let whole = all.len() - all.len() % bytes_per_sample;
        self.carry = all.split_off(whole);
        Bytes::from(all)
    }

    pub(crate) fn leftover(&self) -> usize {
        self.carry.len()
    }
}

/// The Cartesia client.
#[derive(Clone)]
pub struct CartesiaTts {
    config: CartesiaConfig,
    http: reqwest::Client,
}

impl fmt::Debug for CartesiaTts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CartesiaTts")
            .field("config", &self.config)
            .finish()
    }
}

impl CartesiaTts {
    /// Validates the configuration and builds the HTTP client.
    pub fn new(config: CartesiaConfig) -> Result<Self, TtsError> {
        config.websocket_url()?;
        config.bytes_url()?;
        if config.model.trim().is_empty() {
            return Err(TtsError::Config("cartesia model is empty".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.http_connect_timeout)
            .build()
            .map_err(|e| TtsError::Config(format!("http client: {e}")))?;
        Ok(Self { config, http })
    }

    pub fn config(&self) -> &CartesiaConfig {
        &self.config
    }
}

/// Maps an HTTP status (+ provider message) to the port's error.
pub(crate) fn error_from_status(
    status: u16,
    message: String,
    retry_after: Option<Duration>,
) -> TtsError {
    match status {
        401 | 403 => TtsError::Unauthorized { status, message },
        429 => TtsError::RateLimited {
            retry_after,
            message,
        },
        _ => TtsError::Http { status, message },
    }
}

/// A readable message from a Cartesia error body (`error`, or `title` + `message`).
pub(crate) fn error_body_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let msg = match serde_json::from_str::<Value>(&text) {
        Ok(v) => messages::error_text(&v).unwrap_or_else(|| text.trim().to_string()),
        Err(_) => text.trim().to_string(),
    };
    let mut msg = msg;
    if msg.len() > 500 {
        let mut end = 500;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg.truncate(end);
        msg.push('…');
    }
    msg
}

pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[async_trait]
impl Tts for CartesiaTts {
    async fn synthesize_stream(
        &self,
        req: TtsRequest,
    ) -> Result<BoxStream<'static, Result<TtsChunk, TtsError>>, TtsError> {
        let resolved = Resolved::new(&self.config, &req.options())?;
        let body = Value::Object(resolved.body(req.text.trim()));
        let resp = self
            .http
            .post(self.config.bytes_url()?)
            .header("X-API-Key", &self.config.api_key)
            .header("Cartesia-Version", &self.config.version)
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.config.http_timeout)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    TtsError::Timeout("cartesia /tts/bytes request".into())
                } else {
                    TtsError::Connect(e.without_url().to_string())
                }
            })?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = parse_retry_after(resp.headers());
            let body = resp.bytes().await.unwrap_or_default();
            return Err(error_from_status(
                status.as_u16(),
                error_body_message(&body),
                retry_after,
            ));
        }
        let bps = resolved.encoding.bytes_per_sample();
        struct St {
            body: BoxStream<'static, reqwest::Result<Bytes>>,
            carry: ByteCarry,
            any: bool,
            done: bool,
            resolved: Resolved,
        }
        let st = St {
            body: resp.bytes_stream().boxed(),
            carry: ByteCarry::default(),
            any: false,
            done: false,
            resolved,
        };
        Ok(stream::unfold(st, move |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                match st.body.next().await {
                    Some(Ok(data)) => {
                        let audio = st.carry.push(&data, bps);
                        if !audio.is_empty() {
                            st.any = true;
                            let chunk = st.resolved.chunk(audio);
                            return Some((Ok(chunk), st));
                        }
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        let err = if e.is_timeout() {
                            TtsError::Timeout("cartesia /tts/bytes body".into())
                        } else {
                            TtsError::Closed(format!(
                                "cartesia /tts/bytes body: {}",
                                e.without_url()
                            ))
                        };
                        return Some((Err(err), st));
                    }
                    None => {
                        st.done = true;
                        if st.carry.leftover() > 0 {
                            tracing::debug!(
                                bytes = st.carry.leftover(),
                                "cartesia: dropping partial sample at end of audio"
                            );
                        }
                        if !st.any {
                            return Some((Err(TtsError::Empty), st));
                        }
                        return None;
                    }
                }
            }
        })
        .boxed())
    }

    async fn open_session(&self, opts: TtsSessionOptions) -> Result<TtsSession, TtsError> {
        let resolved = Resolved::new(&self.config, &opts)?;
        ws::open(&self.config, resolved, opts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_derived_from_the_base() {
        let cfg = CartesiaConfig::default();
        assert_eq!(
            cfg.websocket_url().unwrap(),
            "wss://api.cartesia.ai/tts/websocket"
        );
        assert_eq!(
            cfg.bytes_url().unwrap(),
            "https://api.cartesia.ai/tts/bytes"
        );
        let cfg = CartesiaConfig {
            base_url: "http://127.0.0.1:9/".into(),
            ..CartesiaConfig::default()
        };
        assert_eq!(
            cfg.websocket_url().unwrap(),
            "ws://127.0.0.1:9/tts/websocket"
        );
        let cfg = CartesiaConfig {
            base_url: "api.cartesia.ai".into(),
            ..CartesiaConfig::default()
        };
        assert!(matches!(CartesiaTts::new(cfg), Err(TtsError::Config(_))));
    }

    #[test]
    fn debug_hides_key() {
        let cfg = CartesiaConfig {
            api_key: "sk_car_supersecret".into(),
            ..CartesiaConfig::default()
        };
        let s = format!("{cfg:?}");
        assert!(!s.contains("supersecret"), "{s}");
    }

    #[test]
    fn carry_keeps_whole_samples() {
        let mut c = ByteCarry::default();
        assert_eq!(&c.push(&[1, 2, 3], 2)[..], &[1, 2]);
        assert_eq!(&c.push(&[4], 2)[..], &[3, 4]);
        assert_eq!(&c.push(&[5], 2)[..], &[] as &[u8]);
        assert_eq!(&c.push(&[6, 7, 8], 2)[..], &[5, 6, 7, 8]);
        assert_eq!(c.leftover(), 0);
        assert_eq!(&c.push(&[9], 1)[..], &[9]);
    }

    #[test]
    fn request_body_shape() {
        let cfg = CartesiaConfig {
            voice_id: "voice-1".into(),
            ..CartesiaConfig::default()
        };
        let r = Resolved::new(
            &cfg,
            &TtsSessionOptions {
                speed: Some(1.1),
                ..TtsSessionOptions::default()
            },
        )
        .unwrap();
        let b = Value::Object(r.body("Hi."));
        assert_eq!(b["model_id"], "sonic-3");
        assert_eq!(b["voice"]["mode"], "id");
        assert_eq!(b["voice"]["id"], "voice-1");
        assert_eq!(b["language"], "en");
        assert_eq!(b["output_format"]["encoding"], "pcm_s16le");
        assert_eq!(b["output_format"]["sample_rate"], 16000);
        assert_eq!(b["generation_config"]["speed"], 1.1);
        let bad = Resolved::new(
            &cfg,
            &TtsSessionOptions {
                output_sample_rate: 11025,
                ..TtsSessionOptions::default()
            },
        );
        assert!(matches!(bad, Err(TtsError::Config(_))));
        let no_voice = Resolved::new(&CartesiaConfig::default(), &TtsSessionOptions::default());
        assert!(matches!(no_voice, Err(TtsError::Config(_))));
    }
}
