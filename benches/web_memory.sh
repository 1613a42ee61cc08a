#!/usr/bin/env bash
# Resident memory of `concourse quickstart` (web + in-process worker, embedded store):
# idle after start, then after every corpus pipeline is set through fly and listed.
# Run: cargo build --release && bash benches/web_memory.sh
set -euo pipefail
bin=${BIN:-target/release/concourse}
corpus=${CORPUS:-../shared/corpus/pipelines}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" quickstart --bind-ip 127.0.0.1 --bind-port 0 --tsa-bind-ip 127.0.0.1 --tsa-bind-port 0 \
  --data-dir "$dir/data" 2> "$dir/log" &
pid=$!
for _ in $(seq 100); do grep -q "web listening on" "$dir/log" && break; sleep 0.1; done
url="http://$(grep -o 'web listening on .*' "$dir/log" | awk '{print $4}')"
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$pid/status"; }
echo "idle after start: $(rss)"
export HOME=$dir
"$bin" fly -t m login -c "$url" -u test -p test > /dev/null
n=0
for f in "$corpus"/*.yml; do
  n=$((n + 1))
  "$bin" fly -t m set-pipeline -n -p "p$n" -c "$f" -v hash=h -v pipeline_name=c -v team_name=main \
    -v task_content=x -v task_unwrap_content=y -v initial_version=v -v hash-1=a -v hash-2=b \
    -y 'pinned_resource_version={version: v}' -y version_config=every -v pinned_version=v \
    -v force_version=f -v check_delay=1s -v check_failure= -v unique_version=u \
    -y privileged=true -v unique_config=c > /dev/null 2>&1 || true
done
for _ in $(seq 50); do curl -s "$url/api/v1/jobs" -H "Authorization: Bearer $(awk '/value:/ {print $2}' "$HOME/.flyrc")" > /dev/null; done
echo "after $n pipelines set and 50 dashboard (/api/v1/jobs) requests: $(rss)"
