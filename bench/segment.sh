#!/usr/bin/env bash
# The segment crate's micro benchmarks (crates/leakwatch-segment/tests/speed.rs:
# lookups, range walks and account lookups per layout, every writer push path)
# against the library of a base commit and of the work tree, run alternately,
# with each figure's ratio (work tree / base; below 1.0 is faster). Both sides
# run the work tree's speed.rs, so the same measurement meets both libraries;
# its figures are CPU times, so a busy machine slows them less than wall times.
#
# With CALLGRIND=1, the push paths' instructions instead, counted by valgrind
# (`--tool=callgrind`, cut at each write by `--dump-before=write_case`): the
# same on every run, however noisy the machine; one run a side.
#
# Usage: bench/segment.sh BASE [ROUNDS]   (BASE: a commit whose segment API the
#        work tree's speed.rs compiles against; ROUNDS alternating runs of each
#        side, default 5, whose median counts)
# Environment: SPEED_KEYS, SPEED_WRITES as in speed.rs; CALLGRIND=1.
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
# A target directory per base commit: the extracted files carry the commit's
# times, so cargo would take another base's build in the same directory as fresh.
BASE_BIN="$(speed_binary "$WORK/base" "$TARGET/segment-bench-base-$(git -C "$ROOT" rev-parse --short "$BASE")")"
HEAD_BIN="$(speed_binary "$ROOT" "$TARGET")"

if [ "${CALLGRIND:-0}" = 1 ]; then
    WRITES="${SPEED_WRITES:-5000000}"
    # instructions BIN OUT: instructions a written entry, one line a push path.
    instructions() {
        SPEED_WRITES="$WRITES" SPEED_ROUNDS=1 valgrind --tool=callgrind --dump-before='*write_case' \
            --callgrind-out-file="$2.cg" "$1" writer_push_paths --ignored --nocapture --test-threads 1 \
            >"$2.log" 2>&1
        # Part 1 is the set-up; part k+1 holds write k, the last file the last write.
        local labels
        mapfile -t labels < <(grep -oE 'write .* \(best of 1\)' "$2.log" | sed 's/ (best of 1)//')
        local i
        for i in "${!labels[@]}"; do
            local f="$2.cg.$((i + 2))"
            [ "$i" -eq $((${#labels[@]} - 1)) ] && f="$2.cg"
            printf '%s\t%s\n' "${labels[$i]}" "$(awk -v n="$WRITES" '/^summary:/ { printf "%.1f", $2 / n }' "$f")"
        done
    }
    echo "counting instructions (valgrind)..." >&2
    instructions "$BASE_BIN" "$WORK/base" >"$WORK/base.best"
    instructions "$HEAD_BIN" "$WORK/head" >"$WORK/head.best"
    echo
    echo "segment writer push paths: base $BASE against the work tree, instructions an entry ($WRITES entries, valgrind)"
    printf '%-52s %10s %10s %8s %8s\n' "what" "base" "now" "ratio" "verdict"
    join -t "$(printf '\t')" <(sort "$WORK/base.best") <(sort "$WORK/head.best") | while IFS="$(printf '\t')" read -r label b h; do
        r=$(ratio "$h" "$b")
        printf '%-52s %10s %10s %8s %8s\n' "$label" "$b" "$h" "$r" "$(verdict "$r" "<=" 1.03)"
    done
    exit 0
fi

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

# One figure per line: its label (the text before the number) and the median
# of the rounds' values.
middle() {
    awk '{
        n = $(NF - 1); label = $0; sub(/ *[0-9.]+ ns$/, "", label); sub(/^test [^ ]+ \.\.\. /, "", label)
        if (!(label in count)) { labels[++k] = label }
        v[label, ++count[label]] = n
    } END {
        for (i = 1; i <= k; i++) {
            l = labels[i]; c = count[l]
            for (a = 1; a <= c; a++) s[a] = v[l, a]
            for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
            printf "%s\t%s\n", l, (c % 2) ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
        }
    }' "$1"
}
middle "$WORK/base.txt" >"$WORK/base.best"
middle "$WORK/head.txt" >"$WORK/head.best"

echo
echo "segment micro benchmarks: base $BASE against the work tree, median of $ROUNDS alternating rounds (ns)"
printf '%-52s %10s %10s %8s %8s\n' "what" "base" "now" "ratio" "verdict"
join -t "$(printf '\t')" <(sort "$WORK/base.best") <(sort "$WORK/head.best") | while IFS="$(printf '\t')" read -r label b h; do
    r=$(ratio "$h" "$b")
    printf '%-52s %10s %10s %8s %8s\n' "$label" "$b" "$h" "$r" "$(verdict "$r" "<=" 1.03)"
done
