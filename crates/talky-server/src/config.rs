//! Configuration (architecture.md §7): compiled defaults ← optional TOML file (`--config`)
//! ← `TALKY_*` environment variables (`__` separates sections: `TALKY_AUTH__JWT_SECRET`).
//! Validated once at startup; an invalid value fails naming its key. Secrets are redacted
//! in `Debug`. [`KEYS`] documents every key; `talky config example` prints it.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A secret string: never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    pub log_format: LogFormat,
    pub cors_origins: Vec<String>,
    pub auth: AuthConfig,
    pub import: ImportConfig,
    pub media: MediaConfig,
    pub stt: SttConfig,
    pub llm: LlmConfig,
    pub tts: TtsConfig,
    pub storage: StorageConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 key (≥ 32 bytes). Unset: generated once and kept in `<data_dir>/jwt_secret`.
    pub jwt_secret: Option<Secret>,
    pub link_ttl_secs: i64,
    pub session_ttl_secs: i64,
    pub link_rate_per_hour: i64,
    pub ip_rate_per_min: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    pub max_bytes: usize,
    pub max_rows: usize,
    pub max_errors: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Key for per-call media tokens; distinct from the session key. Unset: generated once
    /// and kept in `<data_dir>/media_secret`.
    pub token_secret: Option<Secret>,
    pub max_pending_sockets: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SttConfig {
    pub provider: SttProvider,
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Unset: `nova-3` for `deepgram`, `flux-general-en` for `deepgram-flux`.
    pub model: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SttProvider {
    Deepgram,
    DeepgramFlux,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
    pub temperature: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsConfig {
    pub provider: TtsProvider,
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub voice_id: String,
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtsProvider {
    Cartesia,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Recordings folder. Unset: `<data_dir>/recordings`.
    pub recordings_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("./talky-data"),
            database_url: None,
            public_url: None,
            smtp_url: None,
            mail_from: "Talky <no-reply@talky.local>".into(),
            log_format: LogFormat::Text,
            cors_origins: Vec::new(),
            auth: AuthConfig::default(),
            import: ImportConfig::default(),
            media: MediaConfig::default(),
            stt: SttConfig::default(),
            llm: LlmConfig::default(),
            tts: TtsConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            link_ttl_secs: 15 * 60,
            session_ttl_secs: 12 * 3600,
            link_rate_per_hour: 5,
            ip_rate_per_min: 20,
        }
    }
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_rows: 50_000,
            max_errors: 100,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            token_secret: None,
            max_pending_sockets: 200,
        }
    }
}

impl Default for SttConfig {
    fn default() -> Self {
        Self {
            provider: SttProvider::Deepgram,
            base_url: "wss://api.deepgram.com".into(),
            api_key: None,
            model: None,
        }
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.groq.com/openai/v1".into(),
            api_key: None,
            model: "llama-3.1-8b-instant".into(),
            temperature: 0.6,
        }
    }
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self {
            provider: TtsProvider::Cartesia,
            base_url: "https://api.cartesia.ai".into(),
            api_key: None,
            voice_id: String::new(),
            model: "sonic-2".into(),
        }
    }
}

