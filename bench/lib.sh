# Shared by the benchmark scripts (sourced, not run): builds the release
# binaries, makes a scratch directory under bench/out/ that is removed on exit,
# and offers timing and table helpers.
#
# Environment: CARGO_TARGET_DIR is honoured (default: target/ in the repository).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
LW="$TARGET/release/leakwatch"
GEN="$TARGET/release/leakwatch-gen"

build() {
    echo "building release binaries..." >&2
    (cd "$ROOT" && cargo build --release --quiet -p leakwatch-cli -p leakwatch-gen)
}

# A scratch directory for this run: generated inputs and data directories.
mkdir -p "$ROOT/bench/out"
WORK="$(mktemp -d "$ROOT/bench/out/run.XXXXXX")"
# The data keys of the benchmark's directories live and go with the run, not
# in the user's key ring.
export LEAKWATCH_KEY_FILE="$WORK/bench.key"
trap 'rm -rf "$WORK"' EXIT

# seconds CMD...: runs CMD with stdout and stderr discarded (stderr kept in
# $WORK/last.err for a failure message) and prints its wall time in seconds.
seconds() {
    local start end
    start=$(date +%s%N)
    if ! "$@" >/dev/null 2>"$WORK/last.err"; then
        echo "failed: $*" >&2
        cat "$WORK/last.err" >&2
        exit 1
    fi
    end=$(date +%s%N)
    awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

# cpu_seconds CMD...: like `seconds`, but prints "WALL CPU": the wall time and
# the user+system CPU time of CMD and its children. On a shared machine the CPU
# time says what a run cost when its wall time was stretched by other work.
cpu_seconds() {
    if ! /usr/bin/time -f '%e %U %S' -o "$WORK/time.out" "$@" >/dev/null 2>"$WORK/last.err"; then
        echo "failed: $*" >&2
        cat "$WORK/last.err" >&2
        exit 1
    fi
    awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$WORK/time.out"
}

# median A B C: the middle value of three numbers.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# ratio A B: A / B with three decimals (verdicts are taken on this value, so
# print enough digits that 0.504 is not shown as a passing 0.50).
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a / b }'
}

# verdict VALUE OP LIMIT: "ok" or "MISSED" for a target such as `<= 1.0`.
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == "<=") ? (v <= l) : (op == ">=") ? (v >= l) : (op == "<") ? (v < l) : (v > l)
        print ok ? "ok" : "MISSED"
    }'
}

# combo LINES: path of a generated combo of LINES lines (seed 1), made once per run.
combo() {
    local file="$WORK/combo-$1.txt"
    if [ ! -s "$file" ]; then
        "$GEN" combo --lines "$1" --seed 1 --out "$file"
    fi
    echo "$file"
}

# json_field NAME: the number after "NAME": in the one-line JSON on stdin.
json_field() {
    grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2
}
