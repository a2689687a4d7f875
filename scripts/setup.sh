#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, and nothing that is already there:
#   - OS packages: redis-server, prometheus (promtool), fonts-dejavu-core (the benchmark charts), and the C build deps of librdkafka;
#   - tansu 0.6.0 (the Kafka-protocol broker for tests) into a cached tools folder,
#     $SWITCHBOARD_TOOLS_DIR (default ~/.cache/switchboard-tools), reused when present.
set -euo pipefail

TOOLS_DIR="${SWITCHBOARD_TOOLS_DIR:-$HOME/.cache/switchboard-tools}"
TANSU_VERSION=0.6.0

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
command -v make >/dev/null || need_apt+=(make)
command -v openssl >/dev/null || need_apt+=(openssl)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)

if ((${#need_apt[@]})); then
  echo "setup: installing OS packages: ${need_apt[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The package starts a system redis on 6379; the tests start their own on free ports.
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

tansu="$TOOLS_DIR/bin/tansu"
if [[ -x "$tansu" ]] && "$tansu" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  :
else
  echo "setup: building tansu $TANSU_VERSION into $TOOLS_DIR (about 10 minutes on 2 cores, once)"
  mkdir -p "$TOOLS_DIR"
  CARGO_TARGET_DIR="$TOOLS_DIR/build" cargo install tansu --locked --version "$TANSU_VERSION" \
    --features dynostore --root "$TOOLS_DIR" --quiet
  rm -rf "$TOOLS_DIR/build"
fi

echo "setup: redis-server $(redis-server --version | awk '{print $3}'), tansu at $tansu, promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}')"
