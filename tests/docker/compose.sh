#!/usr/bin/env bash
# The image and compose test: builds the image from this checkout and drives
# docker-compose.yml as a user would: compose up, fly login, set a pipeline, a build on the
# containerised worker, compose down. Needs root, Debian's docker.io, docker-compose and
# debootstrap. No registry holds base images here, so they are made locally and named
# through the Dockerfile's and compose file's arguments: Debian from its archive
# (debootstrap), Rust from this machine's toolchain, PostgreSQL from Debian's package.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${CONCOURSE_DOCKER_CACHE:-/var/tmp/concourse-docker}
mkdir -p "$cache"
# Debian's client, which matches its daemon and has BuildKit built in.
docker() { /usr/bin/docker "$@"; }
export DOCKER_BUILDKIT=1
export COMPOSE_PROJECT_NAME=concourse-rs-test
export CONCOURSE_IMAGE=concourse-rs:test
export POSTGRES_IMAGE=concourse-test/postgres:15
base=concourse-test/debian:bookworm-slim
rust=concourse-test/rust:1-slim-bookworm
tmp=$(mktemp -d)
started=

step() { echo "== $(date +%T) $*"; }

cleanup() {
  status=$?
  set +e
  if [ $status -ne 0 ] && [ -f docker-compose.yml ]; then
    docker-compose logs --no-color --tail 80 2>&1 | tail -n 200
  fi
  docker-compose --profile quickstart down -v --remove-orphans >/dev/null 2>&1
  if [ -n "$started" ]; then
    kill "$started" && wait "$started"
    # dockerd leaves its chains and rules (and a FORWARD policy of DROP, which the other
    # tests' forwarded traffic would meet): the tables go back to what they were.
    for t in filter nat; do iptables-restore -T "$t" <"$tmp/iptables.$t"; done
    ip link del docker0 2>/dev/null
  fi
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  step "starting dockerd"
  for t in filter nat; do iptables-save -t "$t" >"$tmp/iptables.$t"; done
  dockerd --data-root "$cache/docker" --exec-root "$tmp/exec" --pidfile "$tmp/dockerd.pid" \
    >"$cache/dockerd.log" 2>&1 &
  started=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null || { tail "$cache/dockerd.log"; exit 1; }
fi

if ! docker image inspect "$base" >/dev/null 2>&1; then
  step "base image $base (debootstrap)"
  rm -rf "$cache/rootfs"
  debootstrap --variant=minbase bookworm "$cache/rootfs" http://deb.debian.org/debian >/dev/null
  # As Docker Hub's slim images: no package cache, no lists.
  rm -rf "$cache"/rootfs/var/cache/apt/archives/*.deb "$cache"/rootfs/var/lib/apt/lists/*
  tar -C "$cache/rootfs" -c . | docker import - "$base"
  rm -rf "$cache/rootfs"
fi

if ! docker image inspect "$rust" >/dev/null 2>&1; then
  step "toolchain image $rust (this machine's $(rustc --version))"
  mkdir "$tmp/rust"
  sysroot=$(rustc --print sysroot)
  cp -a "$sysroot/bin" "$sysroot/lib" "$tmp/rust/"
  mkdir "$tmp/ca"
  cp /usr/local/share/ca-certificates/*.crt "$tmp/ca/" 2>/dev/null || true
  cp tests/docker/toolchain.Dockerfile "$tmp/Dockerfile"
  docker build -q --build-arg BASE_IMAGE="$base" -t "$rust" "$tmp"
  rm -rf "$tmp/rust" "$tmp/ca" "$tmp/Dockerfile"
fi

if ! docker image inspect "$POSTGRES_IMAGE" >/dev/null 2>&1; then
  step "PostgreSQL image $POSTGRES_IMAGE"
  docker build -q --build-arg BASE_IMAGE="$base" -t "$POSTGRES_IMAGE" \
    -f tests/docker/postgres.Dockerfile tests/docker
fi

step "docker build (PROFILE=dev)"
docker build -q --build-arg RUST_IMAGE="$rust" --build-arg BASE_IMAGE="$base" \
  --build-arg PROFILE=dev -t "$CONCOURSE_IMAGE" .
docker image inspect "$CONCOURSE_IMAGE" --format 'image size: {{.Size}} bytes'

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CONCOURSE_PORT=$port CONCOURSE_EXTERNAL_URL=http://127.0.0.1:$port
# A privileged container needs every capability; where this machine withholds one, the
# worker gets the ones it has instead (see the override file).
all=$(printf '%016x' $(( (1 << ($(cat /proc/sys/kernel/cap_last_cap) + 1)) - 1 )))
if [ "$(awk '/^CapBnd/ {print $2}' /proc/self/status)" != "$all" ]; then
  export COMPOSE_FILE=docker-compose.yml:tests/docker/compose.no-privileged.yml
fi
step "docker-compose up -d (web on $port)"
docker-compose up -d --no-build
url=http://127.0.0.1:$port
for _ in $(seq 1 120); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$(docker-compose ps -q web)")" = healthy ] && break
  sleep 1
done

# fly as a user has it: the binary of this checkout, invoked as `fly`.
cargo build -q --bin concourse
ln -s "$PWD/target/debug/concourse" "$tmp/fly"
fly() { HOME=$tmp "$tmp/fly" "$@"; }
fly -t dc login -c "$url" -u test -p test
for _ in $(seq 1 120); do fly -t dc workers 2>/dev/null | grep -q running && break; sleep 1; done
fly -t dc workers
step "the README's one-off build (fly execute)"
fly -t dc execute -c examples/hello-task.yml | tee "$tmp/execute.log"
grep -q "hello from .*, a container on the worker" "$tmp/execute.log"
cat > "$tmp/pipeline.yml" <<'YAML'
jobs:
- name: hello
  plan:
  - task: hi
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: sh, args: [-c, 'echo "hello from $(hostname) as $(id -un)"']}
YAML
fly -t dc set-pipeline -n -p hello -c "$tmp/pipeline.yml"
fly -t dc unpause-pipeline -p hello
step "a build on the containerised worker"
fly -t dc trigger-job -j hello/hello -w | tee "$tmp/build.log"
grep -q "hello from .* as root" "$tmp/build.log"

step "docker-compose down"
docker-compose down -v
step "passed"
