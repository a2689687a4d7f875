# Switchboard: one image, one binary (`switchboard stitcher`, `switchboard engine`, tools).
# Build: docker build -t switchboard .
FROM rust:1.95-slim-bookworm AS build
# librdkafka is built from source by rdkafka-sys (with TLS and zlib).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev cmake python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin switchboard \
 && cp target/release/switchboard /usr/local/bin/switchboard

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /etc/switchboard switchboard
COPY --from=build /usr/local/bin/switchboard /usr/local/bin/switchboard
COPY journeys /etc/switchboard/journeys
COPY deploy/policies.yaml /etc/switchboard/policies.yaml
WORKDIR /etc/switchboard
USER switchboard
# Admin server: /metrics, /healthz, /readyz.
EXPOSE 9464
ENTRYPOINT ["switchboard"]
CMD ["--help"]
