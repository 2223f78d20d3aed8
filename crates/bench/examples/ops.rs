//! Runs one benchmarked operation a fixed number of times, for instruction counts that
//! the machine's load cannot disturb:
//!
//! ```text
//! cargo build --release -p iolite-bench --example ops
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/ops decode_unmask iolite 16 100000
//! ```
//!
//! Run it twice with different counts and divide the difference in instructions by the
//! difference in counts: that cancels the setup. The operations are the ones
//! `benches/codec.rs` times (see `benches/support/mod.rs`).

#[path = "../benches/support/mod.rs"]
mod support;

use support::{with_op, Group, OpRunner, SIZES};

struct Repeat(u64);

impl OpRunner<()> for Repeat {
    fn run(self, mut op: impl FnMut()) {
        for _ in 0..self.0 {
            op();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [group, implementation, size, count] = &args[..] else {
        eprintln!("usage: ops <group> <implementation> <size> <count>  (sizes benched: {SIZES:?})");
        std::process::exit(2);
    };
    let Some(group) = Group::ALL.into_iter().find(|g| g.name() == group) else {
        eprintln!("unknown group {group}");
        std::process::exit(2);
    };
    if !group.implementations().contains(&implementation.as_str()) {
        eprintln!("{} compares {:?}", group.name(), group.implementations());
        std::process::exit(2);
    }
    let (Ok(size), Ok(count)) = (size.parse(), count.parse()) else {
        eprintln!("size and count are numbers");
        std::process::exit(2);
    };
    with_op(group, implementation, size, Repeat(count));
}
