//! Deepgram streaming speech-to-text: the classic `/v1/listen` API and Flux (`/v2/listen`).
//!
//! [`DeepgramStt`] implements the core [`Stt`] port. One configuration selects one API family
//! (`flux: false` → v1, `flux: true` → Flux); a deployment that fails over between them holds two
//! instances. Wire details follow `protocols.md` §4 and §5:
//!
//! * `connect` performs the WebSocket upgrade with `Authorization: Token <key>` and only the query
//!   parameters Talky is allowed to send; a 4xx/5xx upgrade becomes [`SttError::Rejected`].
//! * A per-stream task ([`connection`]) batches caller audio into ≥ `min_chunk` messages, keeps the
//!   stream alive (v1 `KeepAlive` after `keepalive_interval` without audio; Flux real-time digital
//!   silence after `flux_silence_after` without audio), translates `Finalize` / `Close` requests
//!   and maps every server message to [`talky_core::ports::stt::SttEvent`]s ([`messages`]).
//! * Nothing in here panics on provider input: unknown messages are ignored, malformed ones
//!   become non-fatal error events, and any unexpected close becomes a fatal error event followed
//!   by `Closed`.

mod connection;
mod messages;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use talky_core::ports::stt::{Stt, SttEncoding, SttError, SttOptions, SttStream};

pub use messages::{parse_flux_message, parse_v1_message};

/// Default Deepgram host; `/v1/listen` or `/v2/listen` is appended.
pub const DEFAULT_BASE_URL: &str = "wss://api.deepgram.com";
/// Default v1 model.
pub const DEFAULT_V1_MODEL: &str = "nova-3";
/// Default Flux model.
pub const DEFAULT_FLUX_MODEL: &str = "flux-general-en";

/// Everything needed to talk to Deepgram. `Debug` never prints the key.
#[derive(Clone, PartialEq)]
pub struct DeepgramConfig {
    /// `wss://api.deepgram.com` by default. `ws://` is accepted (mocks), `http(s)://` is mapped
    /// to `ws(s)://`. A URL whose path already ends in `/listen` (e.g. the full
    /// `deepgram.v1_url` / `deepgram.flux_url` of the configuration) is used as is; otherwise
    /// `/v1/listen` or `/v2/listen` is appended to its path.
    pub base_url: String,
    /// Deepgram API key, sent as `Authorization: Token <key>`.
    pub api_key: String,
    /// `nova-3` (v1) or `flux-general-en` (Flux).
    pub model: String,
    /// Use Flux (`/v2/listen`, turn events) instead of v1.
    pub flux: bool,

    /// v1 `interim_results` (required by `utterance_end_ms`).
    pub interim_results: bool,
    /// v1 `endpointing` in ms; `None` sends `endpointing=false`.
    pub endpointing_ms: Option<u32>,
    /// v1 `utterance_end_ms`; `None` omits it (no `UtteranceEnd` events).
    pub utterance_end_ms: Option<u32>,
    /// v1 `vad_events` (`SpeechStarted`).
    pub vad_events: bool,
    /// v1 `smart_format`.
    pub smart_format: bool,

    /// Flux `eot_threshold`, 0.5–0.9.
    pub eot_threshold: f32,
    /// Flux `eager_eot_threshold`, 0.3–0.9 and ≤ `eot_threshold`; `None` disables
    /// `EagerEndOfTurn`.
    pub eager_eot_threshold: Option<f32>,
    /// Flux `eot_timeout_ms`, 500–10000.
    pub eot_timeout_ms: u32,

