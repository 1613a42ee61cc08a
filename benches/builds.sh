#!/usr/bin/env bash
# Build throughput and latency on `concourse quickstart` (embedded store, in-process worker):
#  1. trigger → succeeded of a one-task `echo` job: from the trigger request to the build's
#     `end` event on its SSE stream (curl on loopback), N runs, median and p90;
#  2. builds per minute: a 20-job pipeline, every job triggered at once, until all 20
#     builds have finished, 3 rounds.
# Each for the process and the linux Garden backend (linux needs root).
# Run: cargo build --release && bash benches/builds.sh
set -euo pipefail
bin=${BIN:-target/release/concourse}
runs=${RUNS:-30}
runtimes=${RUNTIMES:-process linux}

source "$(dirname "$0")/lib/latency.sh"

bench() {
  local runtime=$1 dir pid url token
  dir=$(mktemp -d)
  "$bin" quickstart --bind-ip 127.0.0.1 --bind-port 0 --tsa-bind-ip 127.0.0.1 --tsa-bind-port 0 \
    --data-dir "$dir/data" --worker-runtime "$runtime" 2> "$dir/log" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' RETURN
  for _ in $(seq 200); do grep -q "web listening on" "$dir/log" && break; sleep 0.05; done
  url="http://$(grep -o 'web listening on .*' "$dir/log" | awk '{print $4}')"
  export HOME=$dir

  cat > "$dir/echo.yml" <<'YML'
jobs:
- name: echo
  plan:
  - task: echo
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: echo, args: [hello]}
YML
  # Its warm-up build fills the image's resource cache, as on any running cluster.
  local median p90
  echo_latency "$url" "$runs" "$dir/echo.yml" > "$dir/latency"
  read -r median p90 < "$dir/latency"
  echo "$runtime: trigger → succeeded over $runs builds: median ${median} ms, p90 ${p90} ms"
  token=$(awk '/value:/ {print $2}' "$HOME/.flyrc")
  auth=(-H "Authorization: Bearer $token")

  {
    echo "jobs:"
    for j in $(seq 20); do
      printf -- "- name: j%s\n  plan:\n  - task: t\n    config:\n      platform: linux\n      image_resource: {type: mock, source: {mirror_self: true}}\n      run: {path: echo, args: [hi]}\n" "$j"
    done
  } > "$dir/twenty.yml"
  "$bin" fly -t b set-pipeline -n -p twenty -c "$dir/twenty.yml" > /dev/null
  "$bin" fly -t b unpause-pipeline -p twenty > /dev/null
  for round in 1 2 3; do
    local t0 done_count
    t0=$(now_ms)
    for j in $(seq 20); do
      curl -sf "${auth[@]}" -X POST "$url/api/v1/teams/main/pipelines/twenty/jobs/j$j/builds" > /dev/null
    done
    while :; do
      done_count=$(curl -sf "${auth[@]}" "$url/api/v1/teams/main/pipelines/twenty/builds?limit=100" \
        | grep -o '"status":"succeeded"' | wc -l)
      [ "$done_count" -ge $((round * 20)) ] && break
      sleep 0.02
    done
    local ms=$(( $(now_ms) - t0 ))
    echo "$runtime: 20-job pipeline round $round: 20 builds in ${ms} ms = $(( 20 * 60000 / ms )) builds/min"
  done
  kill $pid
  wait $pid 2>/dev/null || true
  rm -rf "$dir"
}

for r in $runtimes; do bench "$r"; done
