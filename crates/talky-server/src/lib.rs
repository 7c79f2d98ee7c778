//! talky-server library
