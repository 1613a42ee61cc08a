#!/usr/bin/env bash
# Idle cost: `concourse quickstart` with PIPELINES unpaused pipelines of 10 chained jobs and
# 3 mock resources (the same 3 configs in every pipeline; CHECK_EVERY), nothing to build; after SETTLE
# seconds, the web process' CPU and the statements it runs per second over MEASURE seconds
# (from /proc and concourse_db_queries_total), and its RSS.
# Run: cargo build --release && bash benches/idle.sh   (BIN=… for another binary)
set -euo pipefail
bin=$(realpath "${BIN:-target/release/concourse}")
pipelines=${PIPELINES:-200}
settle=${SETTLE:-20}
measure=${MEASURE:-30}
# The resources' check_every: upstream's default 1m keeps 600 checks a minute going; 1h
# leaves nothing due after the first round, so the figure is the cost of waiting.
check_every=${CHECK_EVERY:-1m}
yml=$(mktemp)
{
  echo "resources:"
  for r in 1 2 3; do
    printf -- '- name: r%s\n  type: mock\n  check_every: %s\n  source: {initial_version: v%s}\n' \
      "$r" "$check_every" "$r"
  done
  echo "jobs:"
  for j in $(seq 10); do
    printf -- '- name: job-%s\n  plan:\n  - get: r1\n' "$j"
    [ "$j" -gt 1 ] && printf -- '    passed: [job-%s]\n' "$((j - 1))"
    printf -- '  - get: r2\n  - get: r3\n  - task: t\n    config: {platform: linux, run: {path: "true"}}\n'
  done
} > "$yml"
pipeline_yml=$yml
qs_flags="--prometheus-bind-ip 127.0.0.1 --prometheus-bind-port 0"
source "$(dirname "$0")/lib/quickstart.sh"
rm -f "$yml"
for p in $(seq "$pipelines"); do
  "$bin" fly -t b unpause-pipeline -p "p$p" > /dev/null
done
metrics="http://$(grep -o 'prometheus listening on .*' "$dir/log" | awk '{print $4}')/metrics"
queries() { curl -sf "$metrics" | awk '/^concourse_db_queries_total/ {print $2}'; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
checks() { curl -sf "$metrics" | awk '/^concourse_resource_checks_total/ {n += $2} END {print n + 0}'; }
# Every resource's first check, then SETTLE seconds for what they started.
t=$(date +%s)
while [ "$(checks)" -lt $((pipelines * 3)) ]; do
  [ $(($(date +%s) - t)) -lt 900 ] || { echo "the first checks never finished: $(checks)" >&2; exit 1; }
  sleep 1
done
echo "first checks of $((pipelines * 3)) resources: $(($(date +%s) - t)) s" >&2
sleep "$settle"
q0=$(queries) c0=$(cpu) t0=$(date +%s.%N)
sleep "$measure"
q1=$(queries) c1=$(cpu) t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hz=$(getconf CLK_TCK)
awk -v q0="$q0" -v q1="$q1" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$hz" \
  -v rss="$rss" -v p="$pipelines" -v ce="$check_every" 'BEGIN {
  s = t1 - t0
  printf "%d pipelines idle (check_every %s), %.0f s: web CPU %.2f %%, %.1f statements/s, RSS %.1f MB\n",
    p, ce, s, (c1 - c0) / hz / s * 100, (q1 - q0) / s, rss / 1024
}'
