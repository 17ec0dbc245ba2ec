#!/usr/bin/env bash
# The cost of the blinded index (docs/security.md): ingest time and lookup rates
# of this tree against a build without it (BASE, the last commit before the key
# ring, sealed payloads and keyed credentials), side by side on the same inputs.
#
# Usage: bench/blind.sh [LINES] [COUNT]   (defaults: 1,000,000-line combo, 500,000 addresses)
# Environment: BASE (default c06162e^, the commit before the blinded index), BASE_TARGET (where the baseline is built;
# default target/bench-base, kept between runs), BASE_BIN (a baseline binary
# already built: skips the build).
# Target: each ratio (blinded / baseline; for rates baseline / blinded) <= 1.20.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LINES="${1:-1000000}"
COUNT="${2:-500000}"
BASE="${BASE:-c06162e^}"
BASE_TARGET="${BASE_TARGET:-$ROOT/target/bench-base}"
BASE_SRC="$WORK/base-src"
trap 'git -C "$ROOT" worktree remove --force "$BASE_SRC" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

build
if [ -n "${BASE_BIN:-}" ]; then
    BLW="$BASE_BIN"
else
    echo "building the baseline ($BASE)..." >&2
    git -C "$ROOT" worktree add --quiet --detach "$BASE_SRC" "$BASE"
    (cd "$BASE_SRC" && CARGO_TARGET_DIR="$BASE_TARGET" cargo build --release --quiet -p leakwatch-cli)
    BLW="$BASE_TARGET/release/leakwatch"
fi

FILE="$(combo "$LINES")"
"$GEN" emails --count "$COUNT" --seed 1 --lines "$LINES" >"$WORK/addresses.txt"
# The combo's most common email domains: the largest domain searches.
awk -F: '{ n = split($1, a, "@"); if (n == 2) print a[2] }' "$FILE" | sort | uniq -c | sort -rn \
    | head -n 5 | awk '{ print $2 }' >"$WORK/domains.txt"
export LEAKWATCH_KEY_FILE="$WORK/ring.key"

# ingest BIN DIR: a fresh ingest of the combo, in seconds.
ingest() {
    rm -rf "$2"
    seconds "$1" --data "$2" ingest --breach Bench "$FILE"
}
lookup() {
    seconds sh -c "\"$1\" --data \"$2\" search email --json - <\"$WORK/addresses.txt\""
}
domains() {
    seconds sh -c "for d in \$(cat \"$WORK/domains.txt\"); do \"$1\" --data \"$2\" search domain --json \$d; done"
}

bi=(); ni=(); bl=(); nl=(); bd=(); nd=()
for run in 1 2 3; do
    # Alternate which build goes first, so neither always meets a warm cache.
    if [ $((run % 2)) -eq 1 ]; then
        bi+=("$(ingest "$BLW" "$WORK/base")"); ni+=("$(ingest "$LW" "$WORK/blind")")
    else
        ni+=("$(ingest "$LW" "$WORK/blind")"); bi+=("$(ingest "$BLW" "$WORK/base")")
    fi
    echo "ingest run $run: baseline ${bi[-1]} s, blinded ${ni[-1]} s" >&2
done
for run in 1 2 3; do
    bl+=("$(lookup "$BLW" "$WORK/base")"); nl+=("$(lookup "$LW" "$WORK/blind")")
    bd+=("$(domains "$BLW" "$WORK/base")"); nd+=("$(domains "$LW" "$WORK/blind")")
    echo "lookup run $run: baseline ${bl[-1]} s / ${bd[-1]} s, blinded ${nl[-1]} s / ${nd[-1]} s" >&2
done

# Same answers from both builds.
"$BLW" --data "$WORK/base" search email --json - <"$WORK/addresses.txt" >"$WORK/base.jsonl" || true
"$LW" --data "$WORK/blind" search email --json - <"$WORK/addresses.txt" >"$WORK/blind.jsonl" || true
for d in $(cat "$WORK/domains.txt"); do
    "$BLW" --data "$WORK/base" search domain --json "$d" >>"$WORK/base.jsonl" || true
    "$LW" --data "$WORK/blind" search domain --json "$d" >>"$WORK/blind.jsonl" || true
done
if ! cmp -s "$WORK/base.jsonl" "$WORK/blind.jsonl"; then
    echo "the two builds answer differently" >&2
    exit 1
fi

BI=$(median "${bi[@]}"); NI=$(median "${ni[@]}")
BL=$(median "${bl[@]}"); NL=$(median "${nl[@]}")
BD=$(median "${bd[@]}"); ND=$(median "${nd[@]}")
RI=$(ratio "$NI" "$BI"); RL=$(ratio "$NL" "$BL"); RD=$(ratio "$ND" "$BD")
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f\n", n / t }'; }

echo
echo "blinded index vs baseline $BASE: $LINES-line combo, $COUNT addresses, 5 largest domains; medians of 3"
printf '%-40s %12s %12s %8s %8s %8s\n' "what" "baseline" "blinded" "ratio" "target" "verdict"
printf '%-40s %10s s %10s s %8s %8s %8s\n' "ingest (fresh data directory)" "$BI" "$NI" "$RI" "<= 1.20" "$(verdict "$RI" "<=" 1.20)"
printf '%-40s %12s %12s %8s %8s %8s\n' "search email: addresses per second" "$(rate "$COUNT" "$BL")" "$(rate "$COUNT" "$NL")" "$RL" "<= 1.20" "$(verdict "$RL" "<=" 1.20)"
printf '%-40s %10s s %10s s %8s %8s %8s\n' "search domain x5 (aliases opened)" "$BD" "$ND" "$RD" "<= 1.20" "$(verdict "$RD" "<=" 1.20)"
