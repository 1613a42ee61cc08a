#!/usr/bin/env bash
# What a dashboard's poll of `GET /api/v1/jobs` costs: `concourse quickstart` (embedded
# store) with PIPELINES pipelines of 10 jobs; REQUESTS sequential requests answered in full,
# gzipped, and as 304 Not Modified (If-None-Match). Prints bytes per answer and requests/s.
# Run: cargo build --release && bash benches/api_poll.sh
set -euo pipefail
bin=$(realpath "${BIN:-target/release/concourse}")
pipelines=${PIPELINES:-50}
requests=${REQUESTS:-200}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; sleep 0.5; rm -rf "$dir"' EXIT
"$bin" quickstart --bind-ip 127.0.0.1 --bind-port 0 --tsa-bind-ip 127.0.0.1 --tsa-bind-port 0 \
  --data-dir "$dir/data" 2> "$dir/log" &
pid=$!
for _ in $(seq 300); do grep -q "web listening on" "$dir/log" && break; sleep 0.1; done
url="http://$(grep -o 'web listening on .*' "$dir/log" | awk '{print $4}')"
export HOME=$dir
"$bin" fly -t b login -c "$url" -u test -p test > /dev/null
{
  echo "jobs:"
  for j in $(seq 10); do
    printf -- '- name: job-%s\n  plan:\n  - task: t\n    config: {platform: linux, run: {path: "true"}}\n' "$j"
  done
} > "$dir/p.yml"
for p in $(seq "$pipelines"); do
  "$bin" fly -t b set-pipeline -n -p "p$p" -c "$dir/p.yml" > /dev/null
done
token=$(awk '/value:/ {print $2}' "$dir/.flyrc")
jobs="$url/api/v1/jobs"
tag=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $token" "$jobs" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
run() { # label, extra curl args...
  local label=$1; shift
  local bytes
  bytes=$(curl -s -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $token" "$@" "$jobs")
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$requests"); do
    curl -s -o /dev/null -H "Authorization: Bearer $token" "$@" "$jobs"
  done
  end=$(date +%s%N)
  awk -v l="$label" -v b="$bytes" -v n="$requests" -v ns=$((end - start)) \
    'BEGIN { printf "%-28s %8d bytes  %7.1f req/s  %6.2f ms/req\n", l, b, n / (ns / 1e9), ns / 1e6 / n }'
}
echo "GET /api/v1/jobs, $pipelines pipelines x 10 jobs, $requests requests each (curl, one at a time):"
run "full answer"
run "gzip (Accept-Encoding)" -H "Accept-Encoding: gzip"
run "304 (If-None-Match)" -H "If-None-Match: $tag"
