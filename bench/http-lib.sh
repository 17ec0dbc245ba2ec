# Shared by the HTTP benchmarks (sourced after lib.sh, not run): tools
# installed on demand, free loopback ports, readiness checks, one wrk run
# reduced to requests/s and p99, and the servers each script starts, stopped by
# their process ids on exit.

# Processes the script started; stopped (SIGTERM, then waited for) on exit.
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# need TOOL...: installs the Debian packages of missing tools.
need() {
    local missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing ${missing[*]}..." >&2
        apt-get update -qq >/dev/null
        apt-get install -y -qq "${missing[@]/nginx/nginx-light}" >/dev/null
    fi
}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready URL [HEADER...]: waits up to 10 s for URL to answer 200.
wait_ready() {
    local url="$1"
    shift
    local args=()
    for h in "$@"; do args+=(-H "$h"); done
    for _ in $(seq 100); do
        curl -sf -o /dev/null "${args[@]}" "$url" && return 0
        sleep 0.1
    done
    echo "no answer from $url" >&2
    exit 1
}

# wrk_run SECONDS CONNECTIONS SCRIPT URL [SCRIPT ARGS...]: one `wrk -t2` run
# (`-t$WRK_THREADS` when set: 1 with one connection, for a single client),
# bounded in time; prints "REQUESTS_PER_SECOND P99_MS TOTAL". Any non-2xx answer
# fails the benchmark: speed only counts for right answers.
wrk_run() {
    local seconds="$1" connections="$2" script="$3" url="$4"
    shift 4
    timeout $((seconds + 30)) wrk -t"${WRK_THREADS:-2}" -c"$connections" -d"${seconds}s" --latency -s "$script" "$url" -- "$@" \
        >"$WORK/wrk.txt"
    if grep -q "Non-2xx" "$WORK/wrk.txt"; then
        echo "failed requests during the run:" >&2
        cat "$WORK/wrk.txt" >&2
        exit 1
    fi
    grep "Socket errors" "$WORK/wrk.txt" >&2 || true
    awk '
        /Requests\/sec:/ { rps = $2 }
        /requests in/ { total = $1 }
        $1 == "99%" {
            v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : v
        }
        END { printf "%.0f %.3f %d\n", rps, p99, total }
    ' "$WORK/wrk.txt"
}

# cpu_ticks PID...: CPU time (user + system, in clock ticks) the processes and
# their children have used so far: a server's cost, whatever else loads the machine.
cpu_ticks() {
    local total=0 pid
    for pid in "$@" $(pgrep -P "$(echo "$@" | tr ' ' ',')" 2>/dev/null); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# wrk_cpu PIDS SECONDS CONNECTIONS SCRIPT URL [SCRIPT ARGS...]: wrk_run, plus the
# server's CPU microseconds per request (PIDS: its process ids, space-separated)
# as a fourth field.
wrk_cpu() {
    local pids="$1" before after
    shift
    before=$(cpu_ticks $pids)
    read -r rps p99 total < <(wrk_run "$@")
    after=$(cpu_ticks $pids)
    awk -v r="$rps" -v p="$p99" -v t="$total" -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%s %s %s %.2f\n", r, p, t, d * 1e6 / hz / t }'
}

# best: of lines "RPS P99 TOTAL ...", the one with the most requests/s.
best() {
    sort -k1,1nr | head -n 1
}
