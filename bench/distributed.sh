#!/usr/bin/env bash
# Distributed ingest against a local one: one generated combo list ingested into
# a store in Garage (three nodes on loopback, PostgreSQL catalog) by a plain
# `leakwatch ingest`, and by `ingest --distributed` with one and two
# `leakwatch worker` processes on this machine; interleaved rounds, medians.
#
# Usage: bench/distributed.sh [LINES [ROUNDS [SHAPE]]]   (default: 4,000,000 lines, 3 rounds,
# one plain combo list; SHAPE `files`: the lines in 100 files, `gz`: one gzip file)
# Target: two workers no slower than one local ingest. Prints the records a
# second per worker, which the capacity plan uses.
# Needs the garage binary ($GARAGE_BIN or on PATH) and PostgreSQL's binaries
# (.ci/run installs both).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "building the benchmark (release)..." >&2
cargo build --release --quiet -p leakwatch-cli --bin leakwatch --example distbench
"$TARGET/release/examples/distbench" "$TARGET/release/leakwatch" "$@"
