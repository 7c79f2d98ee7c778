//! Integration tests: the real server on 127.0.0.1:0 over HTTP, on SQLite and (when
//! `TALKY_TEST_POSTGRES_URL` is set) PostgreSQL.

mod auth;
mod edge;
mod helpers;
mod tenant;
mod calls;
mod clients;
mod isolation_reads;
mod recordings;
mod reports;
mod voice;
mod campaigns;
mod contacts;
mod isolation_campaigns;
