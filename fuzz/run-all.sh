#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each), seeded from seeds/,
# growing corpus/ (not committed). Stops at the first crash; the input is in artifacts/.
#
#   fuzz/run-all.sh [seconds-per-target] [target...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain; without nightly,
# RUSTC_BOOTSTRAP=1 lets stable rustc take the sanitizer flags:
#   TOOLCHAIN=stable RUSTC_BOOTSTRAP=1 fuzz/run-all.sh
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(frame_decoder handshake_request inflater utf8 engine_payload socketio_packet)
fi
toolchain=${TOOLCHAIN:-nightly}
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== $target (${seconds}s)"
    log="/tmp/fuzz-$target.log"
    status=0
    cargo "+$toolchain" fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|Done |SUMMARY|Test unit written|==[0-9]+== ?ERROR)' "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "$target failed (exit $status): see $log and fuzz/artifacts/$target/"
        exit "$status"
    fi
done
