#!/usr/bin/env bash
# Installs what the test suite and the load harness need on a fresh Debian machine, and
# nothing that is already there:
#   - OS packages: redis-server, prometheus (promtool), fonts-dejavu-core (the benchmark
#     charts), chromium (the report page is checked in a headless browser), the C build deps
#     of librdkafka, and a JDK and Maven if missing;
#   - Apache Kafka's broker (the version pinned in scripts/kafka/pom.xml), fetched by Maven
#     from Maven Central into $SWITCHBOARD_TOOLS_DIR/kafka-<version>/libs
#     (default ~/.cache/switchboard-tools), once: about 45 MB, 10 to 30 s.
# Nothing is downloaded from anywhere else. A second run installs nothing and takes a second.
# The tests start their own redis-server and Kafka broker on free ports (crates/test-support).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR="${SWITCHBOARD_TOOLS_DIR:-$HOME/.cache/switchboard-tools}"
POM=scripts/kafka/pom.xml
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
KAFKA_LIBS="$TOOLS_DIR/kafka-$KAFKA_VERSION/libs"

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
command -v make >/dev/null || need_apt+=(make)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
command -v chromium >/dev/null || need_apt+=(chromium)

if ((${#need_apt[@]})); then
  echo "setup: installing OS packages: ${need_apt[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The package starts a system redis on 6379; the tests start their own on free ports.
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

if ! compgen -G "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
  echo "setup: fetching Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS (once)"
  rm -rf "$KAFKA_LIBS.partial"
  mkdir -p "$TOOLS_DIR"
  if ! mvn --batch-mode --quiet -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.partial" >"$TOOLS_DIR/maven.log" 2>&1; then
    cat "$TOOLS_DIR/maven.log" >&2
    echo "setup: Maven could not fetch Apache Kafka $KAFKA_VERSION from Maven Central (log above)" >&2
    exit 1
  fi
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.partial" "$KAFKA_LIBS"
fi

echo "setup: redis-server $(redis-server --version | awk '{print $3}')," \
  "Apache Kafka $KAFKA_VERSION in $KAFKA_LIBS ($(java -version 2>&1 | head -1))," \
  "promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}')"
