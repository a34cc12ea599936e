# Build: docker build -t mcp-daemon .
# Run:   docker run -p 8000:8000 mcp-daemon
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY examples examples
COPY tests tests
# The Lua scripts are compiled into the binary; loadgen is a member of the workspace.
COPY redis redis
COPY loadgen loadgen
RUN cargo build --release --bin mcp-daemon

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /nonexistent mcp
COPY --from=build /src/target/release/mcp-daemon /usr/local/bin/mcp-daemon
COPY examples/config.json /etc/mcp-daemon/config.json
USER mcp
# Inside a container the loopback address is unreachable from outside: listen on all
# interfaces and list the names clients use in ALLOWED_HOSTS (loopback names are always ok).
ENV HOST=0.0.0.0 \
    PORT=8000 \
    MCP_CONFIG_FILE=/etc/mcp-daemon/config.json \
    LOG_FORMAT=json
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000"]
ENTRYPOINT ["/usr/local/bin/mcp-daemon"]
