#!/usr/bin/env bash
# The web interface as a browser meets it: headless Chromium, driven by the
# npm playwright-core package, against a release `leakwatch serve` on loopback
# over a generated store (a combo split into 12 breaches dated 2013 to 2024).
# Each run is a fresh browser context, nothing cached: the first page (`/`,
# redirected to the sign-in form) with the bytes it transferred and its time
# to interactive (DOMContentLoaded done, from the start of the navigation);
# the catalog with its charts, the same way; and an account search: the
# result page's time to interactive from the start of its navigation (the
# form's submission), with the server's share (request sent to first byte),
# and, for information, the time the driver saw from its click to the result's
# heading (which adds playwright's own round trips to the browser: the click's
# actionability checks, the polling for the heading).
#
# Usage: bench/web.sh [LINES] [RUNS]   (defaults: 200,000 lines, 9 runs; medians)
# Targets: first page < 100 KB and < 200 ms to interactive; a search result
# < 100 ms.
#
# Needs chromium, node and npm (installed with apt-get when missing);
# playwright-core is installed once under bench/out/. Only 127.0.0.1 is used;
# the server is stopped on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http-lib.sh"

LINES="${1:-200000}"
RUNS="${2:-9}"
PLAYWRIGHT="playwright-core@1.57.0"
BREACHES=12

need chromium npm curl python3
build
FILE="$(combo "$LINES")"
echo "ingesting $LINES lines into $BREACHES breaches..." >&2
split -n "l/$BREACHES" -d "$FILE" "$WORK/part-"
i=0
for part in "$WORK"/part-*; do
    "$LW" --data "$WORK/data" ingest --breach "Bench$i" --title "Bench breach $i" --domain "bench$i.example" \
        --breach-date "$((2013 + i))-0$((i % 9 + 1))-15" "$part" >/dev/null 2>&1
    i=$((i + 1))
done
# An address the first breach holds (the combo has noise lines: the index says which).
grep -m 50 -oE '^[a-z0-9._-]+@[a-z0-9.-]+' "$WORK/part-00" >"$WORK/candidates"
ADDRESS="$("$LW" --data "$WORK/data" search email --json - <"$WORK/candidates" |
    python3 -c 'import json, sys; print(next(r["account"] for r in map(json.loads, sys.stdin) if r["breaches"]))')"
KEY=$("$LW" --data "$WORK/data" apikey create --name bench --role analyst --rate-limit 0 | tail -n 1)

PORT=$(free_port)
"$LW" --data "$WORK/data" serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
SERVER=$!
PIDS+=("$SERVER")
wait_ready "http://127.0.0.1:$PORT/ui/signin"

NPM_DIR="$ROOT/bench/out/npm-playwright"
if ! grep -qs "\"version\": \"${PLAYWRIGHT##*@}\"" "$NPM_DIR/node_modules/playwright-core/package.json"; then
    echo "installing $PLAYWRIGHT..." >&2
    mkdir -p "$NPM_DIR"
    echo '{"private": true}' >"$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error "$PLAYWRIGHT" >&2)
fi
cp "$ROOT/bench/web.mjs" "$NPM_DIR/"
echo "driving chromium, $RUNS runs..." >&2
(cd "$NPM_DIR" && node web.mjs "http://127.0.0.1:$PORT" "$KEY" "$ADDRESS" "$RUNS") >"$WORK/web.json"

# The medians of the runs, and whether every search found its address.
python3 - "$WORK/web.json" >"$WORK/figures" <<'EOF2'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
med = lambda xs: statistics.median(xs)
found = all(" is in " in s["heading"] for s in r["search"])
print(med([x["bytes"] for x in r["first"]]), r["first"][0]["requests"],
      "%.1f" % med([x["interactive"] for x in r["first"]]),
      med([x["bytes"] for x in r["catalog"]]), r["catalog"][0]["requests"],
      "%.1f" % med([x["interactive"] for x in r["catalog"]]),
      "%.1f" % med([x["interactive"] for x in r["search"]]),
      "%.1f" % med([x["shown"] for x in r["search"]]),
      "%.1f" % med([x["server"] for x in r["search"]]),
      "%.1f" % max([x["shown"] for x in r["search"]]),
      "yes" if found else "no")
EOF2
read -r FIRST_B FIRST_N FIRST_MS CAT_B CAT_N CAT_MS SEARCH_MS SEARCH_DRIVER_MS SEARCH_SERVER_MS SEARCH_WORST FOUND <"$WORK/figures"
if [ "$FOUND" != yes ]; then
    echo "a search did not find $ADDRESS:" >&2
    cat "$WORK/web.json" >&2
    exit 1
fi

echo
echo "web interface, loopback, $LINES lines in $BREACHES breaches; median of $RUNS cold runs (chromium $(chromium --version 2>/dev/null | awk '{ print $2 }'))"
printf '%-30s %14s %12s  %s\n' "" "MEASURED" "TARGET" "VERDICT"
printf '%-30s %11s KB %12s  %s\n' "first page: bytes ($FIRST_N req)" "$(awk -v b="$FIRST_B" 'BEGIN { printf "%.1f", b / 1000 }')" "< 100 KB" "$(verdict "$FIRST_B" "<" 100000)"
printf '%-30s %11s ms %12s  %s\n' "first page: to interactive" "$FIRST_MS" "< 200 ms" "$(verdict "$FIRST_MS" "<" 200)"
printf '%-30s %11s KB %12s  %s\n' "catalog+charts: bytes ($CAT_N req)" "$(awk -v b="$CAT_B" 'BEGIN { printf "%.1f", b / 1000 }')" "< 100 KB" "$(verdict "$CAT_B" "<" 100000)"
printf '%-30s %11s ms %12s  %s\n' "catalog+charts: interactive" "$CAT_MS" "< 200 ms" "$(verdict "$CAT_MS" "<" 200)"
printf '%-30s %11s ms %12s  %s\n' "search: result interactive" "$SEARCH_MS" "< 100 ms" "$(verdict "$SEARCH_MS" "<" 100)"
printf '%-30s %11s ms\n' "search: server (to 1st byte)" "$SEARCH_SERVER_MS"
printf '%-30s %11s ms  (worst %s ms)\n' "search: as the driver saw it" "$SEARCH_DRIVER_MS" "$SEARCH_WORST"
