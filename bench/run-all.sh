#!/usr/bin/env bash
# Runs every benchmark with its default sizes: ingest, lookup, size, and the
# stealer-log ingest against a combo of the same accounts (its own default size).
#
# Usage: bench/run-all.sh [LINES]   (default 3,000,000 combo lines for the first three)
set -euo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
LINES="${1:-3000000}"
"$DIR/ingest.sh" "$LINES"
"$DIR/lookup.sh" "$LINES"
"$DIR/size.sh" "$LINES"
"$DIR/stealer.sh"
