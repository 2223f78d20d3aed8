//! The `iolite` server. For now a WebSocket broadcast room with a page to try it; the
//! full server (Socket.IO, chat, auth, TLS, metrics) replaces it in a later issue.

pub mod broadcast;
