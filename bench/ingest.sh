#!/usr/bin/env bash
# Ingest throughput against `LC_ALL=C sort -u` on the same combo, and the peak
# memory of an ingest held to a 64 MiB budget.
#
# Usage: bench/ingest.sh [LINES]   (default 3,000,000 lines, about 110 MB)
# Targets: ingest time / sort -u time <= 1.0; peak RSS with --memory-budget 64MiB < 256 MiB.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LINES="${1:-3000000}"
build
FILE="$(combo "$LINES")"
SIZE=$(stat -c %s "$FILE")
# Warm the page cache so both sides read from memory.
cat "$FILE" >/dev/null

# GNU time: for the CPU times here and the peak RSS below.
if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time..." >&2
    apt-get install -y -qq time >/dev/null
fi

sort_times=()
ingest_times=()
sort_cpu=()
ingest_cpu=()
# Five alternating pairs: on a shared machine either side can lose a run to a
# neighbour; the medians set those aside.
for run in 1 2 3 4 5; do
    read -r wall cpu < <(cpu_seconds env LC_ALL=C sort -u "$FILE")
    sort_times+=("$wall")
    sort_cpu+=("$cpu")
    rm -rf "$WORK/data"
    read -r wall cpu < <(cpu_seconds "$LW" --data "$WORK/data" ingest --breach Bench "$FILE")
    ingest_times+=("$wall")
    ingest_cpu+=("$cpu")
    echo "run $run: sort -u ${sort_times[-1]} s (cpu ${sort_cpu[-1]} s), ingest ${ingest_times[-1]} s (cpu ${ingest_cpu[-1]} s)" >&2
done
SORT=$(median "${sort_times[@]}")
INGEST=$(median "${ingest_times[@]}")
RATIO=$(ratio "$INGEST" "$SORT")
SORT_CPU=$(median "${sort_cpu[@]}")
INGEST_CPU=$(median "${ingest_cpu[@]}")

# Peak memory of a budgeted ingest into a fresh data directory.
rm -rf "$WORK/data"
/usr/bin/time -v "$LW" --data "$WORK/data" ingest --breach Bench --memory-budget 64MiB "$FILE" \
    >/dev/null 2>"$WORK/time.txt" || { cat "$WORK/time.txt" >&2; exit 1; }
RSS_KIB=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$WORK/time.txt")
RSS_MIB=$(awk -v k="$RSS_KIB" 'BEGIN { printf "%.1f\n", k / 1024 }')

echo
echo "ingest benchmark: $LINES lines, $((SIZE / 1000000)) MB, median of 5 runs (page cache warm)"
printf '%-44s %12s %10s %8s\n' "what" "value" "target" "verdict"
printf '%-44s %10s s %10s %8s\n' "LC_ALL=C sort -u FILE > /dev/null" "$SORT" "baseline" ""
printf '%-44s %10s s %10s %8s\n' "leakwatch ingest --breach Bench FILE" "$INGEST" "" ""
printf '%-44s %12s %10s %8s\n' "ratio ingest / sort -u" "$RATIO" "<= 1.0" "$(verdict "$RATIO" "<=" 1.0)"
printf '%-44s %10s s %10s %8s\n' "CPU (user+sys), sort -u" "$SORT_CPU" "" ""
printf '%-44s %10s s %10s %8s\n' "CPU (user+sys), ingest" "$INGEST_CPU" "" ""
printf '%-44s %8s MiB %10s %8s\n' "peak RSS, ingest --memory-budget 64MiB" "$RSS_MIB" "< 256" "$(verdict "$RSS_MIB" "<" 256)"
