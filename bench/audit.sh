#!/usr/bin/env bash
# An organization's audit against the corpus, beside `LC_ALL=C join` of the two
# sorted hash lists (the directory's NT hashes, the corpus's), side by side.
#
# The corpus is a Pwned Passwords-shaped NTLM download (sorted random hashes,
# heavy-tailed counts) imported with `import pwned-passwords --ntlm`; the
# directory is a CSV of NT hashes, half of them in the corpus. leakwatch's time
# is `org import` (each hash checked against the corpus: counts apart, and the
# per-account triples where the own dumps hold the hash) plus `audit --org
# --json` (every account's findings, sorted, printed). join's inputs are given
# sorted and cached: only the join is timed.
#
# Usage: bench/audit.sh [CORPUS] [ACCOUNTS]   (defaults: 10,000,000 hashes, 100,000 accounts)
# Targets: import + audit < 1 s; (import + audit) / join < 1.0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CORPUS="${1:-10000000}"
ACCOUNTS="${2:-100000}"
build

echo "generating a $CORPUS-hash NTLM corpus and $ACCOUNTS directory hashes..." >&2
"$GEN" pwned --ntlm --lines "$CORPUS" --seed 1 --out "$WORK/pwned.txt"
"$GEN" pwned --ntlm --lines "$CORPUS" --seed 1 --lookups "$ACCOUNTS" >"$WORK/hashes.txt"
"$LW" --data "$WORK/data" import pwned-passwords --ntlm "$WORK/pwned.txt" >/dev/null
"$LW" --data "$WORK/data" org add bench --domain bench.example >/dev/null
awk 'BEGIN { print "email,nt_hash" } { printf "user%d@bench.example,%s\n", NR, $1 }' \
    "$WORK/hashes.txt" >"$WORK/directory.csv"

# join's side: the corpus's hashes and the directory's, each sorted, cached.
cut -d: -f1 "$WORK/pwned.txt" | tr -d '\r' >"$WORK/corpus-hashes.txt"
LC_ALL=C sort "$WORK/hashes.txt" >"$WORK/directory-hashes.txt"
rm "$WORK/pwned.txt"
cat "$WORK/corpus-hashes.txt" "$WORK/directory-hashes.txt" >/dev/null

# Wall and CPU seconds of each side (the machine may be shared: CPU time says
# what a run cost when its wall time was stretched by other work).
join_wall=(); join_cpu=(); import_wall=(); import_cpu=(); audit_wall=(); audit_cpu=()
for run in 1 2 3; do
    read -r w c < <(cpu_seconds env LC_ALL=C join "$WORK/corpus-hashes.txt" "$WORK/directory-hashes.txt")
    join_wall+=("$w"); join_cpu+=("$c")
    read -r w c < <(cpu_seconds "$LW" --data "$WORK/data" org import bench "$WORK/directory.csv")
    import_wall+=("$w"); import_cpu+=("$c")
    # audit exits 1 when nobody is exposed; here half the accounts are.
    read -r w c < <(cpu_seconds sh -c "\"\$0\" --data \"\$1\" audit --org bench --json >\"\$2\"" \
        "$LW" "$WORK/data" "$WORK/audit.jsonl")
    audit_wall+=("$w"); audit_cpu+=("$c")
    echo "run $run: join ${join_wall[-1]} s (cpu ${join_cpu[-1]}), org import ${import_wall[-1]} s" \
        "(cpu ${import_cpu[-1]}), audit ${audit_wall[-1]} s (cpu ${audit_cpu[-1]})" >&2
done
JOIN=$(median "${join_wall[@]}"); JOIN_CPU=$(median "${join_cpu[@]}")
IMPORT=$(median "${import_wall[@]}"); IMPORT_CPU=$(median "${import_cpu[@]}")
AUDIT=$(median "${audit_wall[@]}"); AUDIT_CPU=$(median "${audit_cpu[@]}")
TOTAL=$(awk -v a="$IMPORT" -v b="$AUDIT" 'BEGIN { printf "%.3f\n", a + b }')
TOTAL_CPU=$(awk -v a="$IMPORT_CPU" -v b="$AUDIT_CPU" 'BEGIN { printf "%.3f\n", a + b }')
RATIO=$(ratio "$TOTAL" "$JOIN")
RATIO_CPU=$(ratio "$TOTAL_CPU" "$JOIN_CPU")

# Both sides must find the same hashes: join's matches, the audit's accounts
# whose current password has a count.
JOINED=$(LC_ALL=C join "$WORK/corpus-hashes.txt" "$WORK/directory-hashes.txt" | wc -l)
ROWS=$(wc -l <"$WORK/audit.jsonl")
SEEN=$(grep -vc '"password_count":0,' "$WORK/audit.jsonl" || true)
if [ "$ROWS" -ne "$ACCOUNTS" ] || [ "$SEEN" -ne "$JOINED" ]; then
    echo "wrong answers: $ROWS accounts audited of $ACCOUNTS, $SEEN seen in the corpus, join found $JOINED" >&2
    exit 1
fi

echo
echo "audit benchmark: $ACCOUNTS NT hashes against a $CORPUS-hash corpus ($JOINED in it), median of 3 runs"
printf '%-44s %12s %12s %12s %8s\n' "what" "wall s" "cpu s" "target" "verdict"
printf '%-44s %12s %12s %12s %8s\n' "LC_ALL=C join of the sorted lists" "$JOIN" "$JOIN_CPU" "baseline" ""
printf '%-44s %12s %12s %12s %8s\n' "leakwatch org import" "$IMPORT" "$IMPORT_CPU" "" ""
printf '%-44s %12s %12s %12s %8s\n' "leakwatch audit --org --json" "$AUDIT" "$AUDIT_CPU" "" ""
printf '%-44s %12s %12s %12s %8s\n' "import + audit" "$TOTAL" "$TOTAL_CPU" "< 1 s wall" "$(verdict "$TOTAL" "<" 1.0)"
printf '%-44s %12s %12s %12s %8s\n' "ratio (import + audit) / join" "$RATIO" "$RATIO_CPU" "< 1.0 wall" "$(verdict "$RATIO" "<" 1.0)"
