#!/usr/bin/env bash
# breachedaccount throughput and latency: `wrk -t2` asking `leakwatch serve` for
# random addresses known to be in the index, with an API key, through the whole
# path a client takes (key check, rate-limit bucket, lookup, JSON, audit record).
#
# Usage: bench/http-account.sh [LINES] [SECONDS]
#        (defaults: 2,000,000-line combo, 10 s per wrk run; CONNECTIONS=32,
#        CONNECTIONS=1 WRK_THREADS=1 for a single client)
# Targets: >= 20,000 requests/s and p99 < 5 ms on a 2-core machine. The server's
# CPU time per request is printed too (its own cost, steadier than requests/s
# when other work shares the cores).
#
# Every answer must be a 200 (a known address), and every search must reach the
# audit log: the script compares the log's length with wrk's request count.
# Installs wrk with apt-get when missing; only 127.0.0.1 is used; the server is
# stopped on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http-lib.sh"

LINES="${1:-2000000}"
DURATION="${2:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
# Runs; the best one is kept (ROUNDS=3 on a noisy machine).
ROUNDS="${ROUNDS:-2}"
ADDRESSES=100000

need wrk curl python3

LOAD_BEFORE=$(cut -d" " -f1 /proc/loadavg)
build
FILE="$(combo "$LINES")"
echo "ingesting $LINES lines..." >&2
"$LW" --data "$WORK/data" ingest --breach Bench "$FILE" >/dev/null 2>&1
# Even-numbered addresses are in the combo: keep those.
"$GEN" emails --count $((2 * ADDRESSES)) --seed 1 --lines "$LINES" --annotate |
    awk -F'\t' '$2 == "present" { print $1 }' >"$WORK/addresses.txt"
KEY=$("$LW" --data "$WORK/data" apikey create --name bench --role analyst --rate-limit 0 | tail -n 1)

PORT=$(free_port)
"$LW" --data "$WORK/data" serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
SERVER=$!
PIDS+=("$SERVER")
FIRST=$(head -n 1 "$WORK/addresses.txt")
wait_ready "http://127.0.0.1:$PORT/api/v3/breachedaccount/$FIRST" "hibp-api-key: $KEY" "user-agent: leakwatch-bench"

cat >"$WORK/account.lua" <<'EOF2'
-- Asks for a random known address each time, as an HIBP client would.
local paths = {}
init = function(args)
    for line in io.lines(args[1]) do
        paths[#paths + 1] = "/api/v3/breachedaccount/" .. line
    end
    wrk.headers["hibp-api-key"] = args[2]
    wrk.headers["user-agent"] = "leakwatch-bench"
    math.randomseed(os.time() + tonumber(tostring(paths):match("0x(%x+)") or "0", 16) % 100000)
end
request = function()
    return wrk.format("GET", paths[math.random(#paths)])
end
EOF2

RUNS=()
SENT=0
for round in $(seq "$ROUNDS"); do
    RUNS+=("$(wrk_cpu "$SERVER" "$DURATION" "$CONNECTIONS" "$WORK/account.lua" "http://127.0.0.1:$PORT" \
        "$WORK/addresses.txt" "$KEY")")
    echo "round $round: ${RUNS[-1]}" >&2
    SENT=$((SENT + $(echo "${RUNS[-1]}" | cut -d' ' -f3)))
done
read -r RPS P99 _ CPU < <(printf '%s\n' "${RUNS[@]}" | best)

# Stop the server (SIGTERM flushes the audit log), then count what it recorded:
# every request wrk sent, plus the readiness probe.
kill -TERM "$SERVER"
wait "$SERVER" || true
PIDS=()
AUDITED=$("$LW" --data "$WORK/data" audit-log --json --last 1 | grep -o '"id":[0-9]*' | cut -d: -f2)

echo
echo "breachedaccount benchmark: wrk -t${WRK_THREADS:-2} -c$CONNECTIONS -d${DURATION}s, random known addresses of a"
echo "$LINES-line combo, analyst key without a rate limit; best of $ROUNDS runs"
printf '%-44s %12s %12s %8s\n' "what" "value" "target" "verdict"
printf '%-44s %12s %12s %8s\n' "requests per second" "$RPS" ">= 20000" "$(verdict "$RPS" ">=" 20000)"
printf '%-44s %9s ms %12s %8s\n' "p99 latency" "$P99" "< 5 ms" "$(verdict "$P99" "<" 5)"
printf '%-44s %9s us %12s %8s\n' "server CPU per request" "$CPU" "" ""
printf '%-44s %12s %12s %8s\n' "searches in the audit log / requests sent" "$AUDITED/$((SENT + 1))" "all" \
    "$([ "$AUDITED" -ge "$((SENT + 1))" ] && echo ok || echo MISSED)"
echo "machine load average (1 min) before / after: $LOAD_BEFORE / $(cut -d" " -f1 /proc/loadavg) on $(nproc) cores"
