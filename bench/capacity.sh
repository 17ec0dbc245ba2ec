#!/usr/bin/env bash
# The measured inputs of the capacity plan (docs/capacity.md), and the plan
# derived from them for 50 billion records and 100,000 requests/s.
#
# Measures, at sizes that fit a 2-core machine:
# - bytes on disk per record of each kind of data (combo credentials, accounts
#   without a password, stealer-log lines, Pwned Passwords hashes), each at two
#   sizes to show how it grows, split into index bytes and payload (heap) bytes;
# - ingest CPU per record and per input MB of each (medians of interleaved runs);
# - a store of one combo cut into BREACHES breaches: segments per kind after
#   compaction, objects, manifest bytes, and what /range costs over it against
#   the same records in one breach; the serving process's memory;
# - /range and breachedaccount throughput and server CPU per request, one
#   client and many (bench/http-range.sh against nginx, bench/http-account.sh);
# - ingest into Garage against local disk, and the GETs of a cold /range
#   (bench/s3.sh);
# - AES-256-GCM bytes/s of one core (`openssl speed`): the TLS a proxy adds.
# Then prints the plan (bench/capacity-plan.py over the inputs). The inputs stay
# in bench/out/capacity-inputs.txt, so the plan can be printed again with other
# assumptions: `python3 bench/capacity-plan.py bench/out/capacity-inputs.txt`.
#
# Usage: bench/capacity.sh [SMALL] [LARGE]   (default 250,000 and 1,000,000 lines)
# Environment: SECONDS_PER_RUN (wrk run length, default 5), ROUNDS (default 3),
# BREACHES (default 12), PREFIXES (/range bench, default 1024), and
# PER_WORKER_RECORDS_S: a distributed ingest worker's records/s to plan with
# (by default bench/distributed.sh's, when present; else a single ingest
# process stands in for a worker).
# Needs garage (as bench/s3.sh; bench/distributed.sh also PostgreSQL), wrk,
# nginx and openssl (installed when missing). About 5 minutes on 2 cores, 8
# with bench/distributed.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http-lib.sh"

SMALL="${1:-250000}"
LARGE="${2:-1000000}"
DURATION="${SECONDS_PER_RUN:-5}"
ROUNDS="${ROUNDS:-3}"
BREACHES="${BREACHES:-12}"
PREFIXES="${PREFIXES:-1024}"
INPUTS="$ROOT/bench/out/capacity-inputs.txt"

need wrk nginx curl python3 openssl
if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time..." >&2
    apt-get install -y -qq time >/dev/null
fi
build

# Inputs are "NAME VALUE" lines, collected here and copied to $INPUTS at the end.
: >"$WORK/inputs"
put() { echo "$1 $2" >>"$WORK/inputs"; }
put date "$(date -u +%Y-%m-%dT%H:%MZ)"
put commit "$(git -C "$ROOT" rev-parse --short HEAD)"
put cpu "$(nproc)x_$(awk -F': ' '/model name/ { gsub(/ /, "_", $2); print $2; exit }' /proc/cpuinfo)"
put ram_gib "$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
put load_before "$(cut -d' ' -f1 /proc/loadavg)"
put command "bench/capacity.sh_${SMALL}_${LARGE}"

# --- Inputs of each kind, at two sizes ------------------------------------------
# combo: email:password lines; accounts: the same addresses without a password
# (a CSV of one column); stealer: ULP lines of the same accounts and passwords;
# pwned: HIBP-shaped SHA-1 hashes with counts (imported, not ingested).
inputs_for() {
    local n="$1" dir="$WORK/in-$1"
    mkdir -p "$dir"
    cp "$(combo "$n")" "$dir/combo.txt"
    "$GEN" ulp --lines "$n" --seed 1 --out "$dir/stealer.txt"
    { echo email; cut -d: -f1 "$dir/combo.txt"; } >"$dir/accounts.csv"
    # Four Pwned Passwords hashes per combo line: the hash corpus is the larger one.
    "$GEN" pwned --lines $((4 * n)) --seed 1 --out "$dir/pwned.txt"
}

