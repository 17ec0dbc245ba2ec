#!/usr/bin/env bash
# Pwned Passwords /range throughput: `leakwatch serve` against nginx serving the
# very same range bodies as static files, side by side in one run, both on
# loopback and both hit by `wrk -t2` over the same random prefixes, for the two
# shapes of store users have:
#
# - "pwned": a Pwned Passwords-shaped corpus: LINES_PER_RANGE hashes under each
#   of PREFIXES random 5-hex-digit prefixes (HIBP's own ranges hold 800-1,000
#   lines, about 30 KB), with heavy-tailed counts, imported with `leakwatch
#   import pwned-passwords`; requests go to those prefixes.
# - "own dumps": only the organization's own dumps (OWN_LINES combo lines
#   ingested), so most of the PREFIXES random prefixes requested are empty
#   (answered with padding lines) and the rest hold a line or two.
#
# Usage: bench/http-range.sh [PREFIXES] [LINES_PER_RANGE] [SECONDS]
#        (defaults: 4,096 prefixes of 800 lines, 10 s per wrk run; OWN_LINES=20000,
#        CONNECTIONS=64; CONNECTIONS=1 WRK_THREADS=1 for a single client;
#        SERVE_ARGS: more options of `leakwatch serve`, e.g. "--range-cache 0")
# Targets: leakwatch requests/s >= nginx requests/s (ratio >= 1.0) on both shapes,
# p99 under 5 ms on the own-dumps store; each server's CPU time per request is
# printed too (its own cost: steadier than requests/s when other work shares the
# cores).
#
# nginx gets every advantage a static server has: open-file cache, sendfile, no
# access log, as many workers as leakwatch has threads (one per core). Each side
# is measured ROUNDS times (default 2), alternating, and its best run kept.
# Installs wrk and nginx with apt-get when missing. Only 127.0.0.1 is used;
# every process started here is stopped on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http-lib.sh"

PREFIXES="${1:-4096}"
PER_RANGE="${2:-800}"
DURATION="${3:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
# Alternating runs of each side; the better one is kept (ROUNDS=3 on a noisy machine).
ROUNDS="${ROUNDS:-2}"
OWN_LINES="${OWN_LINES:-20000}"

need wrk nginx curl python3

LOAD_BEFORE=$(cut -d" " -f1 /proc/loadavg)
build

echo "generating $PREFIXES ranges of $PER_RANGE hashes..." >&2
mkdir -p "$WORK/pwned"
python3 - "$PREFIXES" "$PER_RANGE" "$WORK/pwned/corpus.txt" "$WORK/pwned/prefixes.txt" <<'EOF'
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
"$LW" --data "$WORK/pwned/data" import pwned-passwords "$WORK/pwned/corpus.txt" >/dev/null 2>&1
PWNED_HASHES=$(wc -l <"$WORK/pwned/corpus.txt")

echo "generating an own-dumps store of $OWN_LINES combo lines..." >&2
mkdir -p "$WORK/own"
"$GEN" combo --lines "$OWN_LINES" --seed 1 --out "$WORK/own/combo.txt"
"$LW" --data "$WORK/own/data" ingest --breach OwnDump "$WORK/own/combo.txt" >/dev/null 2>&1
python3 - "$PREFIXES" "$WORK/own/prefixes.txt" <<'EOF'
import random, sys
count, listing = int(sys.argv[1]), sys.argv[2]
rng = random.Random(2)
with open(listing, "w") as f:
    f.write("\n".join(f"{p:05X}" for p in sorted(rng.sample(range(1 << 20), count))) + "\n")
EOF

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

