#!/usr/bin/env bash
# Remakes docs/screenshots/*.png: builds leakwatch, generates and ingests the
# demo's synthetic breaches (`leakwatch demo`, fixed seed; its ingests are in
# the ingest log with their rejections by reason), serves them on loopback and
# has headless Chromium (playwright-core) take the pictures (screenshots.mjs). Needs chromium, node and npm, as the
# browser tests do.
#
# Usage: crates/leakwatch-server/tests/browser/screenshots.sh [OUT_DIR]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../../.." && pwd)"
OUT="$(realpath -m "${1:-$ROOT/docs/screenshots}")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
LW="$TARGET/debug/leakwatch"
PLAYWRIGHT="playwright-core@1.57.0"

(cd "$ROOT" && cargo build --quiet -p leakwatch-cli)
WORK="$(mktemp -d)"
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then
        kill -TERM "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
export LEAKWATCH_KEY_FILE="$WORK/ring.key"

"$LW" demo --seed 7 --dir "$WORK/demo" >/dev/null
DATA="$WORK/demo/data"
# The breach page shown: the one with the most accounts.
BREACH="$("$LW" --data "$DATA" breaches --json | python3 -c 'import json, sys; print(max(json.load(sys.stdin), key=lambda b: b["PwnCount"])["Name"])')"
# Of the addresses most often found in the dumps, the one the index finds in
# the most breaches.
grep -rahoE '^[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]{2,}' "$WORK/demo/dumps" | sort | uniq -c | sort -k1,1nr -k2 |
    head -n 200 | awk '{ print $2 }' >"$WORK/candidates"
ADDRESS="$("$LW" --data "$DATA" search email --json - <"$WORK/candidates" |
    python3 -c 'import json, sys; rows = [json.loads(l) for l in sys.stdin]; print(max(rows, key=lambda r: (len(r["breaches"]), r["account"]))["account"])')"
KEY="$("$LW" --data "$DATA" apikey create --name analyst --role analyst --rate-limit 0 | tail -n 1)"

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$LW" --data "$DATA" serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/ui/signin" && break
    sleep 0.1
done

NPM_DIR="$TARGET/npm-playwright"
if ! grep -qs "\"version\": \"${PLAYWRIGHT##*@}\"" "$NPM_DIR/node_modules/playwright-core/package.json"; then
    mkdir -p "$NPM_DIR"
    echo '{"private": true}' >"$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error "$PLAYWRIGHT")
fi
cp "$HERE/screenshots.mjs" "$NPM_DIR/"
mkdir -p "$OUT"
(cd "$NPM_DIR" && node screenshots.mjs "http://127.0.0.1:$PORT" "$KEY" "$OUT" "$ADDRESS" "$BREACH")
ls -l "$OUT"/*.png
