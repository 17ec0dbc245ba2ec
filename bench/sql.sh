#!/usr/bin/env bash
# SQL dump ingest rate against the plain combo-list rate, in bytes per second.
#
# Usage: bench/sql.sh [ROWS] [COMBO_LINES]
#   ROWS: users in the generated WordPress mysqldump (default 5,000,000, about 1 GB,
#         extended INSERTs of 1,000 tuples a line, as mysqldump writes them).
#   COMBO_LINES: lines of the baseline combo (default 3,000,000, about 110 MB).
# Target: combo bytes/s / SQL bytes/s <= 3.0 (the SQL dump within 3x of the combo rate).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROWS="${1:-5000000}"
COMBO_LINES="${2:-3000000}"
build
COMBO="$(combo "$COMBO_LINES")"
DUMP="$WORK/dump-$ROWS.sql"
"$GEN" sql --rows "$ROWS" --seed 1 --out "$DUMP"
COMBO_SIZE=$(stat -c %s "$COMBO")
DUMP_SIZE=$(stat -c %s "$DUMP")
# Warm the page cache so both sides read from memory.
cat "$COMBO" "$DUMP" >/dev/null

combo_times=()
sql_times=()
for run in 1 2 3; do
    rm -rf "$WORK/data"
    combo_times+=("$(seconds "$LW" --data "$WORK/data" ingest --breach Combo "$COMBO")")
    rm -rf "$WORK/data"
    sql_times+=("$(seconds "$LW" --data "$WORK/data" ingest --breach Dump "$DUMP")")
    echo "run $run: combo ${combo_times[-1]} s, sql ${sql_times[-1]} s" >&2
done
COMBO_T=$(median "${combo_times[@]}")
SQL_T=$(median "${sql_times[@]}")
COMBO_RATE=$(awk -v b="$COMBO_SIZE" -v t="$COMBO_T" 'BEGIN { printf "%.1f\n", b / t / 1e6 }')
SQL_RATE=$(awk -v b="$DUMP_SIZE" -v t="$SQL_T" 'BEGIN { printf "%.1f\n", b / t / 1e6 }')
RATIO=$(ratio "$COMBO_RATE" "$SQL_RATE")

echo
echo "SQL ingest benchmark: mysqldump of $ROWS users ($((DUMP_SIZE / 1000000)) MB) vs combo of $COMBO_LINES lines ($((COMBO_SIZE / 1000000)) MB), median of 3 runs"
printf '%-44s %12s %10s %8s\n' "what" "value" "target" "verdict"
printf '%-44s %8s MB/s %10s %8s\n' "leakwatch ingest COMBO" "$COMBO_RATE" "baseline" ""
printf '%-44s %8s MB/s %10s %8s\n' "leakwatch ingest DUMP.sql" "$SQL_RATE" "" ""
printf '%-44s %12s %10s %8s\n' "ratio combo rate / SQL rate" "$RATIO" "<= 3.0" "$(verdict "$RATIO" "<=" 3.0)"
