#!/usr/bin/env bash
# Fuzzes the API with schemathesis (PyPI) from docs/openapi.yaml: starts the local runner on
# a free port with the throttle lifted (--parameter-overrides), runs every check and phase
# with tests/schemathesis/ (settings and hooks, each with its reason), and stops the runner.
# Extra arguments go to `st run` (e.g. --max-examples 50). .ci/run runs it; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v st >/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
cargo run --quiet --locked -p local-api -- --memory --port "$port" --s3-port 0 \
  --parameter-overrides ThrottleBurstLimit=100000 ThrottleRateLimit=100000 >"$log" 2>&1 &
runner=$!
trap 'kill $runner 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
  grep -q "KEY=prof_" "$log" && break
  kill -0 $runner 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.5
done
key=$(grep -o 'KEY=prof_[A-Za-z0-9_-]*' "$log" | head -n 1 | cut -d= -f2)
[ -n "$key" ] || { echo "the runner printed no key" >&2; cat "$log" >&2; exit 1; }
cd tests/schemathesis
SCHEMATHESIS_HOOKS=hooks st --config-file schemathesis.toml run ../../docs/openapi.yaml \
  --url "http://127.0.0.1:$port/prod" -H "Authorization: Bearer $key" \
  --checks all --workers 2 "$@"
