#!/usr/bin/env bash
# The segment crate's micro benchmarks (crates/leakwatch-segment/tests/speed.rs:
# lookups, range walks and account lookups per layout, every writer push path)
# against the library of a base commit and of the work tree, run alternately,
# with each figure's ratio (work tree / base; below 1.0 is faster). Both sides
# run the work tree's speed.rs, so the same measurement meets both libraries;
# its figures are CPU times, so a busy machine slows them less than wall times.
#
# Usage: bench/segment.sh BASE [ROUNDS]   (BASE: a commit whose segment API the
#        work tree's speed.rs compiles against; ROUNDS alternating runs of each
#        side, default 5)
# Environment: SPEED_KEYS, SPEED_WRITES as in speed.rs.
# Target: every ratio <= 1.03.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BASE="${1:?usage: bench/segment.sh BASE [ROUNDS]}"
ROUNDS="${2:-5}"

# speed_binary DIR TARGET: builds DIR's speed test in release, prints its path.
speed_binary() {
    (cd "$1" && CARGO_TARGET_DIR="$2" cargo test --release -q -p leakwatch-segment --test speed --no-run \
        --message-format=json 2>/dev/null) |
        grep -o '"executable":"[^"]*speed-[^"]*"' | tail -n 1 | cut -d'"' -f4
}

echo "building the base ($BASE) and the work tree..." >&2
mkdir -p "$WORK/base"
git -C "$ROOT" archive "$BASE" | tar -x -C "$WORK/base"
cp "$ROOT/crates/leakwatch-segment/tests/speed.rs" "$WORK/base/crates/leakwatch-segment/tests/speed.rs"
BASE_BIN="$(speed_binary "$WORK/base" "$TARGET/segment-bench-base")"
HEAD_BIN="$(speed_binary "$ROOT" "$TARGET")"

run() {
    "$1" --ignored --nocapture --test-threads 1 2>/dev/null | grep -E ' ns$'
}
: >"$WORK/base.txt"
: >"$WORK/head.txt"
for round in $(seq "$ROUNDS"); do
    echo "round $round..." >&2
    run "$BASE_BIN" >>"$WORK/base.txt"
    run "$HEAD_BIN" >>"$WORK/head.txt"
done

# One figure per line: its label (the text before the number) and the best
# (lowest) value of the rounds.
best() {
    awk '{
        n = $(NF - 1); label = $0; sub(/ *[0-9.]+ ns$/, "", label); sub(/^test [^ ]+ \.\.\. /, "", label)
        if (!(label in v) || n < v[label]) v[label] = n
        if (!(label in order)) { order[label] = ++k; labels[k] = label }
    } END { for (i = 1; i <= k; i++) printf "%s\t%s\n", labels[i], v[labels[i]] }' "$1"
}
best "$WORK/base.txt" >"$WORK/base.best"
best "$WORK/head.txt" >"$WORK/head.best"

echo
echo "segment micro benchmarks: base $BASE against the work tree, best of $ROUNDS alternating rounds (ns)"
printf '%-52s %10s %10s %8s %8s\n' "what" "base" "now" "ratio" "verdict"
join -t "$(printf '\t')" <(sort "$WORK/base.best") <(sort "$WORK/head.best") | while IFS="$(printf '\t')" read -r label b h; do
    r=$(ratio "$h" "$b")
    printf '%-52s %10s %10s %8s %8s\n' "$label" "$b" "$h" "$r" "$(verdict "$r" "<=" 1.03)"
done
