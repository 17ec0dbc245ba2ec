#!/usr/bin/env python3
"""The capacity plan of docs/capacity.md, derived from the inputs that
bench/capacity.sh measured ("NAME VALUE" lines in bench/out/capacity-inputs.txt).

Usage: python3 bench/capacity-plan.py bench/out/capacity-inputs.txt

Every figure printed is a measured input or arithmetic on measured inputs and the
assumptions below (the mix, the request rate, prices). Change an assumption here
and run it again; the prices are list prices as we knew them in 2026, to be
checked before any purchase.
"""

import math
import sys

# ---- Assumptions (stated in docs/capacity.md) -----------------------------------
RECORDS = 50e9
# The mix of the 50 billion records, by input kind.
MIX = {
    "combo": 25e9,  # email:password lines (combo lists, cracked dumps)
    "stealer": 12e9,  # infostealer URL:login:password lines
    "accounts": 11e9,  # addresses without a password (scraped lists, profile dumps)
    "pwned": 2e9,  # Pwned Passwords SHA-1 hashes (HIBP's ~2.07 billion)
}
# Breaches the 48 billion account records arrive in (HIBP lists ~900 for ~15 billion
# accounts; stealer logs and combo lists come in many more, smaller files).
BREACHES = 2000
CREDENTIAL_BREACHES = 1500  # of them, those with passwords (combo or stealer)
PEAK_RPS = 100_000
RANGE_SHARE = 0.9  # of the requests: /range; the rest breachedaccount
UTILIZATION = 0.5  # cores busy at peak: headroom for bursts, a lost replica, ingest
CORES_PER_REPLICA = 16
AVERAGE_OF_PEAK = 0.25  # the month's average request rate, as a share of the peak
DAILY_RECORDS = 100e6  # new records ingested a day once the corpus is loaded
MISS_RATIO = 0.01  # lookups that miss a replica's cache (one smaller than the hot sets, a new generation)
INGEST_DAYS = 7  # time to ingest the whole 50 billion from scratch
SEGMENT_ENTRY_LIMIT = 2**32  # entries of one segment (docs/format.md: u32 indices)
SEGMENT_HEAP_LIMIT = 2**32  # heap bytes of one segment (u32 heap offsets)
SHA1_RANGE_LINE_BYTES = 40  # "SUFFIX:COUNT\r\n", HIBP's text form
PART_BYTES = 16 << 20  # a multipart upload's part (crates/leakwatch-objstore/src/storage.rs)

# Prices: list prices (USD) as of 2026, assumptions to check before use.
PRICE = {
    "s3_gb_month": 0.023,  # AWS S3 Standard, first 50 TB, us-east-1
    "s3_get_per_1000": 0.0004,
    "s3_put_per_1000": 0.005,
    "egress_gb": 0.05,  # AWS internet egress past 150 TB/month (0.09 for the first 10 TB)
    "replica_hour": 1.373,  # i4i.4xlarge: 16 vCPU, 128 GiB, 3.75 TB NVMe, on demand
    "worker_hour": 0.68,  # c7i.4xlarge: 16 vCPU, 32 GiB, on demand
    "postgres_month": 700.0,  # RDS PostgreSQL db.m7g.xlarge Multi-AZ + 200 GB gp3
    # Own hardware, bought, written off over 5 years:
    "server": 14000.0,  # 2U, 32 cores, 256 GiB, 2 x 3.84 TB NVMe
    "storage_server": 9000.0,  # 1U/2U, 8 cores, 64 GiB, 4 x 8 TB NVMe or 12 x 8 TB HDD
    "server_watts": 450,
    "storage_watts": 250,
    "kwh": 0.20,  # electricity incl. cooling share (PUE 1.5 folded in below)
    "pue": 1.5,
    "rack_month": 1200.0,  # a colocated rack with power feed and transit, per month
}
HOURS_MONTH = 730
YEARS = 5

# Kinds of segment that count passwords or hold credential triples: one segment
# (at least) per breach, since compaction never merges two breaches' (docs/format.md).
PER_BREACH = {"sha1", "ntlm", "credential-keys", "ntlm-credential-keys", "credentials", "ntlm-credentials"}
# What a range reads: the SHA-1 totals (own dumps and Pwned Passwords summed,
# crate::totals) for keyed callers, the Pwned Passwords import for the public.
RANGE_KINDS = {"sha1-totals", "hibp-sha1"}
# crate::totals: count segments that may wait beside the totals, and the share
# of the totals' entries that makes them be folded in at once.
TOTALS_MAX_UNCOVERED, TOTALS_FOLD_RATIO = 4, 8
ACCOUNT_KINDS = {"accounts"}


def load(path):
    values = {}
    for line in open(path):
        name, _, value = line.strip().partition(" ")
        if name:
            values[name] = value
    return values


