//! Voice calls in the server: the speech providers built from configuration (Deepgram v1
//! or Flux, any OpenAI-compatible LLM, Cartesia), the media socket that runs a
//! `talky_voice` session per call (`socket`), and the sink that persists what a session
//! produced (`sink`). Pointing the provider base URLs at `talky-mock` runs everything
//! locally.

pub mod sink;
pub mod socket;

use crate::config::{Config, SttProvider};
use anyhow::Context;
use std::sync::Arc;
use talky_core::ports::llm::Llm;
use talky_core::ports::stt::Stt;
use talky_core::ports::tts::Tts;
use talky_providers::cartesia::{CartesiaConfig, CartesiaTts};
use talky_providers::deepgram::{DeepgramConfig, DeepgramStt};
use talky_providers::llm::{LlmConfig, OpenAiCompatLlm};

/// The three streaming providers of a call.
#[derive(Clone)]
pub struct VoiceProviders {
    pub stt: Arc<dyn Stt>,
    pub llm: Arc<dyn Llm>,
    pub tts: Arc<dyn Tts>,
}

impl VoiceProviders {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        let key =
            |s: &Option<crate::config::Secret>| s.as_ref().map(|k| k.0.clone()).unwrap_or_default();
        let mut dg = match cfg.stt.provider {
            SttProvider::Deepgram => DeepgramConfig::v1(key(&cfg.stt.api_key)),
            SttProvider::DeepgramFlux => DeepgramConfig::flux(key(&cfg.stt.api_key)),
        }
        .with_base_url(cfg.stt.base_url.clone());
        if let Some(model) = &cfg.stt.model {
            dg.model = model.clone();
        }
        let stt: Arc<dyn Stt> = if dg.api_key.trim().is_empty() {
            tracing::warn!("stt.api_key is not set: voice calls cannot transcribe the caller until it is configured");
            Arc::new(Unconfigured(
                "speech-to-text is not configured: set stt.api_key (TALKY_STT__API_KEY)",
            ))
        } else {
            Arc::new(DeepgramStt::new(dg).map_err(|e| anyhow::anyhow!("stt configuration: {e}"))?)
        };
        let llm = OpenAiCompatLlm::new(LlmConfig {
            base_url: cfg.llm.base_url.clone(),
            api_key: cfg.llm.api_key.as_ref().map(|k| k.0.clone()),
            model: cfg.llm.model.clone(),
            temperature: Some(cfg.llm.temperature as f32),
            ..LlmConfig::default()
        })
        .map_err(|e| anyhow::anyhow!("llm configuration: {e}"))
        .context("building the LLM client")?;
        let tts = CartesiaTts::new(CartesiaConfig {
            base_url: cfg.tts.base_url.clone(),
            api_key: key(&cfg.tts.api_key),
            voice_id: cfg.tts.voice_id.clone(),
            model: cfg.tts.model.clone(),
            ..CartesiaConfig::default()
        })
        .map_err(|e| anyhow::anyhow!("tts configuration: {e}"))?;
        if cfg.tts.api_key.is_none() {
            tracing::warn!(
                "tts.api_key is not set: voice calls cannot speak until it is configured"
            );
        }
        Ok(Self {
            stt,
            llm: Arc::new(llm),
            tts: Arc::new(tts),
        })
    }
}

/// Stands in for a provider that has no credentials: startup succeeds (the REST API works
/// without speech providers), and a voice session gets a clear configuration error at
/// connect time instead of a silent call.
struct Unconfigured(&'static str);

#[async_trait::async_trait]
impl Stt for Unconfigured {
    fn name(&self) -> &str {
        "unconfigured"
    }

    async fn connect(
        &self,
        _opts: talky_core::ports::stt::SttOptions,
    ) -> Result<talky_core::ports::stt::SttStream, talky_core::ports::stt::SttError> {
        Err(talky_core::ports::stt::SttError::Config(self.0.into()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_build_without_provider_keys() {
        let v = super::VoiceProviders::from_config(&crate::config::Config::default()).unwrap();
        assert_eq!(v.stt.name(), "unconfigured");
    }
}
