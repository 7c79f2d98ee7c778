//! Integration tests: the real server on 127.0.0.1:0 over HTTP, on SQLite and (when
//! `TALKY_TEST_POSTGRES_URL` is set) PostgreSQL.

mod auth;
mod calls;
mod campaigns;
mod clients;
mod contacts;
mod edge;
mod helpers;
mod isolation_campaigns;
mod isolation_reads;
mod recordings;
mod reports;
mod tenant;
mod voice;
mod voice_flows;
mod voice_support;
