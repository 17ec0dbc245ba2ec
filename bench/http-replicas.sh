#!/usr/bin/env bash
# Serving with a PostgreSQL catalog, this build beside a baseline build:
# - the keyed request path: `wrk -t2` asking for random known addresses with a
#   key whose rate limit is high enough never to refuse, so that every request
#   goes through its token bucket (shared with other replicas in this build,
#   one exchange with the catalog every 250 ms) and the audit log;
# - a dashboard view (`/ui/org/NAME`, signed in), which reads the catalog at
#   length on a connection of its own (a pooled one in this build).
# The two binaries serve the same data directory and catalog in turn, rounds
# interleaved; prints the medians and the ratio this build / baseline.
#
# Usage: BASE=/path/to/baseline/leakwatch bench/http-replicas.sh [LINES] [SECONDS] [ROUNDS]
#        (defaults: 200,000-line combo, 8 s per wrk run, 3 rounds)
# BASE is required: a release binary of the commit to compare with (e.g. main's
# target/release/leakwatch). Needs Debian's postgresql (a throwaway cluster on
# loopback, with production settings: fsync on) and wrk.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http-lib.sh"

LINES="${1:-200000}"
DURATION="${2:-8}"
ROUNDS="${3:-3}"
CONNECTIONS="${CONNECTIONS:-32}"
: "${BASE:?set BASE to the baseline leakwatch binary}"
ADDRESSES=20000

need wrk curl python3
build
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }

# The cluster, as the postgres user when run as root (initdb refuses root).
PGDIR="$(mktemp -d /tmp/lw-bench-pg.XXXXXX)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$PGDIR"
PGPORT=$(free_port)
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
    -o "-k $PGDIR -h 127.0.0.1 -p $PGPORT -c max_connections=100" start >/dev/null
stop_pg() {
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
}
trap 'cleanup; stop_pg' EXIT
"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE bench" >/dev/null
export LEAKWATCH_CATALOG="postgres://postgres@127.0.0.1:$PGPORT/bench"

FILE="$(combo "$LINES")"
echo "ingesting $LINES lines..." >&2
"$LW" --data "$WORK/data" ingest --breach Bench "$FILE" >/dev/null 2>&1
"$GEN" emails --count $((2 * ADDRESSES)) --seed 1 --lines "$LINES" --annotate |
    awk -F'\t' '$2 == "present" { print $1 }' >"$WORK/addresses.txt"
KEY=$("$LW" --data "$WORK/data" apikey create --name bench --role analyst --rate-limit 1000000000 | tail -n 1)
"$LW" --data "$WORK/data" org add Bench --domain example.com >/dev/null

cat >"$WORK/account.lua" <<'EOF2'
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

cat >"$WORK/dashboard.lua" <<'EOF2'
init = function(args)
    wrk.headers["cookie"] = args[1]
    wrk.headers["user-agent"] = "leakwatch-bench"
end
request = function()
    return wrk.format("GET", "/ui/org/Bench")
end
EOF2

# sign_in PORT: a session cookie (name=value) from the web sign-in form.
sign_in() {
    local jar="$WORK/cookies.txt" token
    rm -f "$jar"
    curl -sf -c "$jar" -A leakwatch-bench "http://127.0.0.1:$1/ui/signin" >/dev/null
    token=$(awk '$6 == "lw_signin" { print $7 }' "$jar")
    curl -sf -b "$jar" -c "$jar" -A leakwatch-bench --data-urlencode "csrf=$token" --data-urlencode "key=$KEY" \
        "http://127.0.0.1:$1/ui/signin" >/dev/null
    awk '$6 == "lw_session" { print "lw_session=" $7 }' "$jar"
}

# run BINARY WHAT: one wrk run of WHAT (account, dashboard) against a server
# of BINARY; "RPS P99 SENT".
run() {
    local port
    port=$(free_port)
    "$1" --data "$WORK/data" serve --listen "127.0.0.1:$port" 2>"$WORK/serve.log" &
    local server=$!
    PIDS+=("$server")
    wait_ready "http://127.0.0.1:$port/api/v3/breachedaccount/$(head -n 1 "$WORK/addresses.txt")" \
        "hibp-api-key: $KEY" "user-agent: leakwatch-bench"
    if [ "$2" = account ]; then
        wrk_run "$DURATION" "$CONNECTIONS" "$WORK/account.lua" "http://127.0.0.1:$port" "$WORK/addresses.txt" "$KEY"
    else
        wrk_run "$DURATION" 8 "$WORK/dashboard.lua" "http://127.0.0.1:$port" "$(sign_in "$port")"
    fi
    kill -TERM "$server"
    wait "$server" || true
    PIDS=()
}

printf '%-34s %12s %12s %10s\n' "what (medians)" "baseline" "this build" "ratio" >"$WORK/table.txt"
for what in account dashboard; do
    BASE_RPS=() NEW_RPS=() BASE_P99=() NEW_P99=()
    for round in $(seq "$ROUNDS"); do
        read -r rps p99 _ < <(run "$BASE" "$what")
        BASE_RPS+=("$rps") BASE_P99+=("$p99")
        read -r rps p99 _ < <(run "$LW" "$what")
        NEW_RPS+=("$rps") NEW_P99+=("$p99")
        echo "$what round $round: baseline ${BASE_RPS[-1]} req/s p99 ${BASE_P99[-1]} ms;" \
            "this build ${NEW_RPS[-1]} req/s p99 ${NEW_P99[-1]} ms" >&2
    done
    B_RPS=$(median "${BASE_RPS[@]}") N_RPS=$(median "${NEW_RPS[@]}")
    B_P99=$(median "${BASE_P99[@]}") N_P99=$(median "${NEW_P99[@]}")
    printf '%-34s %12s %12s %10s\n' "$what: requests per second" "$B_RPS" "$N_RPS" "$(ratio "$N_RPS" "$B_RPS")" \
        >>"$WORK/table.txt"
    printf '%-34s %9s ms %9s ms %10s\n' "$what: p99 latency" "$B_P99" "$N_P99" "$(ratio "$N_P99" "$B_P99")" \
        >>"$WORK/table.txt"
done

echo
echo "serve with a PostgreSQL catalog (fsync on), wrk -t2 -d${DURATION}s, medians of $ROUNDS interleaved rounds:"
echo "account: random known addresses, -c$CONNECTIONS, key limited to 10^9 a minute (every request through"
echo "its bucket); dashboard: /ui/org/Bench signed in, -c8"
cat "$WORK/table.txt"
echo "machine load average (1 min): $(cut -d" " -f1 /proc/loadavg) on $(nproc) cores"
