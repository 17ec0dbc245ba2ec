#!/usr/bin/env bash
# Lookups and ingest over a store in Garage (object storage, three nodes on
# loopback) against the same store on local disk, and what a cold /range costs
# against a raw ranged GET straight to Garage (made with curl).
#
# Usage: bench/s3.sh [--quickack] [LINES]   (default: 1,000,000 combo lines)
#   --quickack  runs the benchmark in a network namespace of its own (root
#               only) whose loopback route has delayed ACKs off, as
#               docs/object-storage.md advises for a Garage cluster: Garage's
#               node-to-node RPC does not set TCP_NODELAY, and a reply written
#               in two pieces waits for the peer's delayed ACK (~40 ms).
# Targets: warm-cache lookups within 1.5x of local disk; a cold /range costs one
# GET per segment holding it, and adds nothing to the GET's own time; ingest
# close to local disk.
# Needs the garage binary ($GARAGE_BIN or on PATH; .ci/run installs it) and curl.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
echo "building the benchmark (release)..." >&2
cargo build --release --quiet -p leakwatch-objstore --example s3bench
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/s3bench"
if [ "${1:-}" = "--quickack" ]; then
    shift
    exec unshare --net sh -c '
        ip link set lo up
        ip route change local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 quickack 1
        exec "$0" "$@"' "$BIN" "$@"
fi
exec "$BIN" "$@"
