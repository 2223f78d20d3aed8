//! Codec benchmarks: `iolite-ws-proto` against `tungstenite` and `fastwebsockets`.
//!
//! Each implementation is driven through the path a server really uses, over an in-memory
//! socket that hands over one frame per read and discards writes, so that what is timed
//! is the codec and not the kernel:
//!
//! - `unmask`: masking alone, `mask::apply_mask` against fastwebsockets' `unmask`.
//! - `decode_unmask`: a masked client binary frame arrives and is decoded into a message
//!   (header parse, limit checks, unmask). iolite: `Decoder::decode` on the read buffer;
//!   tungstenite: `WebSocket::read`; fastwebsockets: `WebSocket::read_frame`.
//! - `encode_server` / `encode_client`: a binary message becomes wire bytes in one
//!   contiguous buffer (masked with a fresh key for the client). iolite: `Encoder::encode`
//!   and a copy of header and payload into the write buffer; tungstenite:
//!   `WebSocket::send`; fastwebsockets: `WebSocket::write_frame` with vectored writes off.
//!   iolite's `Frame` and fastwebsockets can both skip that copy with a vectored write;
//!   tungstenite always copies. The copy is timed for all three, so they compare alike.
//! - `deflate_compress` / `deflate_inflate`: one permessage-deflate message without
//!   context takeover, level 1, 15-bit window. Neither tungstenite nor fastwebsockets
//!   implements permessage-deflate, so the baseline is `flate2` called directly with the
//!   same zlib-rs backend and pre-sized buffers: the least a hand-rolled extension costs.
//!
//! Run with `cargo bench -p iolite-bench`; results are in `docs/benchmarks.md`.

mod support;

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use support::{with_op, Group, OpRunner, SIZES};

/// Times one operation closure under its Criterion id.
struct Timed<'a, 'g> {
    group: &'a mut BenchmarkGroup<'g, WallTime>,
    id: BenchmarkId,
}

impl OpRunner<()> for Timed<'_, '_> {
    fn run(self, mut op: impl FnMut()) {
        self.group.bench_function(self.id, |b| b.iter(&mut op));
    }
}

fn codec(c: &mut Criterion) {
    for group in Group::ALL {
        let mut g = c.benchmark_group(group.name());
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            for implementation in group.implementations() {
                let id = BenchmarkId::new(*implementation, size);
                with_op(group, implementation, size, Timed { group: &mut g, id });
            }
        }
        g.finish();
    }
}

// In a module: `criterion_group!` makes an undocumented `pub fn`.
mod groups {
    use super::*;

    criterion_group! {
        name = benches;
        // Two cores: keep the whole run to a few minutes.
        config = Criterion::default()
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_secs(1))
            .sample_size(20);
        targets = codec
    }
}
criterion_main!(groups::benches);
