# Multi-stage build of the `nango` binary; the final image holds only the binary and CA roots.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p nango-cli && strip target/release/nango

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/nango --create-home nango
COPY --from=build /src/target/release/nango /usr/local/bin/nango
USER nango
WORKDIR /var/lib/nango
# Without NANGO_DATABASE_URL or NANGO_DB_HOST the data goes to /var/lib/nango/nango.db (SQLite).
ENV SERVER_PORT=3003 \
    NANGO_BIND=0.0.0.0
EXPOSE 3003
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:3003/health || exit 1
ENTRYPOINT ["nango"]
CMD ["serve"]