# load KIND SIZE DATA: sets CMD to the command that writes the input of KIND at
# SIZE into the store DATA.
load() {
    local kind="$1" n="$2" data="$3" dir="$WORK/in-$2"
    case "$kind" in
        combo) CMD=("$LW" --data "$data" ingest --breach Combo "$dir/combo.txt") ;;
        accounts) CMD=("$LW" --data "$data" ingest --breach Accounts --format csv "$dir/accounts.csv") ;;
        stealer) CMD=("$LW" --data "$data" ingest --breach Stealer --format stealer "$dir/stealer.txt") ;;
        pwned) CMD=("$LW" --data "$data" import pwned-passwords "$dir/pwned.txt") ;;
    esac
}
input_file() {
    case "$1" in
        combo) echo "$WORK/in-$2/combo.txt" ;;
        accounts) echo "$WORK/in-$2/accounts.csv" ;;
        stealer) echo "$WORK/in-$2/stealer.txt" ;;
        pwned) echo "$WORK/in-$2/pwned.txt" ;;
    esac
}
KINDS="combo accounts stealer pwned"

echo "generating inputs of $SMALL and $LARGE lines..." >&2
inputs_for "$SMALL"
inputs_for "$LARGE"
sync
for n in "$SMALL" "$LARGE"; do
    for kind in $KINDS; do
        f=$(input_file "$kind" "$n")
        cat "$f" >/dev/null
        records=$(wc -l <"$f")
        [ "$kind" = accounts ] && records=$((records - 1))
        put "input.$kind.$n.records" "$records"
        put "input.$kind.$n.bytes" "$(stat -c %s "$f")"
    done
done

# Interleaved: each round ingests every kind at both sizes once, so a neighbour's
# burst costs one run of each, not all runs of one; medians of the rounds.
declare -A WALL CPU
for round in $(seq "$ROUNDS"); do
    for n in "$SMALL" "$LARGE"; do
        for kind in $KINDS; do
            rm -rf "$WORK/store-$kind-$n"
            load "$kind" "$n" "$WORK/store-$kind-$n"
            read -r wall cpu < <(cpu_seconds "${CMD[@]}")
            WALL[$kind.$n]="${WALL[$kind.$n]:-} $wall"
            CPU[$kind.$n]="${CPU[$kind.$n]:-} $cpu"
        done
    done
    echo "ingest round $round done" >&2
done
for n in "$SMALL" "$LARGE"; do
    for kind in $KINDS; do
        # shellcheck disable=SC2086
        put "ingest.$kind.$n.wall_s" "$(median ${WALL[$kind.$n]})"
        # shellcheck disable=SC2086
        put "ingest.$kind.$n.cpu_s" "$(median ${CPU[$kind.$n]})"
    done
done

# segments DATA PREFIX: per kind of segment, "PREFIX.KIND.{segments,entries,
# bytes,index_bytes,heap_bytes}" from the segment headers (docs/format.md: the
# heap is the sealed payloads; the rest is keys, values and tables), plus the
# manifest's bytes and the objects a bucket would hold.
segments() {
    python3 - "$1" "$2" >>"$WORK/inputs" <<'EOF'
import json, os, struct, sys
data, prefix = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(data, "MANIFEST")))
totals = {}
for seg in manifest["segments"]:
    with open(os.path.join(data, "segments", seg["file"]), "rb") as f:
        header = f.read(128)
    version = struct.unpack_from("<H", header, 8)[0]
    heap = struct.unpack_from("<Q", header, 64)[0] if version == 1 else 0
    t = totals.setdefault(seg["kind"], [0, 0, 0, 0])
    t[0] += 1
    t[1] += seg["entries"]
    t[2] += seg["bytes"]
    t[3] += heap
for kind, (n, entries, size, heap) in sorted(totals.items()):
    print(f"{prefix}.{kind}.segments {n}")
    print(f"{prefix}.{kind}.entries {entries}")
    print(f"{prefix}.{kind}.bytes {size}")
    print(f"{prefix}.{kind}.index_bytes {size - heap}")
    print(f"{prefix}.{kind}.heap_bytes {heap}")
