#!/usr/bin/env bash
# The catalog's calls, SQLite beside PostgreSQL (a throwaway cluster with
# production settings, on loopback): key-table poll and load, audit batches,
# key creation, opening a connection. Medians of interleaved rounds, with the
# ratio to SQLite. Needs Debian's postgresql (as the tests do).
#
# Usage: bench/catalog.sh [ROUNDS]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet -p leakwatch-catalog --features testing --example catalog_latency -- "${1:-200}"
