# Multi-stage build: one builder, then one small image per binary.
#   docker build --target gateway -t chatops-gateway .
#   docker build --target worker  -t chatops-worker .
#   docker build --target cli     -t chatops-cli .

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin gateway --bin worker --bin chatops \
 && mkdir -p /out \
 && cp target/release/gateway target/release/worker target/release/chatops /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home chatops
USER 10001

FROM runtime AS gateway
COPY --from=build /out/gateway /usr/local/bin/gateway
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gateway"]

FROM runtime AS worker
COPY --from=build /out/worker /usr/local/bin/worker
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/worker"]

FROM runtime AS cli
COPY --from=build /out/chatops /usr/local/bin/chatops
ENTRYPOINT ["/usr/local/bin/chatops"]