    /// WebSocket connect (TCP + TLS + upgrade) timeout.
    pub connect_timeout: Duration,
    /// v1: send `KeepAlive` when no audio was sent for this long, and again every interval.
    pub keepalive_interval: Duration,
    /// Flux: after this long without caller audio, start sending digital silence.
    pub flux_silence_after: Duration,
    /// Flux: length of each silence chunk; one chunk is sent per chunk length (real time).
    pub flux_silence_chunk: Duration,
    /// Caller audio is batched into messages of at least this much audio (80 ms by default,
    /// the chunk size Deepgram recommends); a partial batch is sent when it is this old. Zero
    /// sends every push as its own message. Batching never delays the end of a turn: the
    /// session sends audio with `SttCommand::Flush` while a caller turn may be ending.
    pub min_chunk: Duration,
    /// After `CloseStream`, how long to wait for the server's close before closing ourselves.
    pub close_timeout: Duration,
}

impl DeepgramConfig {
    /// v1 (`nova-3`) with Talky's defaults (protocols §4.1).
    pub fn v1(api_key: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: api_key.into(),
            model: DEFAULT_V1_MODEL.to_string(),
            flux: false,
            interim_results: true,
            endpointing_ms: Some(300),
            utterance_end_ms: Some(1000),
            vad_events: true,
            smart_format: true,
            eot_threshold: 0.7,
            eager_eot_threshold: Some(0.5),
            eot_timeout_ms: 3000,
            connect_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(5),
            flux_silence_after: Duration::from_millis(200),
            flux_silence_chunk: Duration::from_millis(80),
            min_chunk: Duration::from_millis(80),
            close_timeout: Duration::from_secs(3),
        }
    }

    /// Flux (`flux-general-en`) with Talky's defaults (protocols §5.1).
    pub fn flux(api_key: impl Into<String>) -> Self {
        Self {
            model: DEFAULT_FLUX_MODEL.to_string(),
            flux: true,
            ..Self::v1(api_key)
        }
    }

    /// Same configuration pointed at another host (a mock, a proxy).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Checks everything that does not depend on per-stream options. Values the provider would
    /// reject with HTTP 400 are caught here instead.
    pub fn validate(&self) -> Result<(), SttError> {
        let bad = |m: String| Err(SttError::Config(m));
        if self.api_key.trim().is_empty() {
            return bad("deepgram api key is empty".into());
        }
        if self.model.trim().is_empty() {
            return bad("deepgram model is empty".into());
        }
        self.endpoint()?;
        if self.flux {
            if !(0.5..=0.9).contains(&self.eot_threshold) {
                return bad(format!(
                    "eot_threshold {} is outside 0.5–0.9",
                    self.eot_threshold
                ));
            }
            if let Some(eager) = self.eager_eot_threshold {
                if !(0.3..=0.9).contains(&eager) || eager > self.eot_threshold {
                    return bad(format!(
                        "eager_eot_threshold {eager} must be within 0.3–0.9 and ≤ eot_threshold"
                    ));
                }
            }
            if !(500..=10_000).contains(&self.eot_timeout_ms) {
                return bad(format!(
                    "eot_timeout_ms {} is outside 500–10000",
                    self.eot_timeout_ms
                ));
            }
            if self.flux_silence_chunk.is_zero() {
                return bad("flux_silence_chunk must be > 0".into());
            }
        } else if self.utterance_end_ms.is_some() && !self.interim_results {
            return bad("utterance_end_ms requires interim_results".into());
        }
        if self.keepalive_interval.is_zero() {
            return bad("keepalive_interval must be > 0".into());
        }
        Ok(())
    }

    /// The listen endpoint without query parameters.
    pub fn endpoint(&self) -> Result<Url, SttError> {
        let mut url = Url::parse(self.base_url.trim()).map_err(|e| {
            SttError::Config(format!(
                "deepgram base_url {:?} is not an absolute URL: {e}",
                self.base_url
            ))
        })?;
        let scheme = match url.scheme() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            other => {
                return Err(SttError::Config(format!(
                    "deepgram base_url scheme {other:?} is not ws/wss/http/https"
                )))
            }
        };
        if url.scheme() != scheme {
            // Switching between these special schemes is always allowed by the URL spec.
            url.set_scheme(scheme)
                .map_err(|_| SttError::Config("cannot change base_url scheme".into()))?;
        }
        let path = url.path().trim_end_matches('/').to_string();
        if !path.ends_with("/listen") {
            let suffix = if self.flux {
                "/v2/listen"
            } else {
                "/v1/listen"
            };
            url.set_path(&format!("{path}{suffix}"));
        }
        url.set_query(None);
        url.set_fragment(None);
        Ok(url)
    }

    /// The full listen URL for one stream, with exactly the parameters of protocols §4.1/§5.1.
    pub fn listen_url(&self, opts: &SttOptions) -> Result<Url, SttError> {
        if opts.sample_rate == 0 {
            return Err(SttError::Config("sample_rate must be > 0".into()));
        }
        let mut url = self.endpoint()?;
        let encoding = match opts.encoding {
            SttEncoding::Linear16 => "linear16",
            SttEncoding::Mulaw => "mulaw",
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("model", &self.model);
            q.append_pair("encoding", encoding);
            q.append_pair("sample_rate", &opts.sample_rate.to_string());
            if self.flux {
                q.append_pair("eot_threshold", &self.eot_threshold.to_string());
                if let Some(eager) = self.eager_eot_threshold {
                    q.append_pair("eager_eot_threshold", &eager.to_string());
                }
                q.append_pair("eot_timeout_ms", &self.eot_timeout_ms.to_string());
            } else {
                q.append_pair("channels", "1");
                q.append_pair("interim_results", bool_str(self.interim_results));
                match self.endpointing_ms {
                    Some(ms) => q.append_pair("endpointing", &ms.to_string()),
                    None => q.append_pair("endpointing", "false"),
                };
                if let Some(ms) = self.utterance_end_ms {
                    q.append_pair("utterance_end_ms", &ms.to_string());
                }
                q.append_pair("vad_events", bool_str(self.vad_events));
                q.append_pair("smart_format", bool_str(self.smart_format));
                if let Some(lang) = opts.language.as_deref().filter(|l| !l.is_empty()) {
                    q.append_pair("language", lang);
                }
            }
            for term in opts.keyterms.iter().filter(|t| !t.trim().is_empty()) {
                q.append_pair("keyterm", term.trim());
            }
        }
        Ok(url)
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl fmt::Debug for DeepgramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key: String = if self.api_key.is_empty() {
            String::new()
        } else {
            format!("{}…", self.api_key.chars().take(6).collect::<String>())
        };
        f.debug_struct("DeepgramConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &key)
            .field("model", &self.model)
            .field("flux", &self.flux)
            .field("interim_results", &self.interim_results)
            .field("endpointing_ms", &self.endpointing_ms)
            .field("utterance_end_ms", &self.utterance_end_ms)
            .field("vad_events", &self.vad_events)
            .field("smart_format", &self.smart_format)
            .field("eot_threshold", &self.eot_threshold)
            .field("eager_eot_threshold", &self.eager_eot_threshold)
            .field("eot_timeout_ms", &self.eot_timeout_ms)
            .field("connect_timeout", &self.connect_timeout)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("flux_silence_after", &self.flux_silence_after)
            .field("flux_silence_chunk", &self.flux_silence_chunk)
            .field("min_chunk", &self.min_chunk)
            .field("close_timeout", &self.close_timeout)
            .finish()
    }
}