/// Every key with its default (as TOML) and a one-line description; `talky config example`
/// prints this and a test checks it matches `Config`.
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "listen",
        "\"127.0.0.1:8000\"",
        "address the HTTP server binds",
    ),
    (
        "data_dir",
        "\"./talky-data\"",
        "folder for the SQLite file, outbox, secrets, recordings and the live-call recording spool",
    ),
    (
        "database_url",
        "\"sqlite://<data_dir>/talky.db\"",
        "sqlite://PATH or postgres://USER@HOST/DB",
    ),
    (
        "public_url",
        "\"http://<listen>\"",
        "base URL users and carriers reach Talky at (links, webhooks)",
    ),
    (
        "smtp_url",
        "(unset: mail goes to <data_dir>/outbox)",
        "smtp://host:port, smtp+starttls://user:pass@host, smtps://user:pass@host",
    ),
    (
        "mail_from",
        "\"Talky <no-reply@talky.local>\"",
        "sender of outgoing mail",
    ),
    ("log_format", "\"text\"", "text or json"),
    (
        "cors_origins",
        "[]",
        "origins allowed by CORS; [] = same-origin only, [\"*\"] = any",
    ),
    (
        "auth.jwt_secret",
        "(unset: generated into <data_dir>/jwt_secret)",
        "HS256 session key, at least 32 bytes",
    ),
    ("auth.link_ttl_secs", "900", "magic-link lifetime"),
    (
        "auth.session_ttl_secs",
        "43200",
        "session lifetime, 3600..=604800",
    ),
    (
        "auth.link_rate_per_hour",
        "5",
        "link mails per address per hour",
    ),
    (
        "auth.ip_rate_per_min",
        "20",
        "register/login/verify requests per client IP per minute",
    ),
    (
        "import.max_bytes",
        "10485760",
        "largest accepted CSV upload",
    ),
    ("import.max_rows", "50000", "most data rows in one CSV"),
    (
        "import.max_errors",
        "100",
        "row errors listed in an import response",
    ),
    (
        "media.token_secret",
        "(unset: generated into <data_dir>/media_secret)",
        "HS256 key for per-call media tokens",
    ),
    (
        "media.max_pending_sockets",
        "200",
        "media sockets awaiting authentication per process",
    ),
    ("stt.provider", "\"deepgram\"", "deepgram or deepgram-flux"),
    (
        "stt.base_url",
        "\"wss://api.deepgram.com\"",
        "speech-to-text endpoint",
    ),
    ("stt.api_key", "(unset)", "Deepgram API key"),
    (
        "stt.model",
        "(unset: nova-3, or flux-general-en for deepgram-flux)",
        "speech-to-text model",
    ),
    (
        "llm.base_url",
        "\"https://api.groq.com/openai/v1\"",
        "any OpenAI-compatible endpoint (OpenAI, Groq, Ollama, vLLM)",
    ),
    (
        "llm.api_key",
        "(unset)",
        "LLM API key (unset: no Authorization header)",
    ),
    ("llm.model", "\"llama-3.1-8b-instant\"", "chat model"),
    ("llm.temperature", "0.6", "sampling temperature"),
    ("tts.provider", "\"cartesia\"", "text-to-speech provider"),
    (
        "tts.base_url",
        "\"https://api.cartesia.ai\"",
        "text-to-speech endpoint",
    ),
    ("tts.api_key", "(unset)", "Cartesia API key"),
    (
        "tts.voice_id",
        "\"\"",
        "default voice when a campaign names none",
    ),
    ("tts.model", "\"sonic-2\"", "text-to-speech model"),
    (
        "storage.recordings_dir",
        "(unset: <data_dir>/recordings)",
        "folder for call recordings",
    ),
];

/// Renders the commented example printed by `talky config example`.
pub fn example() -> String {
    let mut out = String::from(
        "# Talky configuration. Every key is optional; the value shown is the default.\n\
         # Environment variables override the file: TALKY_<KEY>, sections joined by '__'\n\
         # (e.g. TALKY_LISTEN, TALKY_AUTH__JWT_SECRET).\n",
    );
    let mut section = "";
    for (key, default, doc) in KEYS {
        let (sec, name) = key.split_once('.').unwrap_or(("", key));
        if sec != section {
            out.push_str(&format!("\n[{sec}]\n"));
            section = sec;
        }
        out.push_str(&format!("# {doc}\n# {name} = {default}\n"));
    }
    out
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("invalid config file {path}: {err}")]
    Parse { path: PathBuf, err: String },
    #[error("invalid configuration value for `{key}`: {msg}")]
    Invalid { key: String, msg: String },
}

impl Config {
    /// Defaults ← file ← environment, then validation.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
                path: path.into(),
                err,
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse {
                    path: path.into(),
                    err: e.to_string(),
                })?;
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("TALKY_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            let key = path.join(".");
            let Some(kind) = key_kind(&key) else {
                // Other TALKY_* variables (e.g. test settings) are not configuration.
                continue;
            };
            let parsed = parse_env_value(kind, &value).map_err(|msg| ConfigError::Invalid {
                key: key.clone(),
                msg,
            })?;
            insert_path(&mut table, &path, parsed);
        }
        let de = toml::Value::Table(table);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Invalid {
                key,
                msg: e.into_inner().to_string(),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: &str| ConfigError::Invalid {
            key: key.into(),
            msg: msg.into(),
        };
        if let Some(s) = &self.auth.jwt_secret {
            if s.0.len() < 32 {
                return Err(bad("auth.jwt_secret", "must be at least 32 bytes"));
            }
        }
        if let Some(s) = &self.media.token_secret {
            if s.0.len() < 32 {
                return Err(bad("media.token_secret", "must be at least 32 bytes"));
            }
        }
        if !(3600..=7 * 86400).contains(&self.auth.session_ttl_secs) {
            return Err(bad(
                "auth.session_ttl_secs",
                "must be between 3600 and 604800",
            ));
        }
        if !(60..=86400).contains(&self.auth.link_ttl_secs) {
            return Err(bad("auth.link_ttl_secs", "must be between 60 and 86400"));
        }
        if self.auth.ip_rate_per_min == 0 {
            return Err(bad("auth.ip_rate_per_min", "must be at least 1"));
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(bad(
                    "database_url",
                    "must start with sqlite:// or postgres://",
                ));
            }
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad("public_url", "must start with http:// or https://"));
            }
        }
        if let Some(url) = &self.smtp_url {
            talky_providers::mail::SmtpMailer::from_url(&url.0, self.mail_from_box()?)
                .map_err(|e| bad("smtp_url", &e.to_string()))?;
        }
        self.mail_from_box()?;
        if !(0.0..=2.0).contains(&self.llm.temperature) {
            return Err(bad("llm.temperature", "must be between 0 and 2"));
        }
        Ok(())
    }

    pub fn mail_from_box(&self) -> Result<lettre::message::Mailbox, ConfigError> {
        self.mail_from.parse().map_err(|e| ConfigError::Invalid {
            key: "mail_from".into(),
            msg: format!("{e}"),
        })
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/talky.db", self.data_dir.display()))
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    pub fn recordings_dir(&self) -> PathBuf {
        self.storage
            .recordings_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("recordings"))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Float,
    List,
}

