#!/usr/bin/env bash
# Concurrent API readers: `concourse quickstart` (embedded store unless BIN's flags say
# otherwise) with PIPELINES pipelines of 10 jobs; for 1 and CLIENTS concurrent clients
# (keep-alive, each asking as fast as it is answered) for SECONDS each, requests/s and
# p50/p90 latency of GET /api/v1/jobs and of one pipeline's jobs.
# Run: cargo build --release && bash benches/api_clients.sh
set -euo pipefail
bin=$(realpath "${BIN:-target/release/concourse}")
pipelines=${PIPELINES:-200}
clients=${CLIENTS:-16}
seconds=${SECONDS_EACH:-10}
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
python3 - "$url" "$token" "$clients" "$seconds" "$pipelines" <<'PY'
import http.client, sys, threading, time, urllib.parse
url, token, clients, seconds, pipelines = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
u = urllib.parse.urlparse(url)
def load(path, n):
    times, stop = [], time.monotonic() + seconds
    def client():
        c = http.client.HTTPConnection(u.hostname, u.port)
        while time.monotonic() < stop:
            t = time.monotonic()
            c.request("GET", path, headers={"Authorization": "Bearer " + token})
            r = c.getresponse(); r.read()
            assert r.status == 200, r.status
            times.append(time.monotonic() - t)
    ts = [threading.Thread(target=client) for _ in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    times.sort()
    q = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000
    print(f"{path:<42} {n:>3} clients  {len(times) / seconds:8.1f} req/s  p50 {q(0.5):7.1f} ms  p90 {q(0.9):7.1f} ms", flush=True)
print(f"{pipelines} pipelines x 10 jobs, {seconds:.0f}s per line:")
for path in ["/api/v1/jobs", "/api/v1/teams/main/pipelines/p1/jobs"]:
    for n in [1, clients]:
        load(path, n)
PY
