#!/usr/bin/env bash
# Batch address lookups: `leakwatch search email --json -` with COUNT addresses
# on stdin, half of them in the ingested combo, after one ingest of that combo.
#
# Usage: bench/lookup.sh [LINES] [COUNT]   (defaults: 3,000,000-line combo, 1,000,000 addresses)
# Target: >= 200,000 addresses a second.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LINES="${1:-3000000}"
COUNT="${2:-1000000}"
build
FILE="$(combo "$LINES")"
"$LW" --data "$WORK/data" ingest --breach Bench "$FILE" >/dev/null 2>&1
# Even-numbered addresses (0, 2, ...) are in the combo, odd ones are not.
"$GEN" emails --count "$COUNT" --seed 1 --lines "$LINES" >"$WORK/addresses.txt"

lookup() {
    "$LW" --data "$WORK/data" search email --json - <"$WORK/addresses.txt" >"$WORK/answers.jsonl"
}
times=()
for run in 1 2 3; do
    start=$(date +%s%N)
    # Exit 0: at least one address was found.
    lookup
    end=$(date +%s%N)
    times+=("$(awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }')")
    echo "run $run: ${times[-1]} s" >&2
done
T=$(median "${times[@]}")
RATE=$(awk -v n="$COUNT" -v t="$T" 'BEGIN { printf "%.0f\n", n / t }')

# The answers must be right, not only fast.
ANSWERS=$(wc -l <"$WORK/answers.jsonl")
FOUND=$(grep -c '"breaches":\["Bench"\]' "$WORK/answers.jsonl" || true)
WANT=$(((COUNT + 1) / 2))
if [ "$ANSWERS" -ne "$COUNT" ] || [ "$FOUND" -ne "$WANT" ]; then
    echo "wrong answers: $ANSWERS lines for $COUNT addresses, $FOUND found, $WANT expected" >&2
    exit 1
fi

echo
echo "lookup benchmark: $COUNT addresses ($WANT present) against a $LINES-line combo, median of 3 runs"
printf '%-44s %12s %12s %8s\n' "what" "value" "target" "verdict"
printf '%-44s %10s s %12s %8s\n' "search email --json - (whole batch)" "$T" "" ""
printf '%-44s %12s %12s %8s\n' "addresses per second" "$RATE" ">= 200000" "$(verdict "$RATE" ">=" 200000)"
