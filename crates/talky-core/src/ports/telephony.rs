//! The carrier port: originate a call and hang one up. Vonage and the simulated carrier
//! implement it; campaign stop and the voice session's agent-initiated end call it.

use async_trait::async_trait;

/// A call as the carrier knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierCall {
    pub provider: String,
    pub provider_call_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TelephonyError {
    #[error("carrier rejected credentials")]
    Unauthorized,
    #[error("carrier rate limited; retry after {retry_after_secs:?} s")]
    RateLimited { retry_after_secs: Option<u64> },
    #[error("carrier does not know this call")]
    UnknownCall,
    #[error("carrier request failed: {0}")]
    Failed(String),
}

#[async_trait]
pub trait Telephony: Send + Sync + 'static {
    /// Ends a live call at the carrier (P§2.4). Idempotent for calls already ended.
    async fn hang_up(&self, call: &CarrierCall) -> Result<(), TelephonyError>;
}
