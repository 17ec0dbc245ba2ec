#!/usr/bin/env bash
# Instructions of an ingest and of a batch of address lookups, a base commit
# against the work tree, counted by valgrind (`--tool=callgrind`, every thread
# summed): the same on every run however busy the machine, where wall times
# on shared cores move by 10-20% from one run to the next. Both sides ingest
# the same generated combo under the same key; the answers and the segments'
# content-hash names must come out identical.
#
# Usage: bench/instructions.sh BASE [LINES] [COUNT]
#        (BASE: a commit; defaults: 1,000,000-line combo, 300,000 addresses)
# Target: every ratio (work tree / base) <= 1.03.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BASE="${1:?usage: bench/instructions.sh BASE [LINES] [COUNT]}"
LINES="${2:-1000000}"
COUNT="${3:-300000}"

build
echo "building the base ($BASE)..." >&2
mkdir -p "$WORK/base"
git -C "$ROOT" archive "$BASE" | tar -x -C "$WORK/base"
# A target directory per base commit: the extracted files carry the commit's
# times, so cargo would take another base's build in the same directory as fresh.
BASE_TARGET="$TARGET/instructions-base-$(git -C "$ROOT" rev-parse --short "$BASE")"
(cd "$WORK/base" && CARGO_TARGET_DIR="$BASE_TARGET" cargo build --release --quiet -p leakwatch-cli)
BASE_LW="$BASE_TARGET/release/leakwatch"

FILE="$(combo "$LINES")"
"$GEN" emails --count "$COUNT" --seed 1 --lines "$LINES" >"$WORK/addresses.txt"

# Older ingests ran themselves again with a malloc setting in the environment,
# which valgrind cannot follow; such a base is given the setting up front, so
# it runs as it would have run itself.
base_env=()
if grep -q GLIBC_TUNABLES "$BASE_LW"; then
    base_env=(GLIBC_TUNABLES=glibc.malloc.tcache_count=65000)
fi

# count SIDE BIN ENV...: instructions of the ingest and of the lookups, "INGEST LOOKUP".
count() {
    local side="$1" bin="$2"
    shift 2
    local data="$WORK/data-$side"
    env "$@" valgrind --tool=callgrind --callgrind-out-file="$WORK/ingest-$side.cg" \
        "$bin" --data "$data" ingest --breach Bench "$FILE" >/dev/null 2>"$WORK/ingest-$side.log"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/lookup-$side.cg" \
        "$bin" --data "$data" search email --json - <"$WORK/addresses.txt" >"$WORK/answers-$side.jsonl" \
        2>"$WORK/lookup-$side.log" || true
    echo "$(awk '/^summary:/ { print $2 }' "$WORK/ingest-$side.cg") $(awk '/^summary:/ { print $2 }' "$WORK/lookup-$side.cg")"
}
echo "counting instructions (valgrind, a few minutes a side)..." >&2
read -r BI BL < <(count base "$BASE_LW" "${base_env[@]}")
read -r HI HL < <(count head "$LW")

if ! cmp -s "$WORK/answers-base.jsonl" "$WORK/answers-head.jsonl"; then
    echo "the answers differ between the base and the work tree" >&2
    exit 1
fi
if ! diff <(ls "$WORK/data-base/segments") <(ls "$WORK/data-head/segments") >&2; then
    echo "the segments differ between the base and the work tree" >&2
    exit 1
fi

echo
echo "instructions: base $BASE against the work tree ($LINES-line combo, $COUNT addresses; answers and segments identical)"
printf '%-40s %16s %16s %8s %8s\n' "what" "base" "now" "ratio" "verdict"
for row in "ingest (all threads)|$BI|$HI" "search email --json - (whole batch)|$BL|$HL"; do
    IFS='|' read -r what b h <<<"$row"
    r=$(ratio "$h" "$b")
    printf '%-40s %16s %16s %8s %8s\n' "$what" "$b" "$h" "$r" "$(verdict "$r" "<=" 1.03)"
done
