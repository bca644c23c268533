#!/usr/bin/env bash
# `sam build` as a deploy runs it, on a machine with no Docker: installs what a fresh machine
# lacks (the aarch64 Rust target by rustup; cargo-lambda, zig and aws-sam-cli from PyPI),
# cross-builds every function for arm64 in one cargo invocation (both cores, one link of
# the shared dependencies; `sam build` then finds each function's build fresh), runs
# `sam build`, and checks that every AWS::Serverless::Function of template.yaml has its
# `bootstrap` under .aws-sam/build/ and that it is an aarch64 ELF executable.
# .ci/run runs it; so can you (then `sam deploy --guided`).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu
missing=()
command -v cargo-lambda >/dev/null || missing+=(cargo-lambda)
python3 -c 'import ziglang' 2>/dev/null || missing+=(ziglang)
command -v sam >/dev/null || missing+=(aws-sam-cli)
if [ ${#missing[@]} -gt 0 ]; then
  python3 -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi

t0=$(date +%s)
cargo lambda build --release --arm64 --locked
t1=$(date +%s)
sam build
t2=$(date +%s)
echo "cargo lambda build (every function): $((t1 - t0)) s; sam build after it: $((t2 - t1)) s"

# The template's functions: each resource whose next line is its Serverless::Function type.
functions=$(awk '/^  [A-Za-z0-9]+:$/ { id = substr($1, 1, length($1) - 1); next }
                 /^    Type: AWS::Serverless::Function$/ { print id }' template.yaml)
[ -n "$functions" ] || { echo "no functions found in template.yaml" >&2; exit 1; }
failed=0
count=0
for id in $functions; do
  count=$((count + 1))
  bootstrap=".aws-sam/build/$id/bootstrap"
  if [ ! -f "$bootstrap" ]; then
    echo "$id: no $bootstrap" >&2
    failed=1
    continue
  fi
  # ELF magic, 64-bit (EI_CLASS 2), little-endian (EI_DATA 1), e_machine 183 (EM_AARCH64).
  header=$(od -An -tx1 -N20 "$bootstrap" | tr -d ' \n')
  if [ "${header:0:12}" != "7f454c460201" ] || [ "${header:36:4}" != "b700" ]; then
    echo "$id: $bootstrap is not an aarch64 ELF (header $header)" >&2
    failed=1
    continue
  fi
  printf '%-34s %s  %7d KB\n' "$id" "$bootstrap" "$(( $(stat -c %s "$bootstrap") / 1024 ))"
done
[ "$failed" = 0 ] || exit 1
echo "every one of the template's $count functions has an aarch64 bootstrap"
