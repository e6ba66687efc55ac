# syntax=docker/dockerfile:1
# The `nango` binary (server and CLI) in a small image that runs as a non-root user.
#
#   docker build -t nango-rs .
#   docker run -p 127.0.0.1:3003:3003 -v nango-data:/var/lib/nango \
#     -e NANGO_SECRET_KEY="$(openssl rand -hex 32)" nango-rs                      # SQLite
#   docker compose up                                                            # PostgreSQL
#
# Stage 1 compiles; stage 2 holds only the stripped binary and curl (for HEALTHCHECK). The binary
# needs no OpenSSL and no CA bundle: TLS is rustls with the Mozilla roots compiled in.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crates registry and the target directory between builds; the binary
# is copied out of the mounted target directory, which does not persist in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p nango-cli \
    && cp target/release/nango /usr/local/bin/nango \
    && strip /usr/local/bin/nango

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 nango \
    && useradd --system --uid 10001 --gid nango --home-dir /var/lib/nango --create-home nango
COPY --from=build /usr/local/bin/nango /usr/local/bin/nango
USER 10001:10001
# Without NANGO_DATABASE_URL or NANGO_DB_HOST the server keeps its data in
# /var/lib/nango/nango.db (SQLite): mount a volume there.
WORKDIR /var/lib/nango
# Inside a container the server must listen on every interface; the port is published by the
# operator (docker-compose.yaml publishes it on 127.0.0.1 unless told otherwise). The server
# refuses to start on 0.0.0.0 without NANGO_SECRET_KEY (pass one with -e), unless
# NANGO_ALLOW_OPEN_API=true says the open API is intended (dangerous).
ENV NANGO_BIND=0.0.0.0
EXPOSE 3003
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${SERVER_PORT:-${PORT:-3003}}/health" || exit 1
ENTRYPOINT ["nango"]
CMD ["serve"]
