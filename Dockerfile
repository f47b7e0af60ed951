# syntax=docker/dockerfile:1
# Container images of the two binaries, from one multi-stage build:
#   docker build --target test-servers -t test-servers .   (the default target: the last stage)
#   docker build --target ws-bench -t ws-bench .
#   docker run --rm -p 9001:9001 test-servers                      (echo on 0.0.0.0:9001)
#   docker run --rm -p 9001:9001 test-servers rpc --host 0.0.0.0 --port 9001
# The final images are distroless (gcr.io/distroless/cc-debian12): glibc, libgcc, CA
# certificates and a nonroot user (uid and gid 65532, named numerically below so
# that Kubernetes runAsNonRoot can verify it), no shell and no package manager: about
# 23 MB, plus the stripped binary. Why not scratch with a static build: the binaries resolve host
# names with glibc's getaddrinfo (a Kubernetes Service name, for ws-bench), which a static
# glibc cannot do reliably, and this toolchain has no musl target. See README "Running at
# scale".

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The builder is Debian 12 like the final image, so the glibc the binaries link against is
# the one they run with. Stripped: 7 MB (test-servers) and 11 MB (ws-bench) instead of 46
# and 60 MB with the release profile's line tables.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p test-servers -p ws-bench \
    && install -D -m 0755 target/release/test-servers /out/test-servers \
    && install -D -m 0755 target/release/ws-bench /out/ws-bench

# ws-bench: a load generator run as a job, so no health check.
FROM gcr.io/distroless/cc-debian12:nonroot AS ws-bench
COPY --from=build /out/ws-bench /usr/local/bin/ws-bench
USER 65532:65532
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/ws-bench"]
CMD ["--help"]

# test-servers: echo on 0.0.0.0:9001 unless another mode is given. The ready line still goes
# to stdout (docker logs), logs to stderr (RUST_LOG). SIGTERM (docker stop) closes every
# session with 1001 and prints the `stopped` line.
FROM gcr.io/distroless/cc-debian12:nonroot AS test-servers
COPY --from=build /out/test-servers /usr/local/bin/test-servers
USER 65532:65532
EXPOSE 9001
# The image has no shell or curl: the binary checks itself (an upgrade request; any HTTP
# answer from the server counts). A mode started on another port needs its own
# --health-cmd (see README "Running at scale").
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/test-servers", "healthcheck", "--url", "ws://127.0.0.1:9001/", "--timeout", "2s"]
ENTRYPOINT ["/usr/local/bin/test-servers"]
CMD ["echo", "--host", "0.0.0.0", "--port", "9001"]
