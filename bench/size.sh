#!/usr/bin/env bash
# Bytes per entry of the SHA-1 password corpus against HIBP's text form of the
# same hashes and counts (`SUFFIX:COUNT\r\n`: 35 hex digits, ':', the count, CRLF).
#
# Usage: bench/size.sh [LINES]   (default 3,000,000 lines)
# Target: ours / HIBP text <= 0.5.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LINES="${1:-3000000}"
build
FILE="$(combo "$LINES")"
"$LW" --data "$WORK/data" ingest --breach Bench "$FILE" >/dev/null 2>&1

STATS=$("$LW" --data "$WORK/data" stats --json)
CORPUS=$(json_field corpus_bytes <<<"$STATS")
UNIQUE=$(json_field unique_sha1 <<<"$STATS")
if [ -z "$CORPUS" ]; then
    # Older builds: measure the SHA-1 segment files themselves.
    CORPUS=$(find "$WORK/data/segments" -name 'sha1-*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
fi

# The same corpus in HIBP's text form. A password's count is its number of
# distinct (account, password) pairs; accounts compare in lower case. The
# generated passwords hold no ':', so everything after the first ':' is the password.
read -r HASHES TEXT < <(
    awk -F: '{ print tolower($1) ":" substr($0, length($1) + 2) }' "$FILE" |
        LC_ALL=C sort -u | cut -d: -f2- | LC_ALL=C sort | uniq -c |
        awk '{ n++; bytes += 35 + 1 + length($1) + 2 } END { print n, bytes }'
)
if [ -z "$UNIQUE" ]; then
    UNIQUE=$HASHES
fi
if [ "$UNIQUE" -ne "$HASHES" ]; then
    echo "the corpus holds $UNIQUE hashes, the combo has $HASHES distinct passwords" >&2
    exit 1
fi

OURS=$(awk -v b="$CORPUS" -v n="$UNIQUE" 'BEGIN { printf "%.2f\n", b / n }')
HIBP=$(awk -v b="$TEXT" -v n="$HASHES" 'BEGIN { printf "%.2f\n", b / n }')
RATIO=$(awk -v c="$CORPUS" -v u="$UNIQUE" -v t="$TEXT" -v h="$HASHES" 'BEGIN { printf "%.3f\n", (c / u) / (t / h) }')

echo
echo "size benchmark: $HASHES distinct SHA-1 hashes with exact counts, from a $LINES-line combo"
printf '%-44s %14s %10s %8s\n' "what" "bytes/entry" "target" "verdict"
printf '%-44s %14s %10s %8s\n' "HIBP text (SUFFIX:COUNT CRLF)" "$HIBP" "baseline" ""
printf '%-44s %14s %10s %8s\n' "leakwatch SHA-1 corpus ($CORPUS bytes)" "$OURS" "" ""
printf '%-44s %14s %10s %8s\n' "ratio leakwatch / HIBP text" "$RATIO" "<= 0.5" "$(verdict "$RATIO" "<=" 0.5)"
