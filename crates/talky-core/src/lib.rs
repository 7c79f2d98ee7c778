//! Talky's domain: typed ids, parsed values (phone numbers, e-mail addresses), the
//! campaign/lead/call vocabulary, pure policies (minutes, outcomes) and the ports the
//! other crates implement. No I/O and no async runtime live here, so everything in this
//! crate is testable with plain unit tests and an injected `now`.

pub mod clock;
pub mod csv_import;
pub mod email;
pub mod ids;
pub mod minutes;
pub mod model;
pub mod phone;
pub mod plans;
pub mod ports;
pub mod rules;

pub use clock::{Clock, SystemClock};
pub use email::Email;
pub use ids::*;
pub use phone::E164;
