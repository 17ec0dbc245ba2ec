#!/usr/bin/env bash
# From the end of an ingest (the process's exit) to the arrival of the webhook
# announcing its new exposure, with `leakwatch serve` running and a receiver on
# loopback (Python's http.server, recording each POST's arrival time).
#
# The store holds a generated combo plus ADDRESSES addresses of the monitored
# organization's domain (so that the monitor's domain scan has work to do);
# each timed run ingests a one-line dump with one new address of that domain.
# Two paths are timed: the ingest's own monitor writing the outbox before it
# exits (the normal case; serve's delivery polls the outbox), and the ingest
# run with LEAKWATCH_NO_MONITOR=1, where serve must notice the new generation
# (manifest poll), scan and deliver by itself.
#
# A figure can be negative: serve may see the new generation, scan and deliver
# before the ingest process, which runs its own monitor after publishing, has
# exited.
#
# Usage: bench/alert.sh [LINES] [ADDRESSES] [RUNS]   (defaults: 200,000 combo lines, 20,000 addresses, 7 runs)
# Target: median < 1 s on both paths.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LINES="${1:-200000}"
ADDRESSES="${2:-20000}"
RUNS="${3:-7}"
build

DATA="$WORK/data"
"$LW" --data "$DATA" ingest --breach Base "$(combo "$LINES")" >/dev/null 2>&1
awk -v n="$ADDRESSES" 'BEGIN { for (i = 1; i <= n; i++) printf "staff%d@bench.example:pw%d\n", i, i }' \
    >"$WORK/staff.txt"
"$LW" --data "$DATA" ingest --breach Staff "$WORK/staff.txt" >/dev/null 2>&1
"$LW" --data "$DATA" org add bench --domain bench.example >/dev/null

# The receiver: answers 200 and appends "ARRIVAL_NS DELIVERY_ID" per POST.
PY=python3
cat >"$WORK/receiver.py" <<'PYEOF'
import http.server, sys, time
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        log.write("%d %s\n" % (time.time_ns(), self.headers["x-leakwatch-delivery"]))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PYEOF
: >"$WORK/arrivals.txt"
"$PY" "$WORK/receiver.py" x "$WORK/arrivals.txt" >"$WORK/port.txt" &
RECEIVER=$!
SERVE=""
trap 'kill $RECEIVER ${SERVE:-} 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [ -s "$WORK/port.txt" ] && break; sleep 0.05; done
PORT=$(cat "$WORK/port.txt")
"$LW" --data "$DATA" org alert bench --webhook "http://127.0.0.1:$PORT/hook" \
    --secret "bench-secret-0123456789" >/dev/null

"$LW" --data "$DATA" serve --listen 127.0.0.1:0 2>"$WORK/serve.log" &
SERVE=$!
for _ in $(seq 200); do grep -q "listening on" "$WORK/serve.log" && break; sleep 0.05; done

# one_run N ENV...: ingests one new address, prints the latency in seconds.
one_run() {
    local n=$1; shift
    local before end arrival
    before=$(wc -l <"$WORK/arrivals.txt")
    printf 'new%d@bench.example:newpw%d\n' "$n" "$n" >"$WORK/new.txt"
    env "$@" "$LW" --data "$DATA" ingest --breach "New$n" "$WORK/new.txt" >/dev/null 2>&1
    end=$(date +%s%N)
    for _ in $(seq 1000); do
        [ "$(wc -l <"$WORK/arrivals.txt")" -gt "$before" ] && break
        sleep 0.01
    done
    arrival=$(tail -n 1 "$WORK/arrivals.txt" | cut -d' ' -f1)
    [ "$(wc -l <"$WORK/arrivals.txt")" -gt "$before" ] || { echo "no webhook for run $n" >&2; cat "$WORK/serve.log" >&2; exit 1; }
    awk -v a="$arrival" -v e="$end" 'BEGIN { printf "%.3f\n", (a - e) / 1e9 }'
}

with_monitor=(); serve_only=()
for run in $(seq "$RUNS"); do
    with_monitor+=("$(one_run "$run" LEAKWATCH_NO_MONITOR=0)")
    serve_only+=("$(one_run "$((run + 1000))" LEAKWATCH_NO_MONITOR=1)")
    echo "run $run: ingest's monitor ${with_monitor[-1]} s, serve's monitor ${serve_only[-1]} s" >&2
done
worst() { printf '%s\n' "$@" | sort -g | tail -n 1; }
mid() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
M1=$(mid "${with_monitor[@]}"); M2=$(mid "${serve_only[@]}")
echo
echo "end of ingest -> webhook on loopback ($LINES combo lines + $ADDRESSES addresses of the domain, $RUNS runs)"
printf '  %-40s median %s s  worst %s s  target < 1 s: %s\n' "outbox written by the ingest" \
    "$M1" "$(worst "${with_monitor[@]}")" "$(verdict "$M1" "<" 1)"
printf '  %-40s median %s s  worst %s s  target < 1 s: %s\n' "found by serve (LEAKWATCH_NO_MONITOR=1)" \
    "$M2" "$(worst "${serve_only[@]}")" "$(verdict "$M2" "<" 1)"
