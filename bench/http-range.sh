#!/usr/bin/env bash
# Pwned Passwords /range throughput: `leakwatch serve` against nginx serving the
# very same range bodies as static files, side by side in one run, both on
# loopback and both hit by `wrk -t2` over the same random prefixes.
#
# Usage: bench/http-range.sh [PREFIXES] [LINES_PER_RANGE] [SECONDS]
#        (defaults: 4,096 prefixes of 800 lines, 10 s per wrk run)
# Target: leakwatch requests/s >= nginx requests/s (ratio >= 1.0); p99 of each printed,
# and each server's CPU time per request (its own cost: steadier than requests/s
# when other work shares the cores).
#
# The corpus is Pwned Passwords-shaped: LINES_PER_RANGE hashes under each of
# PREFIXES random 5-hex-digit prefixes (HIBP's own ranges hold 800-1,000 lines,
# about 30 KB), with heavy-tailed counts, imported with `leakwatch import
# pwned-passwords`. nginx gets every advantage a static server has: open-file
# cache, sendfile, no access log, as many workers as leakwatch has threads (one
# per core). Each side is measured ROUNDS times (default 2), alternating, and its
# best run kept. Installs wrk and nginx with apt-get when missing. Only 127.0.0.1
# is used; every process started here is stopped on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http-lib.sh"

PREFIXES="${1:-4096}"
PER_RANGE="${2:-800}"
DURATION="${3:-10}"
CONNECTIONS=64
# Alternating runs of each side; the better one is kept (ROUNDS=3 on a noisy machine).
ROUNDS="${ROUNDS:-2}"

need wrk nginx curl python3

LOAD_BEFORE=$(cut -d" " -f1 /proc/loadavg)
build
echo "generating $PREFIXES ranges of $PER_RANGE hashes..." >&2
python3 - "$PREFIXES" "$PER_RANGE" "$WORK/pwned.txt" "$WORK/prefixes.txt" <<'EOF'
import random, sys
count, per_range, out, listing = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = random.Random(1)
prefixes = sorted(rng.sample(range(1 << 20), count))
with open(out, "w", newline="") as f:
    for p in prefixes:
        suffixes = sorted({rng.getrandbits(140) for _ in range(per_range)})
        # Heavy-tailed like HIBP's: most hashes seen a few times, some millions.
        f.write("".join(f"{p:05X}{s:035X}:{max(1, int(rng.paretovariate(0.7)))}\r\n" for s in suffixes))
with open(listing, "w") as f:
    f.write("\n".join(f"{p:05X}" for p in prefixes) + "\n")
EOF
"$LW" --data "$WORK/data" import pwned-passwords "$WORK/pwned.txt" >/dev/null 2>&1
DISTINCT=$(wc -l <"$WORK/pwned.txt")

LW_PORT=$(free_port)
"$LW" --data "$WORK/data" serve --listen "127.0.0.1:$LW_PORT" 2>"$WORK/serve.log" &
LW_PID=$!
PIDS+=("$LW_PID")
wait_ready "http://127.0.0.1:$LW_PORT/range/00000"

# The same bodies as static files: fetched from leakwatch once, byte for byte.
echo "writing $PREFIXES range files for nginx..." >&2
mkdir -p "$WORK/www/range"
python3 - "$LW_PORT" "$WORK/prefixes.txt" "$WORK/www/range" <<'EOF'
import http.client, sys
port, listing, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
lines = 0
prefixes = open(listing).read().split()
for prefix in prefixes:
    conn.request("GET", f"/range/{prefix}")
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, (prefix, response.status)
    lines += body.count(b"\r\n") + (1 if body else 0)
    with open(f"{out}/{prefix}", "wb") as f:
        f.write(body)
print(f"{lines / len(prefixes):.0f}", file=open(f"{listing}.lines", "w"))
EOF
LINES_PER_RANGE=$(cat "$WORK/prefixes.txt.lines")

