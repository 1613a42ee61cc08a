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
source "$(dirname "$0")/lib/quickstart.sh"
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
