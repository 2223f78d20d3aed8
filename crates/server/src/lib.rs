//! The `iolite` server: the chat application, its storage and auth, the HTTP API for
//! backends, metrics, TLS and configuration. `main.rs` only parses the configuration and
//! calls [`app::run`].

pub mod api;
pub mod app;
pub mod auth;
pub mod chat;
pub mod config;
pub mod limits;
pub mod metrics;
pub mod store;
pub mod tls;
