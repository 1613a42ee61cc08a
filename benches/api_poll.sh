#!/usr/bin/env bash
# What a dashboard's poll of `GET /api/v1/jobs` costs: `concourse quickstart` (embedded
# store) with PIPELINES pipelines of 10 jobs; REQUESTS sequential requests answered in full,
# gzipped, and as 304 Not Modified (If-None-Match). Prints bytes per answer and requests/s.
# Run: cargo build --release && bash benches/api_poll.sh
set -euo pipefail
bin=$(realpath "${BIN:-target/release/concourse}")
pipelines=${PIPELINES:-50}
requests=${REQUESTS:-200}
source "$(dirname "$0")/lib/quickstart.sh"
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