# shape NAME DIR: serves DIR/data with leakwatch and the same bodies with nginx,
# measures both over the prefixes of DIR/prefixes.txt, and prints one line:
# "NAME REAL_LINES_PER_RANGE EMPTY_SHARE NGX_RPS NGX_P99 NGX_CPU LW_RPS LW_P99 LW_CPU".
shape() {
    local name="$1" dir="$2"
    local lw_port lw_pid ngx_port ngx_pid
    lw_port=$(free_port)
    # shellcheck disable=SC2086
    "$LW" --data "$dir/data" serve --listen "127.0.0.1:$lw_port" ${SERVE_ARGS:-} 2>"$dir/serve.log" &
    lw_pid=$!
    PIDS+=("$lw_pid")
    wait_ready "http://127.0.0.1:$lw_port/range/00000"

    # The same bodies as static files: fetched from leakwatch once, byte for byte.
    echo "[$name] writing $PREFIXES range files for nginx..." >&2
    mkdir -p "$dir/www/range"
    python3 - "$lw_port" "$dir/prefixes.txt" "$dir/www/range" <<'EOF'
import http.client, sys
port, listing, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
lines = empty = 0
prefixes = open(listing).read().split()
for prefix in prefixes:
    conn.request("GET", f"/range/{prefix}")
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200 and body, (prefix, response.status, body)
    real = [l for l in body.split(b"\r\n") if not l.endswith(b":0")]
    lines += len(real)
    empty += not real
    with open(f"{out}/{prefix}", "wb") as f:
        f.write(body)
print(f"{lines / len(prefixes):.2f} {100 * empty / len(prefixes):.0f}%", file=open(f"{listing}.lines", "w"))
EOF

    ngx_port=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
worker_processes $(nproc);
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
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
        listen 127.0.0.1:$ngx_port;
        root $dir/www;
        location /range/ {
            add_header Cache-Control "public, max-age=2678400";
            add_header Access-Control-Allow-Origin *;
        }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
    ngx_pid=$!
    PIDS+=("$ngx_pid")
    wait_ready "http://127.0.0.1:$ngx_port/range/$(head -n 1 "$dir/prefixes.txt")"

    # Both must serve the same bytes, or the comparison means nothing.
    local prefix
    for prefix in $(shuf -n 50 --random-source=<(yes) "$dir/prefixes.txt"); do
        curl -sf "http://127.0.0.1:$lw_port/range/$prefix" >"$WORK/a"
        curl -sf "http://127.0.0.1:$ngx_port/range/$prefix" >"$WORK/b"
        cmp -s "$WORK/a" "$WORK/b" || { echo "bodies differ for $prefix" >&2; exit 1; }
    done

    local lw_runs=() ngx_runs=() round
    for round in $(seq "$ROUNDS"); do
        ngx_runs+=("$(wrk_cpu "$ngx_pid" "$DURATION" "$CONNECTIONS" "$WORK/range.lua" \
            "http://127.0.0.1:$ngx_port" "$dir/prefixes.txt")")
        echo "[$name] round $round: nginx ${ngx_runs[-1]}" >&2
        lw_runs+=("$(wrk_cpu "$lw_pid" "$DURATION" "$CONNECTIONS" "$WORK/range.lua" \
            "http://127.0.0.1:$lw_port" "$dir/prefixes.txt")")
        echo "[$name] round $round: leakwatch ${lw_runs[-1]}" >&2
    done
    local ngx lw ngx_rps ngx_p99 ngx_cpu lw_rps lw_p99 lw_cpu
    ngx=$(printf '%s\n' "${ngx_runs[@]}" | best)
    lw=$(printf '%s\n' "${lw_runs[@]}" | best)
    kill -TERM "$lw_pid" "$ngx_pid" 2>/dev/null || true
    wait "$lw_pid" "$ngx_pid" 2>/dev/null || true
    read -r ngx_rps ngx_p99 _ ngx_cpu <<<"$ngx"
    read -r lw_rps lw_p99 _ lw_cpu <<<"$lw"
    echo "$name $(cat "$dir/prefixes.txt.lines") $ngx_rps $ngx_p99 $ngx_cpu $lw_rps $lw_p99 $lw_cpu"
}

PWNED=$(shape pwned "$WORK/pwned")
OWN=$(shape own "$WORK/own")

echo
echo "/range benchmark: wrk -t${WRK_THREADS:-2} -c$CONNECTIONS -d${DURATION}s over $PREFIXES random prefixes, loopback,"
echo "better of $ROUNDS alternating runs per server. Stores: \"pwned\", a Pwned Passwords-shaped corpus"
echo "($PWNED_HASHES SHA-1, $PER_RANGE lines a range); \"own dumps\", $OWN_LINES combo lines ingested"
echo "(most requested ranges empty, answered with padding lines)."
printf '%-40s %6s %12s %10s %13s %10s %8s\n' "what" "lines" "requests/s" "p99" "CPU/request" "target" "verdict"
for result in "$PWNED" "$OWN"; do
    read -r name lines empty ngx_rps ngx_p99 ngx_cpu lw_rps lw_p99 lw_cpu <<<"$result"
    if [ "$name" = own ]; then
        label="own dumps ($empty empty)"
        p99_target="p99 < 5"
        p99_verdict=$(verdict "$lw_p99" "<" 5)
    else
        label="pwned"
        p99_target=""
        p99_verdict=""
    fi
    ratio=$(ratio "$lw_rps" "$ngx_rps")
    printf '%-40s %6s %12s %7s ms %10s us %10s %8s\n' "$label: nginx, static files" "$lines" \
        "$ngx_rps" "$ngx_p99" "$ngx_cpu" "baseline" ""
    printf '%-40s %6s %12s %7s ms %10s us %10s %8s\n' "$label: leakwatch serve" "$lines" \
        "$lw_rps" "$lw_p99" "$lw_cpu" "$p99_target" "$p99_verdict"
    printf '%-40s %6s %12s %10s %13s %10s %8s\n' "$label: ratio leakwatch / nginx" "" "$ratio" "" "" \
        ">= 1.0" "$(verdict "$ratio" ">=" 1.0)"
done
echo "nginx $(nginx -v 2>&1 | cut -d/ -f2); load average (1 min) before / after:" \
    "$LOAD_BEFORE / $(cut -d" " -f1 /proc/loadavg) on $(nproc) cores"