I = load(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(__doc__)


def num(name):
    if name not in I:
        sys.exit(f"input {name} missing: run bench/capacity.sh")
    return float(I[name])


SIZES = sorted({int(k.split(".")[2]) for k in I if k.startswith("input.")})
SMALL, LARGE = SIZES[0], SIZES[-1]
KINDS = ["combo", "accounts", "stealer", "pwned"]


def seg_kinds(prefix):
    """The segment kinds measured under `prefix` (keys PREFIX.KIND.bytes)."""
    rest = [k[len(prefix) + 1:].split(".") for k in I if k.startswith(prefix + ".")]
    return sorted(r[0] for r in rest if len(r) == 2 and r[1] == "bytes")


def per_record(kind, n, field="bytes"):
    """Bytes (or index or heap bytes) of every segment per input record."""
    total = sum(num(f"size.{kind}.{n}.{sk}.{field}") for sk in seg_kinds(f"size.{kind}.{n}"))
    return total / num(f"input.{kind}.{n}.records")


def fmt_bytes(b):
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= size:
            return f"{b / size:.2f} {unit}"
    return f"{b:.0f} B"


def fmt_n(x):
    if x >= 1e9:
        return f"{x / 1e9:.1f} G"
    if x >= 1e6:
        return f"{x / 1e6:.1f} M"
    if x >= 1e4:
        return f"{x / 1e3:.0f} k"
    return f"{x:,.0f}"


def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


print(f"Measured {I['date']} at {I['commit']} on {I['cpu'].replace('_', ' ')}, {I['ram_gib']} GiB RAM;")
print(f"load average {I['load_before']} before, {I['load_after']} after (other work shared the cores).")
print(f"Command: {I['command'].replace('_', ' ')}. Sizes measured: {SMALL:,} and {LARGE:,} lines;")
print("everything at 50 billion records is an extrapolation from them.\n")

# ---- 1. Bytes per record --------------------------------------------------------
print("### 1. Bytes per record\n")
rows = []
for kind in KINDS:
    small, large = per_record(kind, SMALL), per_record(kind, LARGE)
    rows.append([
        kind,
        f"{num(f'input.{kind}.{LARGE}.bytes') / num(f'input.{kind}.{LARGE}.records'):.1f}",
        f"{small:.1f}",
        f"{large:.1f}",
        f"{large / small:.3f}",
        f"{per_record(kind, LARGE, 'index_bytes'):.1f}",
        f"{per_record(kind, LARGE, 'heap_bytes'):.1f}",
    ])
table(["input kind", "input B/record", f"stored B/record at {fmt_n(SMALL)}", f"at {fmt_n(LARGE)}",
       "ratio", "index B/record", "payload B/record"], rows)

all_kinds = sorted({sk for kind in KINDS for sk in seg_kinds(f"size.{kind}.{LARGE}")})
rows = []
for sk in all_kinds:
    row = [sk]
    for kind in KINDS:
        key = f"size.{kind}.{LARGE}.{sk}.bytes"
        row.append(f"{num(key) / num(f'input.{kind}.{LARGE}.records'):.1f}" if key in I else "")
    rows.append(row)
table(["segment kind (B/record at " + fmt_n(LARGE) + ")"] + KINDS, rows)

# Bytes of each segment kind in the plan. Entries of the password count kinds
# (one per distinct password of a breach) grow slower than the records: they are
# scaled by the power law fitted between the two measured sizes, per breach
# (each breach has its own count segments), at the plan's mean breach size.
PASSWORD_KINDS = {"sha1", "ntlm"}
CREDENTIAL_RECORDS = MIX["combo"] + MIX["stealer"]
MEAN_BREACH = CREDENTIAL_RECORDS / CREDENTIAL_BREACHES


def alpha(kind, sk):
    small, large = num(f"size.{kind}.{SMALL}.{sk}.entries"), num(f"size.{kind}.{LARGE}.{sk}.entries")
    return math.log(large / small) / math.log(num(f"input.{kind}.{LARGE}.records") / num(f"input.{kind}.{SMALL}.records"))


def scaled_entries(kind, sk, records):
    """Entries of segment kind `sk` for `records` records of input `kind`."""
    measured = num(f"size.{kind}.{LARGE}.{sk}.entries")
    base = num(f"input.{kind}.{LARGE}.records")
    if sk in PASSWORD_KINDS:
        per_breach = measured * (MEAN_BREACH / base) ** alpha(kind, sk)
        return per_breach * records / MEAN_BREACH
    return measured * records / base


plan_bytes = {}
plan_entries = {}
plan_heap = {}
for kind, records in MIX.items():
    for sk in seg_kinds(f"size.{kind}.{LARGE}"):
        entries = scaled_entries(kind, sk, records)
        measured = num(f"size.{kind}.{LARGE}.{sk}.entries")
        per_entry = num(f"size.{kind}.{LARGE}.{sk}.bytes") / measured
        per_heap = num(f"size.{kind}.{LARGE}.{sk}.heap_bytes") / measured
        plan_bytes[sk] = plan_bytes.get(sk, 0) + entries * per_entry
        plan_entries[sk] = plan_entries.get(sk, 0) + entries
        plan_heap[sk] = plan_heap.get(sk, 0) + entries * per_heap
# Distinct passwords over the whole corpus (the lines of a /range that adds the
# own dumps' counts): the same power law over all credential records.
own_distinct = num(f"size.combo.{LARGE}.sha1.entries") * (CREDENTIAL_RECORDS / num(f"input.combo.{LARGE}.records")) ** alpha("combo", "sha1")
# The totals of each corpus: every distinct password of the own dumps and
# every Pwned Passwords hash, in the packed layout (bytes per hash as the
# import's; an NTLM key is 4 bytes shorter than a SHA-1).
HIBP_ENTRY_BYTES = plan_bytes["hibp-sha1"] / plan_entries["hibp-sha1"]
for corpus, shorter in (("sha1", 0), ("ntlm", 4)):
    sk = f"{corpus}-totals"
    plan_entries[sk] = own_distinct + plan_entries.get(f"hibp-{corpus}", 0)
    plan_bytes[sk] = plan_entries[sk] * (HIBP_ENTRY_BYTES - shorter)
    plan_heap[sk] = 0


def totals_folds():
    """Folds of the SHA-1 totals and the entries they write while the
    credential breaches are ingested one after the other, equal in size,
    after the Pwned Passwords import: crate::totals' rule, step by step."""
    n = int(CREDENTIAL_BREACHES)
    hibp = plan_entries.get("hibp-sha1", 0)
    per_breach = scaled_entries("combo", "sha1", MEAN_BREACH)
    totals, waiting, folds, written = 0.0, [], 0, 0.0
    for k in range(1, n + 1):
        waiting.append(per_breach)
        if totals == 0 and not hibp and len(waiting) < 2:
            continue
        if totals == 0 or len(waiting) > TOTALS_MAX_UNCOVERED or sum(waiting) * TOTALS_FOLD_RATIO >= totals:
            totals = hibp + own_distinct * (k / n) ** alpha("combo", "sha1")
            waiting, folds, written = [], folds + 1, written + totals
    return folds, written


TOTAL = sum(plan_bytes.values())
rows = []
for kind, records in MIX.items():
    size = sum(scaled_entries(kind, sk, records) * num(f"size.{kind}.{LARGE}.{sk}.bytes") / num(f"size.{kind}.{LARGE}.{sk}.entries")
               for sk in seg_kinds(f"size.{kind}.{LARGE}"))
    rows.append([kind, fmt_n(records), f"{size / records:.1f}", fmt_bytes(size)])
totals_bytes = plan_bytes["sha1-totals"] + plan_bytes["ntlm-totals"]
rows.append(["password totals (derived: every count summed, crate::totals)", "", f"{totals_bytes / RECORDS:.1f}",
             fmt_bytes(totals_bytes)])
rows.append(["**total**", fmt_n(RECORDS), f"{TOTAL / RECORDS:.1f}", f"**{fmt_bytes(TOTAL)}**"])
table(["50 billion records: input kind", "records", "B/record", "bytes in the bucket"], rows)
table(["distinct passwords", "figure", "from"], [
    ["growth exponent (combo, SHA-1)", f"{alpha('combo', 'sha1'):.3f}", f"distinct SHA-1 at {fmt_n(SMALL)} and {fmt_n(LARGE)} lines: entries ~ records^a"],
    ["per breach of the plan", fmt_n(scaled_entries("combo", "sha1", MEAN_BREACH)), f"mean breach {fmt_n(MEAN_BREACH)} credential records"],
    ["over the whole corpus", fmt_n(own_distinct), f"{fmt_n(CREDENTIAL_RECORDS)} credential records (HIBP: 2.07 G from its corpus)"],
])

# ---- 2. Objects -----------------------------------------------------------------
print("### 2. Objects in the bucket\n")
B = num("multi.breaches")
rows = []
for sk in seg_kinds("multi"):
    rows.append([sk, f"{num(f'multi.{sk}.segments'):.0f}", fmt_bytes(num(f"multi.{sk}.bytes") / num(f"multi.{sk}.segments"))])
table([f"measured: {fmt_n(num('multi.records'))} combo lines as {B:.0f} breaches, after compaction", "segments", "mean size"], rows)

# Manifest bytes: its JSON per segment and per breach, measured on the multi store.
per_seg = num("multi.manifest_segment_bytes")
per_breach = num("multi.manifest_breach_bytes")
rows = []
objects = 0
for sk in sorted(plan_bytes):
    entries, size, heap = plan_entries[sk], plan_bytes[sk], plan_heap[sk]
    if sk in PER_BREACH:
        n = CREDENTIAL_BREACHES
        why = "one per breach with passwords (never merged across breaches)"
    elif sk.endswith("-totals"):
        n = max(1, math.ceil(entries / SEGMENT_ENTRY_LIMIT))
        why = "the corpus's counts summed, own dumps and Pwned Passwords; entries / 4.3 G (2^32 a segment, disjoint key ranges: a range reads one)"
    elif sk.startswith("hibp-"):
        n = max(1, math.ceil(entries / SEGMENT_ENTRY_LIMIT))
        why = "one per import (below 2^32 hashes)"
    else:
        limit = SEGMENT_ENTRY_LIMIT
        if heap > 0:
            limit = min(limit, SEGMENT_HEAP_LIMIT * entries / heap)
        n = max(1, math.ceil(entries / limit))
        bound = "4 GiB heap" if heap > 0 and limit < SEGMENT_ENTRY_LIMIT else "2^32 entries"
        why = f"at least entries / {fmt_n(limit)} ({bound} per segment)"
    objects += n
    rows.append([sk, fmt_n(entries), fmt_bytes(size), f"{n:,}", fmt_bytes(size / n), why])
manifest_plan = per_seg * objects + per_breach * (BREACHES + 1)
objects += 8 + 1  # the last eight manifests and the lease
table(["segment kind at 50 G records", "entries", "bytes", "segments", "mean object", "why"], rows)
table(["what", "figure", "from"], [
    ["objects in the bucket", f"{objects:,}", "segments above + 8 manifests + LOCK"],
    ["manifest", fmt_bytes(manifest_plan),
     f"{per_seg:.0f} B a segment + {per_breach:.0f} B a breach, as measured (the {B:.0f}-breach store's: {fmt_bytes(num('multi.manifest_bytes'))})"],
    ["PUTs to upload it all", f"{TOTAL / PART_BYTES:,.0f}", "one per 16 MiB multipart part"],
])

# ---- 3. Cache and memory -----------------------------------------------------------
print("### 3. Cache sizes and memory per replica\n")
range_set = sum(v for k, v in plan_bytes.items() if k in RANGE_KINDS)
account_set = sum(v for k, v in plan_bytes.items() if k in ACCOUNT_KINDS)
payload = sum(plan_heap.values())
index_other = TOTAL - range_set - account_set - payload
cache = (range_set + account_set) * 1.1
rss_anon = num("serve.multi.rss_anon_kib") * 1024
table(["working set", "bytes", "what it is"], [
    ["/range (SHA-1)", fmt_bytes(range_set), "sha1-totals + hibp-sha1 segments, all of them (prefixes are asked uniformly)"],
    ["breachedaccount", fmt_bytes(account_set), "accounts segments: key and breach id, no payload"],
    ["payloads (domains, stealer)", fmt_bytes(payload), "sealed heaps: read by domain and stealer searches only"],
    ["other index", fmt_bytes(index_other), "NTLM counts, credential keys, domain and stealer keys: ingest and audit"],
    ["**--cache-size for warm /range and accounts**", f"**{fmt_bytes(cache)}**", "the two hot sets + 10%: local NVMe"],
])
range_bodies = plan_entries.get("hibp-sha1", 0) * SHA1_RANGE_LINE_BYTES
hot_entries = sum(v for k, v in plan_entries.items() if k in RANGE_KINDS | ACCOUNT_KINDS)
tables = hot_entries * 4 / 32  # a u32 slot per bucket of 32 to 64 entries (docs/format.md)
ram = rss_anon + range_bodies + tables
ram_gib = 2 ** math.ceil(math.log2(ram / 2**30))
table(["memory of one replica", "figure", "from"], [
    ["process (anonymous RSS, measured)", fmt_bytes(rss_anon),
     f"serve over the {B:.0f}-breach store after the /range runs"],
    ["--range-cache of every Pwned Passwords body", fmt_bytes(range_bodies),
     f"{fmt_n(plan_entries.get('hibp-sha1', 0))} hashes x {SHA1_RANGE_LINE_BYTES} B a line; held in page cache"],
    ["prefix tables of the hot segments", fmt_bytes(tables),
     f"{fmt_n(hot_entries)} entries / 32 a bucket x 4 B (docs/format.md)"],
    ["hot entries", "on NVMe", f"{fmt_bytes(range_set + account_set)}: a lookup past the page cache is one random NVMe read"],
    [f"**RAM per replica**", f"**{ram_gib} GiB**", "the sum, rounded up to a power of two"],
])

# ---- 4. Requests per second ----------------------------------------------------
print("### 4. Requests/s per core, replicas and cores\n")
def cpu(tag, shape):
    return num(f"http.range.{tag}.{shape}.leakwatch.cpu_us")


lines_own, lines_pwn = num("http.range.many.own.leakwatch.lines"), num("http.range.many.pwned.leakwatch.lines")
base = cpu("uncached", "own")
per_line = max(0.0, (cpu("uncached", "pwned") - base) / (lines_pwn - lines_own))
one_cpu, multi_cpu, apart_cpu = num("range.one.cpu_us"), num("range.multi.cpu_us"), num("range.apart.cpu_us")
# What each further segment a range sums costs: the multi-breach store read
# breach by breach (its totals taken out of its manifest) against one breach.
per_segment = max(0.0, (apart_cpu - one_cpu) / (num("multi.sha1.segments") - num(f"size.combo.{LARGE}.sha1.segments")))
acct = num("http.account.many.cpu_us")
rows = []
labels = {"one": "1 client", "many": "64 clients", "uncached": "64 clients, --range-cache 0"}
for label, key in (("/range, Pwned Passwords shape", "pwned"), ("/range, own dumps (mostly empty)", "own")):
    for tag in ("one", "many", "uncached"):
        p = f"http.range.{tag}.{key}"
        rows.append([f"{label}, {labels[tag]}", f"{num(p + '.leakwatch.lines'):.0f}",
                     f"{num(p + '.leakwatch.rps'):,.0f}", f"{num(p + '.leakwatch.p99_ms'):.2f}",
                     f"{num(p + '.leakwatch.cpu_us'):.1f}", f"{1e6 / num(p + '.leakwatch.cpu_us'):,.0f}",
                     f"{num(p + '.nginx.rps'):,.0f} / {num(p + '.nginx.cpu_us'):.1f}"])
for tag in ("one", "many"):
    p = f"http.account.{tag}"
    rows.append([f"breachedaccount, {'1 client' if tag == 'one' else '32 clients'}", "", f"{num(p + '.rps'):,.0f}",
                 f"{num(p + '.p99_ms'):.2f}", f"{num(p + '.cpu_us'):.1f}", f"{1e6 / num(p + '.cpu_us'):,.0f}", ""])
rows.append([f"/range over 1 breach ({fmt_n(LARGE)} combo lines), 16 clients, no cache", "", f"{num('range.one.rps'):,.0f}", "",
             f"{one_cpu:.1f}", f"{1e6 / one_cpu:,.0f}", ""])
rows.append([f"/range over the same as {B:.0f} breaches (read from their totals), 16 clients, no cache", "",
             f"{num('range.multi.rps'):,.0f}", "", f"{multi_cpu:.1f}", f"{1e6 / multi_cpu:,.0f}", ""])
rows.append([f"/range over the {B:.0f} breaches read breach by breach (no totals), 16 clients, no cache", "",
             f"{num('range.apart.rps'):,.0f}", "", f"{apart_cpu:.1f}", f"{1e6 / apart_cpu:,.0f}", ""])
table(["measured (loopback, wrk on the same 2 cores)", "lines/range", "requests/s", "p99 ms", "server CPU us/request",
       "requests/s per core", "nginx requests/s / CPU us"], rows)

range_rps, acct_rps = PEAK_RPS * RANGE_SHARE, PEAK_RPS * (1 - RANGE_SHARE)
hibp_lines = plan_entries.get("hibp-sha1", 0) / 2**20
own_lines = (own_distinct + plan_entries.get("hibp-sha1", 0)) / 2**20
# The totals, and at most TOTALS_MAX_UNCOVERED breaches waiting to be folded in.
range_segments = 1 + TOTALS_MAX_UNCOVERED
scenarios = {
    "Pwned Passwords only": (hibp_lines, 1),
    "with own dumps": (own_lines, range_segments),
}
plan_rows = [
    ["CPU of an uncached, empty range", f"{base:.1f} us", "measured: own dumps, --range-cache 0"],
    ["CPU per line of a range", f"{per_line:.4f} us", "(Pwned Passwords shape - own dumps) / 800 lines, both uncached"],
    ["CPU per extra SHA-1 segment in a range", f"{per_segment:.3f} us", f"({B:.0f}-breach store without totals - 1-breach store) / extra segments, uncached"],
    ["breachedaccount CPU", f"{acct:.0f} us", "measured, 32 clients"],
]
cached_base = cpu("many", "own")
cached_line = max(0.0, (cpu("many", "pwned") - cached_base) / (lines_pwn - lines_own))
plan_rows.append(["CPU of a range from the body cache", f"{cached_base:.1f} us + {cached_line:.4f} us a line",
                  "the same two shapes with the default --range-cache (bodies cached after their first request)"])
sized = {}
for name, (lines, segments) in scenarios.items():
    body = lines * SHA1_RANGE_LINE_BYTES
    uncached = base + per_line * lines + per_segment * (segments - 1)
    cached = cached_base + cached_line * lines
    plan_rows.append([f"**/range {name}**: lines, segments", f"{lines:,.0f} lines, {segments:,} segment(s)",
                      "(distinct SHA-1 of the corpus) / 2^20 prefixes"])
    for how, range_cpu in (("uncached", uncached), ("cached", cached)):
        cores = (range_rps * range_cpu + acct_rps * acct) / 1e6 / UTILIZATION
        replicas = math.ceil(cores / CORES_PER_REPLICA) + 1
        sized[(name, how)] = replicas
        plan_rows.append([f"  {how}: CPU per /range; cores; **replicas of {CORES_PER_REPLICA}**",
                          f"{range_cpu:,.1f} us; {cores:,.0f}; **{replicas}**",
                          "base + lines x per line (+ extra segments x per segment, uncached); "
                          f"{RANGE_SHARE:.0%} /range, the rest accounts, {UTILIZATION:.0%} busy; + 1 spare"])
    plan_rows.append(["  --range-cache holding every body", fmt_bytes(body * 2**20), "2^20 bodies: in RAM (page cache) or on NVMe"])
    plan_rows.append(["  refilling it after a new generation", f"{2**20 * uncached / 1e6:,.0f} core-seconds a replica",
                      "the cache is emptied by each ingest: 2^20 x uncached CPU"])
    plan_rows.append(["  range body; egress at peak", f"{fmt_bytes(body)}; {body * range_rps * 8 / 1e9:,.1f} Gbit/s",
                      f"{SHA1_RANGE_LINE_BYTES} B a line, uncompressed, x /range rate"])
    plan_rows.append(["  TLS for that egress", f"{body * range_rps / num('tls_aes_gcm_bytes_s') / UTILIZATION:,.0f} cores",
                      f"AES-256-GCM at {num('tls_aes_gcm_bytes_s') / 1e9:.1f} GB/s a core (measured), {UTILIZATION:.0%} busy: the proxy's, not the replicas'"])
table(["at 50 G records and 100,000 requests/s", "figure", "reasoning"], plan_rows)
# The deployment priced below: the public /range serves Pwned Passwords only,
# from a body cache holding every range; own dumps' counts for keyed callers.
replicas = sized[("Pwned Passwords only", "cached")]
body = hibp_lines * SHA1_RANGE_LINE_BYTES
account_segments = max(1, math.ceil(plan_entries.get("accounts", 0) / SEGMENT_ENTRY_LIMIT))
chunk = 64 * 1024
hot = range_set + account_set
daily_bytes = DAILY_RECORDS * TOTAL / RECORDS
gets_day = replicas * daily_bytes / chunk
warm_gets = hot / chunk
table(["cold path", "figure", "from"], [
    ["GETs of a cold /range, measured", f"{num('s3.cold_range_gets'):.0f} per segment, {num('s3.cold_range_ms'):.0f} ms",
     f"bench/s3.sh {num('s3.lines'):,.0f} (loopback Garage)"],
    ["GETs of a cold /range over own dumps, measured",
     f"{num('s3.cold_range_gets_breaches'):.0f} at most, over {num('s3.cold_range_breaches'):.0f} breaches",
     "bench/s3.sh: the same lines cut into breaches sharing passwords, read from their totals"],
    ["GETs to open a generation on an empty cache", f"{num('s3.open_gets'):.0f} for one segment", "header, checksums and tables of each segment"],
    ["GETs of a cold /range at 50 G", f"1 (Pwned Passwords only); 1 to {range_segments:,} (with own dumps)",
     f"one per segment read: the totals, and up to {TOTALS_MAX_UNCOVERED} breaches not folded in yet (without totals: {CREDENTIAL_BREACHES + 1:,.0f})"],
    ["GETs of a cold breachedaccount at 50 G", f"{account_segments}", "one per accounts segment"],
    ["GETs to warm a new replica", f"{warm_gets / 1e6:,.1f} M at most", f"hot sets / 64 KiB chunks; warm it before it takes traffic"],
    ["GETs a day once warm", f"{gets_day / 1e6:,.1f} M", f"{fmt_n(DAILY_RECORDS)} new records a day ({fmt_bytes(daily_bytes)}) x {replicas} replicas / 64 KiB"],
    *[[f"GETs/s at {MISS_RATIO:.0%} misses, /range {name}", f"{gets_s:,.0f}",
       f"({fmt_n(range_rps)} /range x {segs:,} + {fmt_n(acct_rps)} accounts x {account_segments}) x {MISS_RATIO:.0%}; "
       f"{gets_s * AVERAGE_OF_PEAK * 86400 * 30 / 1000 * PRICE['s3_get_per_1000']:,.0f} USD/month on S3"]
      for name, segs, gets_s in (
          ("Pwned Passwords only", 1, (range_rps + acct_rps * account_segments) * MISS_RATIO),
          ("with own dumps", range_segments, (range_rps * range_segments + acct_rps * account_segments) * MISS_RATIO))],
    ["warm lookups over object storage / local disk", f"{num('s3.warm_range_ratio'):.2f}x range, {num('s3.warm_sha1_ratio'):.2f}x SHA-1", "bench/s3.sh"],
])

# ---- 5. Ingest -----------------------------------------------------------------------
print("### 5. Ingest throughput and workers\n")
rows = []
rate = {}
for kind in KINDS:
    recs = num(f"input.{kind}.{LARGE}.records")
    cpu = num(f"ingest.{kind}.{LARGE}.cpu_s")
    wall = num(f"ingest.{kind}.{LARGE}.wall_s")
    mb = num(f"input.{kind}.{LARGE}.bytes") / 1e6
    rate[kind] = recs / cpu
    rows.append([kind, f"{recs / cpu:,.0f}", f"{mb / cpu:.1f}", f"{recs / wall:,.0f}", f"{num(f'ingest.{kind}.{SMALL}.cpu_s') / num(f'input.{kind}.{SMALL}.records') * 1e6:.2f} / {cpu / recs * 1e6:.2f}"])
table(["input kind (local disk)", "records/s per core (CPU)", "MB/s per core", "records/s wall (2 cores)",
       f"CPU us/record at {fmt_n(SMALL)} / {fmt_n(LARGE)}"], rows)
s3_slow = num("s3.ingest_garage_s") / num("s3.ingest_local_s")
print(f"Into object storage (bench/s3.sh, {num('s3.lines'):,.0f} lines, Garage on the same cores): "
      f"{num('s3.ingest_garage_s'):.2f} s against {num('s3.ingest_local_s'):.2f} s to local disk, {s3_slow:.2f}x.\n")

# The per-worker figure: a distributed ingest worker's records/s. Until
# bench/distributed.sh measures it, one single-process ingest into object
# storage stands in for it: its wall-clock rate over the mix, divided by the
# measured slowdown of object storage against local disk.
credential_kinds = [k for k in MIX if k != "pwned"]
mix_records = sum(MIX[k] for k in credential_kinds)
mix_cpu = sum(MIX[k] / rate[k] for k in credential_kinds)
mix_wall = sum(MIX[k] * num(f"ingest.{k}.{LARGE}.wall_s") / num(f"input.{k}.{LARGE}.records") for k in credential_kinds)
cores_per_process = mix_cpu / mix_wall
stand_in = mix_records / mix_wall / s3_slow
if "per_worker_records_s" in I:
    per_worker = num("per_worker_records_s")
    source = f"one `leakwatch worker` into Garage, from {I['per_worker_source'].replace('_', ' ')}"
else:
    per_worker = stand_in
    source = "the ingest process above stands in: no distributed figure in the inputs"
# With the phases measured apart, the jobs' time falls with workers and the
# commit's does not (one process publishes each ingest, holding the writer
# lock); without them, the end-to-end rate is taken as linear in workers.
phases = "commit_records_s" in I
if "job_write_records_s" in I:
    # Jobs are key ranges: each reads every input (at job_read, whatever the
    # number of workers), writes its range's share (job_write per worker),
    # and the commit only names the segments.
    read_rate, write_rate = num("job_read_records_s"), num("job_write_records_s")
    commit_rate = num("commit_records_s")
    def load_days(w):
        return (mix_records / read_rate + mix_records / (write_rate * w) + mix_records / commit_rate) / 86400
    days_note = (f"every job reads every input at {read_rate:,.0f} records/s, writes its key range's share "
                 f"at {write_rate:,.0f} records/s per worker, then the commit names the segments "
                 f"({commit_rate:,.0f}/s): the reading bounds the load however many workers")
elif phases:
    jobs_rate, commit_rate = num("per_worker_jobs_records_s"), num("commit_records_s")
    def load_days(w):
        return (mix_records / (jobs_rate * w) + mix_records / commit_rate) / 86400
    days_note = (f"jobs at {jobs_rate:,.0f} records/s per worker, then the commit at {commit_rate:,.0f}/s "
                 "in one process: the commit bounds the load however many workers")
else:
    def load_days(w):
        return mix_records / (per_worker * w) / 86400
    days_note = "linear in workers on machines of their own: not measured past 2 workers on 2 cores"
workers = next((w for w in range(1, 257) if load_days(w) <= INGEST_DAYS), 256)
pwned_s = MIX["pwned"] / rate["pwned"] / s3_slow
# Compaction: what merging cost in the multi-breach store (its extra CPU over
# one ingest of the same records, per byte merged: an upper bound, since it also
# holds each ingest's start-up), and what the load rewrites.
cross = [k for k in plan_bytes if k not in PER_BREACH and not k.startswith("hibp-") and not k.endswith("-totals")]
# Summing the totals, entries a second per core: the same combo ingested again
# as a second breach, whose extra CPU over the first ingest is the totals'.
# Under 50 ms it is within the noise: the plan then says so and counts the
# totals' bytes at the merge rate of compaction instead.
TOTALS_EXTRA = num("totals.extra_cpu_s")
TOTALS_MEASURED = TOTALS_EXTRA >= 0.05
totals_rate = num("totals.again_entries") / max(TOTALS_EXTRA, 0.05)
merged = sum(num(f"multi.{k}.bytes") for k in seg_kinds("multi") if k in cross) * 9 / B
# The multi-breach store's extra CPU, less what its folds of the totals took.
merge_cpu = num("multi.ingest_cpu_s") - num(f"ingest.combo.{LARGE}.cpu_s")
if TOTALS_MEASURED:
    merge_cpu -= num("multi.totals_entries_written") / totals_rate
merge_rate = merged / max(1e-9, merge_cpu)
if not TOTALS_MEASURED:
    totals_rate = merge_rate / HIBP_ENTRY_BYTES
cross_bytes = sum(plan_bytes[k] for k in cross)
rewrite_today = BREACHES / 8 * cross_bytes / 2
# Bytes rewritten per byte ingested by size-tiered compaction over 2,000
# ingests (`cargo test -p leakwatch-store --lib compact::tests -- --nocapture`,
# breaches spread log-uniformly from 100 kB to 50 GB).
TIERED_REWRITES_PER_BYTE = 1.23
rewrite_tiered = cross_bytes * TIERED_REWRITES_PER_BYTE
folds, folds_written = totals_folds()
table(["ingest of the 48 G account records", "figure", "from"], [
    ["cores one ingest process keeps busy", f"{cores_per_process:.2f}", "CPU / wall over the mix (local disk)"],
    ["one ingest process into object storage", f"{stand_in:,.0f} records/s",
     f"its wall-clock rate over the mix on local disk / {s3_slow:.2f} (the Garage slowdown)"],
    ["**records/s per worker (plug-in)**", f"**{per_worker:,.0f}**", source],
    [f"workers for {INGEST_DAYS} days, records alone", f"{workers}", "the fewest with the days below within the target"],
    ["days for the 48 G with 1 / 2 / 4 / 8 / 16 workers",
     " / ".join(f"{load_days(w):,.1f}" for w in (1, 2, 4, 8, 16)), days_note],
    ["merge rate of compaction", f"{merge_rate / 1e6:,.0f} MB/s per core",
     f"{fmt_bytes(merged)} merged in the {B:.0f}-breach store / its extra CPU over one ingest, less its totals'"],
    ["rate of summing the totals", f"{totals_rate:,.0f} entries/s per core",
     f"a second breach of {fmt_n(LARGE)} lines: {num('totals.again_entries'):,.0f} entries of totals for "
     f"{TOTALS_EXTRA:.2f} s of CPU over the first ingest (median of interleaved pairs)"
     if TOTALS_MEASURED else
     f"under 50 ms over the first ingest for {num('totals.again_entries'):,.0f} entries, within the noise: "
     "counted at the merge rate of compaction"],
    ["compaction rewrites, size-tiered (factor 4, as built)", fmt_bytes(rewrite_tiered),
     f"{TIERED_REWRITES_PER_BYTE} bytes rewritten per byte ingested over {BREACHES} ingests (compact::tests)"],
    ["  CPU for them", f"{rewrite_tiered / merge_rate / 3600 / 24:,.1f} core-days", "rewrites / merge rate"],
    ["compaction rewrites, whole-kind merges (before size tiers)", fmt_bytes(rewrite_today),
     f"all of a kind merged every 8 ingests: {BREACHES} / 8 x half of {fmt_bytes(cross_bytes)}"],
    ["  CPU for them", f"{rewrite_today / merge_rate / 3600 / 24:,.0f} core-days", ""],
    ["Pwned Passwords import (2 G hashes)", f"{pwned_s / 60:.0f} min", "import rate per core / object storage slowdown"],
    ["totals folded in during the load; bytes they write",
     f"{folds:,}; {fmt_bytes(folds_written * HIBP_ENTRY_BYTES)}",
     f"crate::totals' rule over {CREDENTIAL_BREACHES:,.0f} equal breaches after the import (SHA-1; NTLM about as much again)"],
    ["  CPU for them", f"{2 * folds_written / totals_rate / 3600 / 24:,.1f} core-days", "both corpora / rate of summing the totals"],
])

# ---- 6. Cost ----------------------------------------------------------------------------
print("### 6. Cost per month\n")
requests_month = PEAK_RPS * AVERAGE_OF_PEAK * 86400 * 30
gets_month = gets_day * 30 + replicas * warm_gets
egress_month = requests_month * RANGE_SHARE * body / 1e9
p = PRICE
storage = TOTAL / 1e9 * p["s3_gb_month"]
gets = gets_month / 1000 * p["s3_get_per_1000"]
puts = TOTAL / PART_BYTES / 1000 * p["s3_put_per_1000"]
replicas_cost = replicas * p["replica_hour"] * HOURS_MONTH
worker_machines = max(1, math.ceil(workers * cores_per_process / CORES_PER_REPLICA))
ingest_cost = worker_machines * p["worker_hour"] * INGEST_DAYS * 24
egress = egress_month * p["egress_gb"]
cloud = storage + gets + puts + replicas_cost + p["postgres_month"] + egress
table(["public cloud", "USD/month", "reasoning"], [
    ["object storage", f"{storage:,.0f}", f"{fmt_bytes(TOTAL)} x {p['s3_gb_month']}/GB-month"],
    ["GETs", f"{gets:,.0f}", f"{gets_month / 1e6:,.0f} M: a month of new data, and warming every replica once, x {p['s3_get_per_1000']}/1000"],
    ["PUTs (a full load, once)", f"{puts:,.2f}", f"16 MiB parts x {p['s3_put_per_1000']}/1000"],
    [f"{replicas} replicas", f"{replicas_cost:,.0f}", f"i4i.4xlarge at {p['replica_hour']}/h"],
    ["PostgreSQL", f"{p['postgres_month']:,.0f}", "db.m7g.xlarge Multi-AZ with storage"],
    [f"egress of /range bodies", f"{egress:,.0f}", f"{egress_month / 1e6:,.1f} PB at {p['egress_gb']}/GB: use a CDN or serve inside the network"],
    ["**total, without egress**", f"**{cloud - egress:,.0f}**", ""],
    [f"ingest of 50 G, once ({workers} worker(s) on {worker_machines} machine(s) x {INGEST_DAYS} days)", f"{ingest_cost:,.0f}",
     f"c7i.4xlarge at {p['worker_hour']}/h; a worker taken to keep {cores_per_process:.2f} cores busy, as an ingest process"],
])

servers = max(2, math.ceil(replicas * CORES_PER_REPLICA / 32))
storage_nodes = max(3, math.ceil(TOTAL * 3 / (4 * 8e12 * 0.7)))
watts = servers * p["server_watts"] + storage_nodes * p["storage_watts"]
power = watts / 1000 * HOURS_MONTH * p["pue"] * p["kwh"]
hardware = (servers * p["server"] + storage_nodes * p["storage_server"]) / (YEARS * 12)
racks = max(1, math.ceil((servers * 2 + storage_nodes * 2) / 40))
own = hardware + power + racks * p["rack_month"]
table(["own hardware", "USD/month", "reasoning"], [
    [f"{servers} servers for the replicas", f"{servers * p['server'] / (YEARS * 12):,.0f}",
     f"{replicas * CORES_PER_REPLICA} cores / 32 a server, at least 2; {p['server']:,.0f} each over {YEARS} years"],
    [f"{storage_nodes} Garage nodes", f"{storage_nodes * p['storage_server'] / (YEARS * 12):,.0f}",
     f"{fmt_bytes(TOTAL)} x 3 replicas on 4 x 8 TB at 70% full, at least 3"],
    ["power", f"{power:,.0f}", f"{watts:,} W x PUE {p['pue']} x {p['kwh']}/kWh"],
    [f"{racks} rack(s), colocated", f"{racks * p['rack_month']:,.0f}", "space, power feed, transit"],
    ["PostgreSQL", "0", "on two of the servers above (primary and standby)"],
    ["**total**", f"**{own:,.0f}**", ""],
])
