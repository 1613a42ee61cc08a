#!/usr/bin/env bash
# How long a build stands still when the web node running it is killed: `concourse web` on
# PostgreSQL and a `concourse worker` apart; a job prints a line every 100 ms; the web node is
# killed (SIGKILL) mid-build and restarted at once on the same ports. Prints the time from the
# kill to the restarted node adopting the build, and to the first new line of its log.
# Run: cargo build --release && bash benches/web_kill.sh   (PostgreSQL on 127.0.0.1:5432, trust)
set -euo pipefail
bin=$(realpath "${BIN:-target/release/concourse}")
db=concourse_bench_web_kill
dir=$(mktemp -d)
web_pid=
worker_pid=
cleanup() {
  kill -9 ${web_pid:-} ${worker_pid:-} 2>/dev/null || true
  sleep 0.5
  rm -rf "$dir"
  dropdb -h 127.0.0.1 -U postgres --if-exists "$db" 2>/dev/null || true
}
trap cleanup EXIT
dropdb -h 127.0.0.1 -U postgres --if-exists "$db"
createdb -h 127.0.0.1 -U postgres "$db"
sql() { psql -h 127.0.0.1 -U postgres -d "$db" -tAc "$1"; }
ms() { date +%s%3N; }

"$bin" generate-key -t ssh -f "$dir/tsa_host_key" > /dev/null
"$bin" generate-key -t ssh -f "$dir/worker_key" > /dev/null
start_web() {
  "$bin" web --bind-ip 127.0.0.1 --bind-port "$1" --tsa-bind-ip 127.0.0.1 --tsa-bind-port "$2" \
    --postgres-host 127.0.0.1 --postgres-user postgres --postgres-database "$db" \
    --tsa-host-key "$dir/tsa_host_key" --tsa-authorized-keys "$dir/worker_key.pub" \
    --add-local-user test:test --main-team-local-user test --data-dir "$dir/data" \
    2>> "$dir/web.log" &
  web_pid=$!
  for _ in $(seq 300); do grep -q "web listening on" "$dir/web.log" && return; sleep 0.1; done
  echo "web did not start" >&2; exit 1
}
start_web 0 0
web_addr=$(grep -o 'web listening on .*' "$dir/web.log" | head -1 | awk '{print $4}')
tsa_addr=$(grep -o 'tsa listening on .*' "$dir/web.log" | head -1 | awk '{print $4}')
"$bin" worker --name w --runtime process --work-dir "$dir/worker" --tsa-host "$tsa_addr" \
  --tsa-public-key "$dir/tsa_host_key.pub" --tsa-worker-private-key "$dir/worker_key" \
  --bind-ip 127.0.0.1 --bind-port 0 --baggageclaim-bind-ip 127.0.0.1 \
  --baggageclaim-bind-port 0 2> "$dir/worker.log" &
worker_pid=$!
for _ in $(seq 300); do
  [ "$(sql "SELECT count(*) FROM workers WHERE state = 'running'")" = 1 ] && break; sleep 0.1
done

export HOME=$dir
"$bin" fly -t b login -c "http://$web_addr" -u test -p test > /dev/null
cat > "$dir/p.yml" <<'EOF'
jobs:
- name: j
  plan:
  - task: count
    config:
      platform: linux
      run: {path: sh, args: [-c, 'i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo line-$i; sleep 0.1; done']}
EOF
"$bin" fly -t b set-pipeline -n -p p -c "$dir/p.yml" > /dev/null
"$bin" fly -t b unpause-pipeline -p p > /dev/null
"$bin" fly -t b trigger-job -j p/j > /dev/null
lines() { sql "SELECT count(*) FROM build_events WHERE build_id = 1 AND payload->>'event' = 'log'"; }
for _ in $(seq 600); do [ "$(lines)" -ge 20 ] && break; sleep 0.1; done

kill -9 "$web_pid"
killed=$(ms)
before=$(lines)
start_web "${web_addr##*:}" "${tsa_addr##*:}"
restarted=$(ms)
adopted=
while :; do
  now=$(ms)
  [ $((now - killed)) -gt 120000 ] && { echo "the build never went on" >&2; exit 1; }
  if [ -z "$adopted" ] && grep -q "resuming build" "$dir/web.log"; then adopted=$now; fi
  [ "$(lines)" -gt "$before" ] && break
  sleep 0.05
done
echo "web restarted $((restarted - killed)) ms after the kill"
echo "build adopted ${adopted:+$((adopted - killed)) ms after the kill}"
echo "first new log line stored $((now - killed)) ms after the kill"