NGINX_PORT=$(free_port)
cat >"$WORK/nginx.conf" <<EOF
worker_processes $(nproc);
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
# The scratch directory is private to root; workers must be able to read it.
user root;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    open_file_cache max=100000 inactive=60s;
    open_file_cache_valid 60s;
    types { }
    default_type text/plain;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        location /range/ {
            add_header Cache-Control "public, max-age=2678400";
            add_header Access-Control-Allow-Origin *;
        }
    }
}
EOF
nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;' &
NGX_PID=$!
PIDS+=("$NGX_PID")
wait_ready "http://127.0.0.1:$NGINX_PORT/range/$(head -n 1 "$WORK/prefixes.txt")"

# Both must serve the same bytes, or the comparison means nothing.
for prefix in $(shuf -n 50 --random-source=<(yes) "$WORK/prefixes.txt"); do
    curl -sf "http://127.0.0.1:$LW_PORT/range/$prefix" >"$WORK/a"
    curl -sf "http://127.0.0.1:$NGINX_PORT/range/$prefix" >"$WORK/b"
    cmp -s "$WORK/a" "$WORK/b" || { echo "bodies differ for $prefix" >&2; exit 1; }
done

cat >"$WORK/range.lua" <<'EOF'
-- Requests a random prefix from the list file each time.
local prefixes = {}
init = function(args)
    for line in io.lines(args[1]) do
        prefixes[#prefixes + 1] = "/range/" .. line
    end
    math.randomseed(os.time() + tonumber(tostring(prefixes):match("0x(%x+)") or "0", 16) % 100000)
end
request = function()
    return wrk.format("GET", prefixes[math.random(#prefixes)])
end
EOF

# measure PORT PID: one wrk run over random prefixes, with the server's CPU cost.
measure() {
    wrk_cpu "$2" "$DURATION" "$CONNECTIONS" "$WORK/range.lua" "http://127.0.0.1:$1" "$WORK/prefixes.txt"
}

LW_RUNS=()
NGX_RUNS=()
for round in $(seq "$ROUNDS"); do
    NGX_RUNS+=("$(measure "$NGINX_PORT" "$NGX_PID")")
    echo "round $round: nginx ${NGX_RUNS[-1]}" >&2
    LW_RUNS+=("$(measure "$LW_PORT" "$LW_PID")")
    echo "round $round: leakwatch ${LW_RUNS[-1]}" >&2
done
read -r NGX_RPS NGX_P99 _ NGX_CPU < <(printf '%s\n' "${NGX_RUNS[@]}" | best)
read -r LW_RPS LW_P99 _ LW_CPU < <(printf '%s\n' "${LW_RUNS[@]}" | best)
RATIO=$(ratio "$LW_RPS" "$NGX_RPS")

echo
echo "/range benchmark: wrk -t2 -c$CONNECTIONS -d${DURATION}s over $PREFIXES random prefixes, loopback,"
echo "Pwned Passwords-shaped corpus ($DISTINCT SHA-1, $LINES_PER_RANGE lines a range); better of $ROUNDS alternating runs"
printf '%-44s %12s %10s %13s %10s %8s\n' "what" "requests/s" "p99" "CPU/request" "target" "verdict"
printf '%-44s %12s %7s ms %10s us %10s %8s\n' "nginx $(nginx -v 2>&1 | cut -d/ -f2), static files" "$NGX_RPS" "$NGX_P99" "$NGX_CPU" "baseline" ""
printf '%-44s %12s %7s ms %10s us %10s %8s\n' "leakwatch serve" "$LW_RPS" "$LW_P99" "$LW_CPU" "" ""
printf '%-44s %12s %10s %13s %10s %8s\n' "ratio leakwatch / nginx" "$RATIO" "" "" ">= 1.0" "$(verdict "$RATIO" ">=" 1.0)"
echo "machine load average (1 min) before / after: $LOAD_BEFORE / $(cut -d" " -f1 /proc/loadavg) on $(nproc) cores"