print(f"{prefix}.manifest_bytes {os.path.getsize(os.path.join(data, 'MANIFEST'))}")
print(f"{prefix}.segment_entries_in_manifest {len(manifest['segments'])}")
print(f"{prefix}.breaches_in_manifest {len(manifest['breaches'])}")
print(f"{prefix}.segment_files {len(set(s['file'] for s in manifest['segments']))}")
# The manifest's JSON per segment and per breach (pretty-printed as the file is).
for part in ("segments", "breaches"):
    items = manifest[part]
    size = len(json.dumps(items, indent=2).encode()) / max(1, len(items))
    print(f"{prefix}.manifest_{part[:-1] if part == 'segments' else 'breach'}_bytes {size:.0f}")
EOF
}
for n in "$SMALL" "$LARGE"; do
    for kind in $KINDS; do
        segments "$WORK/store-$kind-$n" "size.$kind.$n"
    done
done

# --- Many breaches: segments after compaction, and /range over them ------------
echo "ingesting $LARGE combo lines as $BREACHES breaches..." >&2
split -n "l/$BREACHES" -d "$WORK/in-$LARGE/combo.txt" "$WORK/part-"
MULTI="$WORK/store-multi"
cpu_total=0
# totals_entries DATA: entries of the password totals (both corpora) of DATA.
totals_entries() {
    "$LW" --data "$1" stats --json | python3 -c '
import json, sys
kinds = json.load(sys.stdin)["kinds"]
print(sum(kinds.get(k, {}).get("entries", 0) for k in ("sha1-totals", "ntlm-totals")))'
}
# Entries the totals were written with, summed over every fold.
totals_written=0 last_totals=0
for i in $(seq "$BREACHES"); do
    part="$WORK/part-$(printf '%02d' $((i - 1)))"
    read -r _ cpu < <(cpu_seconds "$LW" --data "$MULTI" ingest --breach "Part$i" "$part")
    cpu_total=$(awk -v a="$cpu_total" -v b="$cpu" 'BEGIN { print a + b }')
    now=$(totals_entries "$MULTI")
    if [ "$now" != "$last_totals" ]; then
        totals_written=$((totals_written + now))
        last_totals=$now
    fi
done
put multi.totals_entries_written "$totals_written"
# What summing the totals costs: the LARGE combo ingested into an empty store,
# then again as a second breach, whose ingest sums both breaches' counts into
# totals; the second's CPU over the first's, median of the rounds, is theirs.
AGAIN="$WORK/store-again"
extra=()
for _ in $(seq "$ROUNDS"); do
    rm -rf "$AGAIN"
    read -r _ first < <(cpu_seconds "$LW" --data "$AGAIN" ingest --breach First "$(input_file combo "$LARGE")")
    read -r _ again < <(cpu_seconds "$LW" --data "$AGAIN" ingest --breach Again "$(input_file combo "$LARGE")")
    extra+=("$(awk -v a="$again" -v b="$first" 'BEGIN { print a - b }')")
done
put totals.extra_cpu_s "$(median "${extra[@]}")"
put totals.again_entries "$(totals_entries "$AGAIN")"
put multi.breaches "$BREACHES"
put multi.records "$(wc -l <"$WORK/in-$LARGE/combo.txt")"
put multi.ingest_cpu_s "$cpu_total"
segments "$MULTI" multi
ONE="$WORK/store-combo-$LARGE"
# The same store with its totals taken out of the manifest: a range then sums
# every breach's segment, as between folds or in a store without totals.
APART="$WORK/store-multi-apart"
cp -a "$MULTI" "$APART"
python3 - "$APART/MANIFEST" <<'EOF'
import json, sys
manifest = json.load(open(sys.argv[1]))
manifest["segments"] = [s for s in manifest["segments"] if not s["kind"].endswith("-totals")]
json.dump(manifest, open(sys.argv[1], "w"), indent=2)
EOF

cat >"$WORK/range.lua" <<'EOF'
-- A random 5-hex prefix each time.
math.randomseed(os.time())
request = function()
    return wrk.format("GET", string.format("/range/%05X", math.random(0, 0xFFFFF)))
