#!/usr/bin/env bash
# Trigger → succeeded of a one-task `echo` job (process runtime) three ways: quickstart
# (in-process worker; on the embedded store, then on PostgreSQL), `concourse web` on PostgreSQL with a `concourse worker` registered
# directly (`--peer-address`), and the same worker tunnelled through the TSA
# (forward-worker, upstream's only way). Median and p90 over $RUNS builds after a warm-up,
# from the trigger request to the build's `end` event; then the ratios issue 17 names.
# Run: cargo build --release && bash benches/remote.sh   (PostgreSQL on 127.0.0.1:5432, trust)
set -euo pipefail
bin=$(realpath "${BIN:-target/release/concourse}")
runs=${RUNS:-30}
db=concourse_bench_remote
dir=$(mktemp -d)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop
  rm -rf "$dir"
  dropdb -h 127.0.0.1 -U postgres --if-exists "$db" 2>/dev/null || true
}
trap cleanup EXIT
source "$(dirname "$0")/lib/latency.sh"
wait_log() { # file pattern
  for _ in $(seq 300); do grep -q "$2" "$1" 2> /dev/null && return; sleep 0.1; done
  echo "never saw '$2' in $1:" >&2; tail -20 "$1" >&2; exit 1
}

# Prints "median p90" of trigger → succeeded against the web node at $1.
latency() {
  export HOME=$dir/home
  mkdir -p "$HOME"
  printf 'jobs:\n- name: echo\n  plan:\n  - task: echo\n    config:\n      platform: linux\n      run: {path: echo, args: [hello]}\n' > "$dir/echo.yml"
  echo_latency "$1" "$runs" "$dir/echo.yml"
}

reset_db() {
  dropdb -h 127.0.0.1 -U postgres --if-exists "$db"
  createdb -h 127.0.0.1 -U postgres "$db"
}
# Prints "median p90" of a quickstart started with extra flags $@.
quickstart() {
  rm -rf "$dir/qs"
  : > "$dir/qs.log"
  "$bin" quickstart --bind-ip 127.0.0.1 --bind-port 0 --tsa-bind-ip 127.0.0.1 --tsa-bind-port 0 \
    --data-dir "$dir/qs" --worker-runtime process "$@" 2> "$dir/qs.log" &
  pids+=($!)
  wait_log "$dir/qs.log" "web listening on"
  latency "http://$(grep -o 'web listening on .*' "$dir/qs.log" | awk '{print $4}')"
  stop
}
quickstart > "$dir/qs.out"
read -r qs_m qs_p < "$dir/qs.out"
reset_db
# The same store as the web node below, so the ratio to it is the worker's hop alone.
quickstart --postgres-host 127.0.0.1 --postgres-user postgres --postgres-database "$db" > "$dir/qspg.out"
read -r qspg_m qspg_p < "$dir/qspg.out"
reset_db
"$bin" generate-key -t ssh -f "$dir/tsa_host_key" > /dev/null
"$bin" generate-key -t ssh -f "$dir/worker_key" > /dev/null
# Prints "median p90" with a worker started with extra flags $@ (after a fresh web node).
remote() {
  : > "$dir/web.log"
  "$bin" web --bind-ip 127.0.0.1 --bind-port 0 --tsa-bind-ip 127.0.0.1 --tsa-bind-port 0 \
    --postgres-host 127.0.0.1 --postgres-user postgres --postgres-database "$db" \
    --tsa-host-key "$dir/tsa_host_key" --tsa-authorized-keys "$dir/worker_key.pub" \
    --add-local-user test:test --main-team-local-user test --data-dir "$dir/web" \
    2>> "$dir/web.log" &
  pids+=($!)
  wait_log "$dir/web.log" "web listening on"
  local web tsa
  web=$(grep -o 'web listening on .*' "$dir/web.log" | awk '{print $4}')
  tsa=$(grep -o 'tsa listening on .*' "$dir/web.log" | awk '{print $4}')
  rm -rf "$dir/worker"
  "$bin" worker --name w --runtime process --work-dir "$dir/worker" --tsa-host "$tsa" \
    --tsa-public-key "$dir/tsa_host_key.pub" --tsa-worker-private-key "$dir/worker_key" \
    --bind-ip 127.0.0.1 --bind-port 0 --baggageclaim-bind-ip 127.0.0.1 \
    --baggageclaim-bind-port 0 "$@" 2> "$dir/worker.log" &
  pids+=($!)
  for _ in $(seq 300); do
    [ "$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT count(*) FROM workers WHERE state = 'running'")" = 1 ] && break
    sleep 0.1
  done
  latency "http://$web"
  stop
  reset_db
}
remote --peer-address 127.0.0.1 > "$dir/direct.out"
read -r direct_m direct_p < "$dir/direct.out"
remote > "$dir/fwd.out"
read -r fwd_m fwd_p < "$dir/fwd.out"

echo "| worker | trigger → succeeded median | p90 |"
echo "| --- | --- | --- |"
echo "| quickstart (in-process), embedded store | $qs_m ms | $qs_p ms |"
echo "| quickstart (in-process), PostgreSQL | $qspg_m ms | $qspg_p ms |"
echo "| web + worker, direct (register-worker) | $direct_m ms | $direct_p ms |"
echo "| web + worker, tunnelled (forward-worker) | $fwd_m ms | $fwd_p ms |"
awk -v q="$qs_m" -v p="$qspg_m" -v d="$direct_m" -v f="$fwd_m" \
  'BEGIN {printf "direct / quickstart = %.2f (%.2f on the same store; target <= 1.5); forwarded / direct = %.2f (target <= 1.5)\n", d / q, d / p, f / d}'
