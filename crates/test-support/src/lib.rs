//! Test helpers shared by iolite's integration tests: frame builders that can produce
//! any malformed frame, and a raw TCP client that speaks bytes, not WebSocket.

pub mod frames;
pub mod raw;