fn key_kind(key: &str) -> Option<Kind> {
    let (_, default, _) = KEYS.iter().find(|(k, _, _)| *k == key)?;
    Some(if default.starts_with('[') {
        Kind::List
    } else if default.parse::<i64>().is_ok() {
        Kind::Int
    } else if default.parse::<f64>().is_ok() {
        Kind::Float
    } else {
        Kind::Str
    })
}

fn parse_env_value(kind: Kind, raw: &str) -> Result<toml::Value, String> {
    Ok(match kind {
        Kind::Str => toml::Value::String(raw.to_string()),
        Kind::Int => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected an integer, got {raw:?}"))?,
        ),
        Kind::Float => toml::Value::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected a number, got {raw:?}"))?,
        ),
        Kind::List => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
    })
}

fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                insert_path(t, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_documented_keys() {
        let cfg = Config::load(None, env(&[])).unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(cfg.database_url(), "sqlite://./talky-data/talky.db");
        assert_eq!(cfg.public_url(), "http://127.0.0.1:8000");
        // Every documented key with a literal default must round-trip through the loader.
        for (key, default, _) in KEYS {
            if default.starts_with('(') || default.contains('<') {
                continue;
            }
            let path: Vec<&str> = key.split('.').collect();
            let text = match path.as_slice() {
                [k] => format!("{k} = {default}\n"),
                [s, k] => format!("[{s}]\n{k} = {default}\n"),
                _ => unreachable!(),
            };
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("c.toml");
            std::fs::write(&f, text).unwrap();
            Config::load(Some(&f), env(&[])).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        // And every field of Config is documented.
        let value = toml::Value::try_from(Config::default()).unwrap();
        let mut fields = Vec::new();
        for (k, v) in value.as_table().unwrap() {
            match v {
                toml::Value::Table(t) => fields.extend(t.keys().map(|s| format!("{k}.{s}"))),
                _ => fields.push(k.clone()),
            }
        }
        for f in fields {
            assert!(KEYS.iter().any(|(k, _, _)| *k == f), "undocumented key {f}");
        }
    }

    #[test]
    fn env_overrides_file_and_names_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "listen = \"0.0.0.0:9000\"\n[auth]\nlink_rate_per_hour = 7\n",
        )
        .unwrap();
        let cfg = Config::load(
            Some(&f),
            env(&[
                ("TALKY_AUTH__LINK_RATE_PER_HOUR", "9"),
                ("TALKY_LLM__MODEL", "m"),
                ("TALKY_TEST_POSTGRES_URL", "ignored"),
                ("TALKY_CORS_ORIGINS", "http://a, http://b"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(cfg.auth.link_rate_per_hour, 9);
        assert_eq!(cfg.llm.model, "m");
        assert_eq!(cfg.cors_origins, vec!["http://a", "http://b"]);

        let err = Config::load(None, env(&[("TALKY_LISTEN", "nope")])).unwrap_err();
        assert!(err.to_string().contains("`listen`"), "{err}");
        let err = Config::load(None, env(&[("TALKY_AUTH__SESSION_TTL_SECS", "x")])).unwrap_err();
        assert!(err.to_string().contains("auth.session_ttl_secs"), "{err}");
        let err = Config::load(None, env(&[("TALKY_AUTH__JWT_SECRET", "short")])).unwrap_err();
        assert!(err.to_string().contains("auth.jwt_secret"), "{err}");
        let err = Config::load(None, env(&[("TALKY_STT__PROVIDER", "whisper")])).unwrap_err();
        assert!(err.to_string().contains("stt.provider"), "{err}");
        std::fs::write(&f, "[auth]\nbogus = 1\n").unwrap();
        let err = Config::load(Some(&f), env(&[])).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn secrets_are_redacted() {
        let mut cfg = Config::default();
        cfg.auth.jwt_secret = Some(Secret("x".repeat(40)));
        assert!(!format!("{cfg:?}").contains("xxxx"));
    }

    #[test]
    fn example_lists_every_key() {
        let ex = example();
        for (key, _, _) in KEYS {
            let name = key.rsplit('.').next().unwrap();
            assert!(ex.contains(&format!("# {name} = ")), "{key}");
        }
    }
}
