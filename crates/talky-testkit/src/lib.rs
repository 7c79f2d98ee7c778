//! talky-testkit
