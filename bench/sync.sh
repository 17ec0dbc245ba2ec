#!/usr/bin/env bash
# Pwned Passwords sync: a full `leakwatch sync pwned-passwords` from a local
# `leakwatch serve`, then an incremental one after about 1% of the upstream's
# ranges changed (one more breach ingested upstream). Prints the body bytes
# each run received and their ratio.
#
# Usage: bench/sync.sh [LINES] [CHANGED_LINES] [PREFIX_BITS]
#        (defaults: 4,000,000-line combo upstream, a few hashes per range; 10,000
#        more lines touch ~1% of the 1,048,576 ranges; all 20 prefix bits)
# Target: incremental bytes / full bytes < 0.02.
#
# Bytes are response bodies: a 304 has none. A changed range holds more hashes
# than the average one (it gained one), so with a few hashes per range the bytes
# ratio sits above the changed fraction; at HIBP's ~900 per range it would not. Only 127.0.0.1 is used; the server
# started here is stopped on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http-lib.sh"

LINES="${1:-4000000}"
CHANGED="${2:-10000}"
BITS="${3:-20}"

need curl python3

build
FILE="$(combo "$LINES")"
echo "ingesting $LINES lines upstream..." >&2
"$LW" --data "$WORK/up" ingest --breach Bench "$FILE" >/dev/null 2>&1

PORT=$(free_port)
"$LW" --data "$WORK/up" serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
PIDS+=($!)
wait_ready "http://127.0.0.1:$PORT/range/00000"
FROM="http://127.0.0.1:$PORT"

# sync_run NAME: one sync into $WORK/down; its JSON summary goes to $WORK/NAME.json.
sync_run() {
    local start end
    start=$(date +%s%N)
    "$LW" --data "$WORK/down" sync pwned-passwords --from "$FROM" --prefix-bits "$BITS" --json \
        >"$WORK/$1.json" 2>"$WORK/$1.err" || { cat "$WORK/$1.err" >&2; exit 1; }
    end=$(date +%s%N)
    awk -v ns=$((end - start)) 'BEGIN { printf "%.1f\n", ns / 1e9 }'
}

echo "full sync..." >&2
FULL_SECS=$(sync_run full)

# About 1% of the ranges change: one more breach, from another seed.
echo "changing the upstream ($CHANGED more lines)..." >&2
"$GEN" combo --lines "$CHANGED" --seed 2 --out "$WORK/change.txt"
ETAG_BEFORE=$(curl -sI "$FROM/range/00000" | tr -d '\r' | grep -i '^etag:')
"$LW" --data "$WORK/up" ingest --breach Change "$WORK/change.txt" >/dev/null 2>&1
# The server follows the data directory; wait until it serves the new generation.
for _ in $(seq 100); do
    [ "$(curl -sI "$FROM/range/00000" | tr -d '\r' | grep -i '^etag:')" != "$ETAG_BEFORE" ] && break
    sleep 0.1
done

echo "incremental sync..." >&2
INCR_SECS=$(sync_run incremental)

FULL_BYTES=$(json_field bytes <"$WORK/full.json")
INCR_BYTES=$(json_field bytes <"$WORK/incremental.json")
RANGES=$(json_field ranges <"$WORK/full.json")
CHANGED_RANGES=$(json_field fetched <"$WORK/incremental.json")
SAME=$(json_field unchanged <"$WORK/incremental.json")
NOT_MODIFIED=$(json_field not_modified <"$WORK/incremental.json")
RATIO=$(awk -v a="$INCR_BYTES" -v b="$FULL_BYTES" 'BEGIN { printf "%.4f\n", a / b }')

printf '%-12s %10s %14s %8s\n' run ranges bytes seconds
printf '%-12s %10s %14s %8s\n' full "$RANGES" "$FULL_BYTES" "$FULL_SECS"
printf '%-12s %10s %14s %8s\n' incremental "$RANGES" "$INCR_BYTES" "$INCR_SECS"
echo "incremental: $CHANGED_RANGES ranges changed ($(ratio "$CHANGED_RANGES" "$RANGES") of all), $NOT_MODIFIED answered 304, $SAME re-sent unchanged"
echo "bytes ratio incremental/full: $RATIO (target < 0.02): $(verdict "$RATIO" "<" 0.02)"
