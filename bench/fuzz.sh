#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for MINUTES each, on seed corpora the
# project's own generator writes (every dump format and stealer family), and
# prints the CPU time each target ran and whether it found a crash.
#
# Usage: bench/fuzz.sh [MINUTES] [TARGET...]   (default 1 minute, every target)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The stable toolchain builds the
# sanitizer flags cargo-fuzz passes when RUSTC_BOOTSTRAP=1 is set, so no nightly
# is needed. Crashes are left in fuzz/artifacts/TARGET/; each becomes a
# regression test next to the parser it breaks.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MINUTES="${1:-1}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
    mapfile -t TARGETS < <(ls "$ROOT/fuzz/fuzz_targets" | sed 's/\.rs$//')
fi
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
export RUSTC_BOOTSTRAP=1

# Seeds: a generated scenario (combo, CSV, NDJSON, stealer logs), SQL dumps and
# Pwned Passwords-shaped lines, cut into pieces small enough for the fuzzer.
SEEDS="$ROOT/fuzz/corpus/seeds"
if [ ! -d "$SEEDS" ]; then
    echo "generating seed corpora..." >&2
    (cd "$ROOT" && cargo build --release --quiet -p leakwatch-gen)
    GEN="${CARGO_TARGET_DIR:-$ROOT/target}/release/leakwatch-gen"
    tmp="$(mktemp -d)"
    "$GEN" scenario --seed 7 --people 300 --out "$tmp/scenario" >/dev/null
    "$GEN" sql --rows 200 --seed 7 --out "$tmp/dump.sql" >/dev/null
    mkdir -p "$SEEDS"
    find "$tmp" -type f | while read -r f; do
        split -b 4096 -a 3 "$f" "$SEEDS/$(basename "$f")."
    done
    rm -rf "$tmp"
fi

printf '%-10s %10s %10s %s\n' "target" "minutes" "runs" "result"
for target in "${TARGETS[@]}"; do
    corpus="$ROOT/fuzz/corpus/$target"
    mkdir -p "$corpus"
    log="$(mktemp)"
    status=0
    (cd "$ROOT/fuzz" && cargo fuzz run "$target" "$corpus" "$SEEDS" -- \
        -max_total_time=$((MINUTES * 60)) -max_len=65536 -rss_limit_mb=4096) >"$log" 2>&1 || status=$?
    runs=$(grep -o 'Done [0-9]* runs' "$log" | awk '{ print $2 }' || true)
    if [ "$status" -eq 0 ]; then
        result="no crash"
    else
        result="CRASH (see fuzz/artifacts/$target/): $(grep -m 1 -E 'panicked|ERROR' "$log" || echo "exit $status")"
        cp "$log" "$ROOT/fuzz/artifacts/$target.log" 2>/dev/null || true
    fi
    printf '%-10s %10s %10s %s\n' "$target" "$MINUTES" "${runs:-?}" "$result"
    rm -f "$log"
done
