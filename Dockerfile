# syntax=docker/dockerfile:1
#
# kubemirror: the controller and the skopeo-style CLI in one image.
#
#   docker build -t kubemirror:dev .
#   docker run --rm kubemirror:dev inspect docker://docker.io/library/alpine:latest
#
# Runs as UID/GID 65532 (distroless "nonroot"), writes nothing outside /tmp
# (mount an emptyDir there under readOnlyRootFilesystem), and trusts the
# Debian CA bundle in /etc/ssl/certs. The default command is `controller`.
# tests/chart.rs checks what can be checked without a Docker engine.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The workspace: the kube-emulator member is only needed for Cargo to load the
# workspace (and the lock file); it is not built.
COPY Cargo.toml Cargo.lock ./
COPY kube-emulator/ kube-emulator/
COPY src/ src/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin kubemirror \
 && install -D -m 0755 target/release/kubemirror /out/kubemirror

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="kubemirror" \
      org.opencontainers.image.description="Mirror and inspect container images: a Kubernetes controller and a skopeo-style CLI" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/kubemirror /usr/local/bin/kubemirror
USER 65532:65532
ENV HOME=/tmp TMPDIR=/tmp
EXPOSE 8080 8081
ENTRYPOINT ["kubemirror"]
CMD ["controller"]
