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
        let key = |s: &Option<crate::config::Secret>| s.as_ref().map(|k| k.0.clone()).unwrap_or_default();
        let mut dg = match cfg.stt.provider {
            SttProvider::Deepgram => DeepgramConfig::v1(key(&cfg.stt.api_key)),
            SttProvider::DeepgramFlux => DeepgramConfig::flux(key(&cfg.stt.api_key)),
        }
        .with_base_url(cfg.stt.base_url.clone());
        if let Some(model) = &cfg.stt.model {
            dg.model = model.clone();
        }
        let stt = DeepgramStt::new(dg).map_err(|e| anyhow::anyhow!("stt configuration: {e}"))?;
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
        Ok(Self {
            stt: Arc::new(stt),
            llm: Arc::new(llm),
            tts: Arc::new(tts),
        })
    }
}
