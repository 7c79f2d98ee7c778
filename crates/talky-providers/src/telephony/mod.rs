//! Carrier clients behind the `Telephony` port. The simulated carrier is the default when
//! no carrier credentials are configured: it accepts every request and remembers it, so a
//! local installation and the tests can run campaigns without a phone network.

mod simulated;

pub use simulated::SimulatedCarrier;
