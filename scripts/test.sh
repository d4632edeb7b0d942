#!/usr/bin/env bash
# The project's one test command: the Rust unit and integration tests, then the
# end-to-end suite (pytest) against the real binary with real clients.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the end-to-end tests need, installed only when missing.
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
if [ ! -f tests/e2e/node_modules/.package-lock.json ] ||
   [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/e2e --silent --no-audit --no-fund
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
cargo build -p inferscope-server

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export INFERSCOPE_BIN="$target_dir/debug/inferscope"
python3 -m pytest -q -p no:cacheprovider tests/e2e "$@"