end
EOF
# serve_range NAME DATA: /range over DATA with wrk -c16 in ROUNDS runs, the
# server without its range body cache; puts the
# best run's requests/s and the median server CPU per request, and the server's
# memory after the runs (anonymous RSS: its own; file RSS: mapped segments).
serve_range() {
    local name="$1" data="$2" port pid runs=() cpus=() run
    port=$(free_port)
    # Without the body cache: every request merges its segments' ranges, as
    # most requests do when the bodies of all ranges are far larger than it.
    "$LW" --data "$data" serve --listen "127.0.0.1:$port" --range-cache 0 2>"$WORK/serve-$name.log" &
    pid=$!
    PIDS+=("$pid")
    wait_ready "http://127.0.0.1:$port/range/00000"
    for _ in $(seq "$ROUNDS"); do
        run=$(wrk_cpu "$pid" "$DURATION" 16 "$WORK/range.lua" "http://127.0.0.1:$port")
        runs+=("$run")
        cpus+=("$(echo "$run" | cut -d' ' -f4)")
        echo "[/range over $name] $run" >&2
    done
    put "range.$name.rps" "$(printf '%s\n' "${runs[@]}" | best | cut -d' ' -f1)"
    put "range.$name.cpu_us" "$(median "${cpus[@]}")"
    put "serve.$name.rss_anon_kib" "$(awk '/RssAnon/ { print $2 }' "/proc/$pid/status")"
    put "serve.$name.rss_file_kib" "$(awk '/RssFile/ { print $2 }' "/proc/$pid/status")"
    put "serve.$name.hwm_kib" "$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
}
serve_range one "$ONE"
serve_range multi "$MULTI"
serve_range apart "$APART"

# --- The HTTP benches: one client and many, against nginx ----------------------
# table_value LABEL: the value after LABEL in its row of the bench's table.
table_value() {
    local row
    row=$(grep -F "$1" "$WORK/bench.out" | head -n 1)
    awk '{ print $1 }' <<<"${row#*"$1"}"
}
http_range() {
    local tag="$1"
    shift
    echo "bench/http-range.sh ($tag)..." >&2
    env "$@" ROUNDS=2 "$ROOT/bench/http-range.sh" "$PREFIXES" 800 "$DURATION" >"$WORK/bench.out"
    # Rows: LABEL LINES RPS P99 ms CPU us [TARGET VERDICT]; count from the "ms".
    local label
    for label in "pwned: leakwatch serve" "pwned: nginx" "): leakwatch serve" "): nginx"; do
        local key
        case "$label" in
            "pwned: leakwatch serve") key=pwned.leakwatch ;;
            "pwned: nginx") key=pwned.nginx ;;
            "): leakwatch serve") key=own.leakwatch ;;
            "): nginx") key=own.nginx ;;
        esac
        python3 - "$label" "$WORK/bench.out" "http.range.$tag.$key" >>"$WORK/inputs" <<'EOF'
import sys
label, path, key = sys.argv[1:]
for line in open(path):
    if label in line and " ms " in line:
        f = line.split()
        ms = f.index("ms")
        print(f"{key}.lines {f[ms - 3]}")
        print(f"{key}.rps {f[ms - 2]}")
        print(f"{key}.p99_ms {f[ms - 1]}")
        print(f"{key}.cpu_us {f[ms + 1]}")
        break
else:
    sys.exit(f"no row {label!r} in the /range bench output")
EOF
    done
}
http_account() {
    local tag="$1"
    shift
    echo "bench/http-account.sh ($tag)..." >&2
    env "$@" ROUNDS=2 "$ROOT/bench/http-account.sh" "$LARGE" "$DURATION" >"$WORK/bench.out"
    put "http.account.$tag.rps" "$(table_value "requests per second")"
    put "http.account.$tag.p99_ms" "$(table_value "p99 latency")"
    put "http.account.$tag.cpu_us" "$(table_value "server CPU per request")"
}
http_range many CONNECTIONS=64
http_range uncached CONNECTIONS=64 "SERVE_ARGS=--range-cache 0"
http_range one CONNECTIONS=1 WRK_THREADS=1
http_account many CONNECTIONS=32
http_account one CONNECTIONS=1 WRK_THREADS=1

# --- Object storage: bench/s3.sh ------------------------------------------------
echo "bench/s3.sh $LARGE..." >&2
"$ROOT/bench/s3.sh" "$LARGE" >"$WORK/s3.out" 2>"$WORK/s3.err"
python3 - "$WORK/s3.out" "$WORK/s3.err" >>"$WORK/inputs" <<'EOF'
import re, sys
out, err = open(sys.argv[1]).read(), open(sys.argv[2]).read()
def grab(pattern, text, name):
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"bench/s3.sh printed no {name}:\n{text}")
    return m.group(1)