/// The Deepgram implementation of the [`Stt`] port.
#[derive(Debug, Clone)]
pub struct DeepgramStt {
    config: DeepgramConfig,
}

impl DeepgramStt {
    /// Validates the configuration once, at startup.
    pub fn new(config: DeepgramConfig) -> Result<Self, SttError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &DeepgramConfig {
        &self.config
    }
}

#[async_trait]
impl Stt for DeepgramStt {
    fn name(&self) -> &str {
        if self.config.flux {
            "deepgram-flux"
        } else {
            "deepgram"
        }
    }

    async fn connect(&self, opts: SttOptions) -> Result<SttStream, SttError> {
        connection::open(&self.config, self.name(), &opts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &Url) -> String {
        url.query().unwrap_or_default().to_string()
    }

    #[test]
    fn v1_url_matches_protocol() {
        let cfg = DeepgramConfig::v1("k");
        let url = cfg.listen_url(&SttOptions::default()).unwrap();
        assert_eq!(
            url.as_str(),
            "wss://api.deepgram.com/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000\
             &channels=1&interim_results=true&endpointing=300&utterance_end_ms=1000\
             &vad_events=true&smart_format=true"
        );
    }

    #[test]
    fn flux_url_matches_protocol() {
        let cfg = DeepgramConfig::flux("k");
        let url = cfg.listen_url(&SttOptions::default()).unwrap();
        assert_eq!(
            url.as_str(),
            "wss://api.deepgram.com/v2/listen?model=flux-general-en&encoding=linear16\
             &sample_rate=16000&eot_threshold=0.7&eager_eot_threshold=0.5&eot_timeout_ms=3000"
        );
    }

    #[test]
    fn keyterms_language_and_encoding_are_encoded() {
        let cfg = DeepgramConfig {
            endpointing_ms: None,
            ..DeepgramConfig::v1("k")
        };
        let opts = SttOptions {
            encoding: SttEncoding::Mulaw,
            sample_rate: 8000,
            language: Some("en-GB".into()),
            keyterms: vec!["Talky AI".into(), " ".into(), "O'Brien&Co".into()],
        };
        let q = query(&cfg.listen_url(&opts).unwrap());
        assert!(q.contains("encoding=mulaw&sample_rate=8000"), "{q}");
        assert!(q.contains("endpointing=false"), "{q}");
        assert!(q.contains("language=en-GB"), "{q}");
        assert!(
            q.ends_with("keyterm=Talky+AI&keyterm=O%27Brien%26Co"),
            "{q}"
        );
        // Flux never sends v1-only parameters.
        let q = query(&DeepgramConfig::flux("k").listen_url(&opts).unwrap());
        assert!(!q.contains("language") && !q.contains("channels"), "{q}");
    }

    #[test]
    fn base_url_forms() {
        let ep = |base: &str, flux: bool| {
            let mut c = if flux {
                DeepgramConfig::flux("k")
            } else {
                DeepgramConfig::v1("k")
            };
            c.base_url = base.into();
            c.endpoint().map(|u| u.to_string())
        };
        assert_eq!(
            ep("ws://127.0.0.1:9/", false).unwrap(),
            "ws://127.0.0.1:9/v1/listen"
        );
        assert_eq!(
            ep("http://127.0.0.1:9", true).unwrap(),
            "ws://127.0.0.1:9/v2/listen"
        );
        assert_eq!(
            ep("https://proxy.example/dg", false).unwrap(),
            "wss://proxy.example/dg/v1/listen"
        );
        assert_eq!(
            ep("wss://api.deepgram.com/v2/listen?x=1", true).unwrap(),
            "wss://api.deepgram.com/v2/listen"
        );
        assert!(matches!(
            ep("api.deepgram.com", false),
            Err(SttError::Config(_))
        ));
        assert!(matches!(ep("ftp://x", false), Err(SttError::Config(_))));
    }

    #[test]
    fn validation_catches_out_of_range_flux_values() {
        let mut c = DeepgramConfig::flux("k");
        assert!(c.validate().is_ok());
        c.eager_eot_threshold = Some(0.8);
        c.eot_threshold = 0.7;
        assert!(c.validate().is_err());
        let mut c = DeepgramConfig::flux("k");
        c.eot_timeout_ms = 100;
        assert!(c.validate().is_err());
        let mut c = DeepgramConfig::v1("");
        assert!(c.validate().is_err());
        c.api_key = "k".into();
        c.interim_results = false;
        assert!(c.validate().is_err());
    }

    #[test]
    fn debug_redacts_key() {
        let s = format!("{:?}", DeepgramConfig::v1("abcdefghijklmnop"));
        assert!(s.contains("abcdef…"), "{s}");
        assert!(!s.contains("ghijkl"), "{s}");
    }
}
