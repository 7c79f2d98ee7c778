//! The plan catalogue (behaviour.md A1). The rows are seeded by a migration; this type is
//! what the store returns and the API renders.

use serde::{Deserialize, Serialize};

/// A pricing plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub price: f64,
    pub description: String,
    pub minutes: i64,
    pub agents: i64,
    pub concurrent_calls: i64,
    pub features: Vec<String>,
    pub not_included: Vec<String>,
    pub popular: bool,
}