print("s3.ingest_local_s", grab(r"ingest of \d+ lines [^:]*: local disk ([0-9.]+)", out, "local ingest time"))
print("s3.ingest_garage_s", grab(r"ingest of \d+ lines [^:]*: local disk [0-9.]+, garage ([0-9.]+)", out, "garage ingest time"))
print("s3.lines", grab(r"store: (\d+) combo lines", out, "store size"))
print("s3.open_gets", grab(r"opening the generation: (\d+) GETs", out, "open GETs"))
print("s3.cold_range_gets", grab(r"cold /range: GETs per range: median ([0-9.]+)", out, "cold GETs"))
print("s3.cold_range_ms", grab(r"cold /range time [^:]*: leakwatch ([0-9.]+)", out, "cold time"))
print("s3.cold_range_breaches", grab(r"cold /range over (\d+) breaches", out, "breaches of the own-dumps store"))
print("s3.cold_range_gets_breaches", grab(r"cold /range over \d+ breaches.*GETs per range: median [0-9.]+ max ([0-9.]+)", out, "cold GETs over breaches"))
print("s3.warm_range_ratio", grab(r"warm /range body.*ratio ([0-9.]+)x", out, "warm ratio"))
print("s3.warm_sha1_ratio", grab(r"warm SHA-1 lookup.*ratio ([0-9.]+)x", out, "warm lookup ratio"))
EOF

# What encrypting the bodies costs a core (AES-256-GCM in 16 KiB TLS records):
# the proxy terminating HTTPS in front of the replicas spends it.
put tls_aes_gcm_bytes_s "$(openssl speed -evp aes-256-gcm -seconds 2 -bytes 16384 2>/dev/null |
    awk '/^AES-256-GCM/ { sub(/k$/, "", $2); printf "%.0f", $2 * 1000 }')"

put load_after "$(cut -d' ' -f1 /proc/loadavg)"
# The records/s of one distributed ingest worker, on which the plan's ingest
# section is built: PER_WORKER_RECORDS_S when given; else what
# bench/distributed.sh measures (one `leakwatch worker` into Garage), when the
# repository has it; else none, and the plan stands a single ingest process in.
if [ -n "${PER_WORKER_RECORDS_S:-}" ]; then
    put per_worker_records_s "$PER_WORKER_RECORDS_S"
    put per_worker_source "PER_WORKER_RECORDS_S"
elif [ -x "$ROOT/bench/distributed.sh" ]; then
    echo "bench/distributed.sh $LARGE..." >&2
    "$ROOT/bench/distributed.sh" "$LARGE" >"$WORK/dist.out" 2>"$WORK/dist.err"
    rate=$(sed -n 's/.*records a second per worker: \([0-9]*\) with 1 worker.*/\1/p' "$WORK/dist.out")
    if [ -z "$rate" ]; then
        echo "bench/distributed.sh printed no records a second per worker:" >&2
        cat "$WORK/dist.out" "$WORK/dist.err" >&2
        exit 1
    fi
    put per_worker_records_s "$rate"
    put per_worker_source "bench/distributed.sh_$LARGE"
    # The phases apart: every job reads every input (a rate that does not
    # grow with workers), the writing is shared out (a rate per worker), the
    # one commit names the segments.
    read -r jobs commit < <(sed -n 's/.*jobs (staging and reading) \([0-9]*\), commit \([0-9]*\).*/\1 \2/p' "$WORK/dist.out")
    if [ -n "${commit:-}" ]; then
        put per_worker_jobs_records_s "$jobs"
        put commit_records_s "$commit"
    fi
    read -r job_read job_write < <(sed -n 's/.*reading every input \([0-9]*\) (each job), writing \([0-9]*\) per worker.*/\1 \2/p' "$WORK/dist.out")
    if [ -n "${job_write:-}" ]; then
        put job_read_records_s "$job_read"
        put job_write_records_s "$job_write"
    fi
fi
cp "$WORK/inputs" "$INPUTS"

echo
echo "measured inputs (also in $INPUTS):"
column -t "$INPUTS"
echo
python3 "$ROOT/bench/capacity-plan.py" "$INPUTS"
