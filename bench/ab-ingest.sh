#!/usr/bin/env bash
# Ingest time of two leakwatch binaries side by side: the same generated combo
# into a fresh data directory, runs interleaved (A, B, A, B, ...) so that a
# busy neighbour costs both sides alike; prints each side's median wall and
# CPU seconds and the ratio B / A. For a change in the store's write path,
# e.g. A built from main and B from the branch, each with its own
# CARGO_TARGET_DIR.
#
# Usage: bench/ab-ingest.sh A_BINARY B_BINARY [LINES] [RUNS]
#        (default 3,000,000 lines, about 110 MB; 5 runs a side)
# Environment: EXISTING=1 times the ingest into a store that already holds
# another combo of as many lines as a first breach (untimed), the shape of
# every ingest after the first: what the password totals cost.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

A="$1"
B="$2"
LINES="${3:-3000000}"
RUNS="${4:-5}"
if [ ! -x "$GEN" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p leakwatch-gen)
fi
FILE="$(combo "$LINES")"
cat "$FILE" >/dev/null
FIRST=""
if [ "${EXISTING:-0}" = 1 ]; then
    FIRST="$WORK/first-$LINES.txt"
    "$GEN" combo --lines "$LINES" --seed 2 --out "$FIRST"
fi
# fresh BINARY DIR: an empty directory, or one holding the first breach.
fresh() {
    rm -rf "$2"
    if [ -n "$FIRST" ]; then
        "$1" --data "$2" ingest --breach First "$FIRST" >/dev/null 2>&1
    fi
}
if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time..." >&2
    apt-get install -y -qq time >/dev/null
fi

a_wall=() a_cpu=() b_wall=() b_cpu=()
for run in $(seq "$RUNS"); do
    fresh "$A" "$WORK/a"
    read -r wall cpu < <(cpu_seconds "$A" --data "$WORK/a" ingest --breach Bench "$FILE")
    a_wall+=("$wall") a_cpu+=("$cpu")
    fresh "$B" "$WORK/b"
    read -r wall cpu < <(cpu_seconds "$B" --data "$WORK/b" ingest --breach Bench "$FILE")
    b_wall+=("$wall") b_cpu+=("$cpu")
    echo "run $run: A ${a_wall[-1]} s (cpu ${a_cpu[-1]} s), B ${b_wall[-1]} s (cpu ${b_cpu[-1]} s)" >&2
done
AW=$(median "${a_wall[@]}") AC=$(median "${a_cpu[@]}")
BW=$(median "${b_wall[@]}") BC=$(median "${b_cpu[@]}")
echo "$LINES lines${FIRST:+ into a store holding $LINES others}, medians of $RUNS interleaved runs"
echo "A $A: wall $AW s, cpu $AC s"
echo "B $B: wall $BW s, cpu $BC s"
echo "B / A: wall $(ratio "$BW" "$AW"), cpu $(ratio "$BC" "$AC")"
