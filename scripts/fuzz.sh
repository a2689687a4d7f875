#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/): framed Avro (Confluent and single-object), JSON channel
# events and journey YAML. libFuzzer needs compiler flags that stable Rust accepts only with
# RUSTC_BOOTSTRAP=1 (no nightly toolchain is needed).
#
#   scripts/fuzz.sh                 a fixed, repeatable run per target (seed 1, FUZZ_RUNS inputs):
#                                   what the test suite runs
#   FUZZ_SECONDS=600 scripts/fuzz.sh [target...]
#                                   explore for that long per target; new crashes are written
#                                   to fuzz/artifacts/<target>/
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR="${SWITCHBOARD_TOOLS_DIR:-$HOME/.cache/switchboard-tools}"
export PATH="$TOOLS_DIR/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz into $TOOLS_DIR (once)"
  cargo install cargo-fuzz --locked --version 0.13.2 --root "$TOOLS_DIR" --quiet
fi
export RUSTC_BOOTSTRAP=1

targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(cargo fuzz list)
if [[ -n "${FUZZ_SECONDS:-}" ]]; then
  limit=(-max_total_time="$FUZZ_SECONDS")
else
  limit=(-seed=1 -runs="${FUZZ_RUNS:-100000}")
fi
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus"
  echo "fuzz: $t ${limit[*]}"
  # The committed seeds stay as they are; what the run finds goes to a scratch corpus.
  scratch="$(mktemp -d)"
  log="$scratch.log"
  status=0
  cargo fuzz run "$t" "$scratch" "$corpus" -- "${limit[@]}" -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
  grep -E "^#[0-9]+ +DONE|^Done" "$log" || true
  rm -rf "$scratch"
  if ((status != 0)); then
    grep -E "ERROR|panicked|SUMMARY|artifact|^error" "$log" >&2 || tail -20 "$log" >&2
    echo "fuzz: $t failed (exit $status); inputs that fail are in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  rm -f "$log"
done
echo "fuzz: ${#targets[@]} targets clean"
