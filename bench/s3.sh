#!/usr/bin/env bash
# Lookups over a store in Garage (object storage, three nodes on loopback)
# against the same store on local disk, and the GETs of a cold /range.
#
# Usage: bench/s3.sh [LINES]   (default: 1,000,000 combo lines)
# Targets: warm-cache lookups within 1.5x of local disk; a cold /range costs one
# GET per segment holding it.
# Needs the garage binary ($GARAGE_BIN or on PATH; .ci/run installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
echo "building the benchmark (release)..." >&2
cargo build --release --quiet -p leakwatch-objstore --example s3bench
"${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/s3bench" "$@"
