#!/usr/bin/env bash
# Pwned Passwords import against `rg -c :` scanning the same cached file, and the
# size of the resulting SHA-1 corpus; then point lookups of its hashes.
#
# The input is HIBP-shaped: sorted random upper-case SHA-1 hashes, heavy-tailed
# counts (half seen once, the largest tens of millions of times), CRLF, about 45
# bytes a line, so 100,000,000 lines take about 4.4 GB (in bench/out, removed on exit).
#
# Usage: bench/import.sh [LINES] [LOOKUPS]   (defaults: 100,000,000 lines, 1,000,000 lookups)
# Targets: import / rg <= 3.0; bytes per hash <= 18.0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LINES="${1:-100000000}"
LOOKUPS="${2:-1000000}"
if ! command -v rg >/dev/null; then
    echo "ripgrep (rg) is needed: apt-get install -y ripgrep" >&2
    exit 1
fi
# The file (about 45 bytes a line) and the corpus (about 18 bytes a hash), with room.
NEED=$((LINES * 64 / 1000000 + 500))
FREE=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
if [ "$FREE" -lt "$NEED" ]; then
    echo "need about $NEED MB free in $WORK for $LINES lines, have $FREE MB; pass fewer lines" >&2
    exit 1
fi
build

FILE="$WORK/pwned-$LINES.txt"
echo "generating $LINES lines..." >&2
"$GEN" pwned --lines "$LINES" --seed 1 --out "$FILE"
# Read it once so that both sides below scan a cached file.
cat "$FILE" >/dev/null

rg_times=()
lw_times=()
for run in 1 2 3; do
    rg_times+=("$(seconds rg -c : "$FILE")")
    rm -rf "$WORK/data"
    lw_times+=("$(seconds "$LW" --data "$WORK/data" import pwned-passwords "$FILE")")
    echo "run $run: rg ${rg_times[-1]} s, import ${lw_times[-1]} s" >&2
done
RG=$(median "${rg_times[@]}")
LWT=$(median "${lw_times[@]}")
RATIO=$(ratio "$LWT" "$RG")

STATS=$("$LW" --data "$WORK/data" stats --json)
HASHES=$(grep -o '"hibp-sha1":{[^}]*}' <<<"$STATS" | json_field entries)
BYTES=$(grep -o '"hibp-sha1":{[^}]*}' <<<"$STATS" | json_field bytes)
if [ "$HASHES" -ne "$LINES" ]; then
    echo "the corpus holds $HASHES hashes, the file has $LINES lines" >&2
    exit 1
fi
PER_HASH=$(awk -v b="$BYTES" -v n="$HASHES" 'BEGIN { printf "%.2f\n", b / n }')

# Point lookups: even-numbered hashes are in the file, odd ones are not.
"$GEN" pwned --lines "$LINES" --seed 1 --lookups "$LOOKUPS" >"$WORK/hashes.txt"
lookup_times=()
for run in 1 2 3; do
    start=$(date +%s%N)
    "$LW" --data "$WORK/data" search password --hash sha1 --json - <"$WORK/hashes.txt" >"$WORK/answers.jsonl" || true
    end=$(date +%s%N)
    lookup_times+=("$(awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }')")
done
LT=$(median "${lookup_times[@]}")
RATE=$(awk -v n="$LOOKUPS" -v t="$LT" 'BEGIN { printf "%.0f\n", n / t }')
ANSWERS=$(wc -l <"$WORK/answers.jsonl")
FOUND=$(grep -vc '"count":0' "$WORK/answers.jsonl" || true)
WANT=$(((LOOKUPS + 1) / 2))
if [ "$ANSWERS" -ne "$LOOKUPS" ] || [ "$FOUND" -ne "$WANT" ]; then
    echo "wrong answers: $ANSWERS lines for $LOOKUPS hashes, $FOUND found, $WANT expected" >&2
    exit 1
fi

echo
echo "import benchmark: $LINES-line Pwned Passwords SHA-1 file ($(du -m "$FILE" | cut -f1) MB, cached), median of 3 runs"
printf '%-44s %12s %12s %8s\n' "what" "value" "target" "verdict"
printf '%-44s %10s s %12s %8s\n' "rg -c : FILE" "$RG" "baseline" ""
printf '%-44s %10s s %12s %8s\n' "leakwatch import pwned-passwords FILE" "$LWT" "" ""
printf '%-44s %12s %12s %8s\n' "ratio import / rg" "$RATIO" "<= 3.0" "$(verdict "$RATIO" "<=" 3.0)"
printf '%-44s %12s %12s %8s\n' "bytes per hash on disk ($BYTES bytes)" "$PER_HASH" "<= 18.0" "$(verdict "$PER_HASH" "<=" 18.0)"
printf '%-44s %12s %12s %8s\n' "point lookups per second ($LOOKUPS, half present)" "$RATE" "" ""
