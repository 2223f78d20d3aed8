//! Test helpers shared by iolite's integration tests: frame builders that can produce
//! any malformed frame, a raw TCP client that speaks bytes, not WebSocket, and a loopback
//! harness that runs a server with a given configuration, and a real Redis Cluster.

pub mod frames;
pub mod harness;
pub mod raw;
pub mod redis_cluster;
