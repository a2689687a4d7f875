#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing, then runs every test
# against a real redis-server and a real Apache Kafka broker started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
# A fresh machine gains nothing from incremental compilation, which would add a gigabyte to
# the build; the free space is printed so that a full disk is told apart from a failing test.
export CARGO_INCREMENTAL=0
df -h . | sed 's/^/test.sh: disk: /'
scripts/setup.sh
export SWITCHBOARD_TOOLS_DIR="${SWITCHBOARD_TOOLS_DIR:-$HOME/.cache/switchboard-tools}"

cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast
# The fuzz targets, each over a fixed number of inputs from a fixed seed (repeatable).
scripts/fuzz.sh
echo "test.sh: done in $(( $(date +%s) - start )) s"
