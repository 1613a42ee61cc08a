# Stands in for Docker Hub's rust:1-slim-bookworm where no registry is reachable: Debian
# (debootstrapped by compose.sh) with a C compiler and this machine's Rust toolchain, laid
# out as the official image lays it out (CARGO_HOME=/usr/local/cargo, on PATH), trusting the
# certificate authorities this machine adds (its egress to crates.io goes through them).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY rust /usr/local/cargo
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
