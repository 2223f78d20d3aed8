//! # iolite-bench
//!
//! Benchmarks for iolite. `benches/codec.rs` compares the `iolite-ws-proto` codec with
//! `tungstenite` and `fastwebsockets`; see `docs/benchmarks.md` for how to run it and the
//! latest numbers. The load generator binary will live in this crate too.
