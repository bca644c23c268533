#!/usr/bin/env bash
# A real browser calls the API across origins (docs/browser.md): headless Chromium loads a
# page served from one origin, which creates a profile on the local runner (another origin)
# with a JWT, reads its ETag and Location, PATCHes it with If-Match, meets a 412 and the
# gateway's 401, all through fetch; then the same page from an origin not in the list, whose
# request the browser must refuse. Installs Debian's chromium when it is missing. Exit 0 when
# both pages report what they expect.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
    echo "browser-check: installing Debian's chromium"
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q chromium >/dev/null 2>&1 \
        || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
page_port=$(free_port)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The page's origin is allowed; http://localhost:<page port> is another origin, and is not.
allowed_origin="http://127.0.0.1:$page_port"
secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
issuer=https://issuer.browser-check.test
audience=profiles-api
cargo run -q -p local-api --locked -- --memory --port "$api_port" --s3-port 0 --apigateway-port 0 \
    --parameter-overrides "CorsAllowedOrigins=$allowed_origin" "JwtHs256Secret=$secret" \
    "JwtIssuer=$issuer" "JwtAudience=$audience" >"$work/runner.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$api_port/prod"
for _ in $(seq 600); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$api/profiles" || true)
    [ "$code" = 401 ] && break
    sleep 1
done
[ "$code" = 401 ] || { echo "browser-check: the runner did not start"; cat "$work/runner.log"; exit 1; }

token=$(python3 - "$secret" "$issuer" "$audience" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret, issuer, audience = sys.argv[1:4]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
claims = {"iss": issuer, "aud": audience, "sub": "browser-user", "tenant_id": "browser-tenant",
          "iat": now, "exp": now + 600, "scope": "profiles.create profiles.read profiles.update"}
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
sig = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
print(head + "." + b64(sig))
PY
)

python3 scripts/browser-check/serve.py "$page_port" "$work/report.json" &
pids+=($!)

# One page load in headless Chromium (flags: a closed network and a root user), waiting for
# the page's report.
visit() { # page-origin expect
    rm -f "$work/report.json"
    local query="api=$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$api")&token=$token&expect=$2"
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/profile-$2" "$1/?$query" >"$work/chromium-$2.log" 2>&1 &
    local browser=$!
    for _ in $(seq 120); do
        [ -s "$work/report.json" ] && break
        sleep 0.5
    done
    kill "$browser" 2>/dev/null || true
    wait "$browser" 2>/dev/null || true
    if [ ! -s "$work/report.json" ]; then
        echo "browser-check: no report from $1 (expect $2)"; tail -20 "$work/chromium-$2.log"; return 1
    fi
    python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"browser-check: page on {r['origin']}, expect {r['expect']}: {'ok' if r['ok'] else 'FAILED'}")
for s in r["steps"]:
    body = s.get("body") or {}
    shown = {k: v for k, v in s.items() if k != "body"}
    shown.update({k: body[k] for k in ("code", "version") if k in body})
    print("   ", json.dumps(shown))
if r.get("error"):
    print("    error:", r["error"])
sys.exit(0 if r["ok"] else 1)
PY
}

visit "$allowed_origin" allowed
visit "http://localhost:$page_port" refused
echo "browser-check: passed; the runner saw:"
grep -oE '(OPTIONS|POST|PATCH|GET) /prod.*' "$work/runner.log" | sed 's/^/    /' || true
