//! The built-in simulated carrier.

use async_trait::async_trait;
use std::sync::Mutex;
use talky_core::ports::telephony::{CarrierCall, Telephony, TelephonyError};

/// Accepts every hang-up and records it.
#[derive(Debug, Default)]
pub struct SimulatedCarrier {
    hangups: Mutex<Vec<CarrierCall>>,
}

impl SimulatedCarrier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls hung up so far, oldest first.
    pub fn hangups(&self) -> Vec<CarrierCall> {
        self.hangups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl Telephony for SimulatedCarrier {
    async fn hang_up(&self, call: &CarrierCall) -> Result<(), TelephonyError> {
        tracing::info!(provider_call_id = %call.provider_call_id, "simulated carrier: hang up");
        self.hangups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(call.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_hangups() {
        let c = SimulatedCarrier::new();
        let call = CarrierCall {
            provider: "simulated".into(),
            provider_call_id: "p1".into(),
        };
        c.hang_up(&call).await.unwrap();
        assert_eq!(c.hangups(), vec![call]);
    }
}
