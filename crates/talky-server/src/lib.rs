//! The `talky` server: configuration, the HTTP API, authentication and startup. The binary
//! in `main.rs` is a thin CLI over [`app`].

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod http;
pub mod state;
pub mod time;
pub mod usage;
pub mod voice;
