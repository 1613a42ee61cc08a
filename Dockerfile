# The `concourse` image: web, worker, quickstart and fly (the same binary as `fly`).
#   docker build -t concourse-rs .
# The base images are build arguments only so that a machine without Docker Hub can name
# local ones (tests/docker/compose.sh does); by default they are Docker Hub's.
ARG RUST_IMAGE=rust:1-slim-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
# Cargo profile: dist (release, smaller code) for users; the image test builds `dev`,
# which compiles faster.
ARG PROFILE=dist
WORKDIR /src
COPY . .
# The registry and target caches survive between builds of the same machine (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --profile "$PROFILE" --bin concourse \
 && cp "target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/concourse" /concourse

FROM ${BASE_IMAGE}
# What the worker runs containers with (iptables, ip) and what resources need (git, CAs).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates git iproute2 iptables \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
COPY --from=build /concourse /usr/local/bin/concourse
RUN ln -s concourse /usr/local/bin/fly
# Upstream's image conventions: keys under /concourse-keys, worker state in a volume (its
# copy-on-write volumes need a filesystem that is not the image's own overlay).
ENV CONCOURSE_TSA_HOST_KEY=/concourse-keys/tsa_host_key \
    CONCOURSE_TSA_AUTHORIZED_KEYS=/concourse-keys/authorized_worker_keys \
    CONCOURSE_TSA_PUBLIC_KEY=/concourse-keys/tsa_host_key.pub \
    CONCOURSE_TSA_WORKER_PRIVATE_KEY=/concourse-keys/worker_key \
    CONCOURSE_WORK_DIR=/worker-state \
    CONCOURSE_WORKER_WORK_DIR=/worker-state \
    CONCOURSE_DATA_DIR=/var/lib/concourse
VOLUME /worker-state
# Root: the worker makes namespaces, mounts and cgroups (run it privileged).
USER root
ENTRYPOINT ["concourse"]
