//! talky-providers
