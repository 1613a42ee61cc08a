# Sourced by the build benches. `echo_latency URL RUNS PIPELINE_YML` logs fly in as target
# `b` ($bin, $HOME set by the caller), sets the pipeline `echo` (one job `echo`), runs one
# warm-up build, then triggers RUNS builds one after the other, each timed from the
# trigger request to its `end` event on the build's SSE stream. Prints "median p90" in ms.
now_ms() { date +%s%3N; }

echo_latency() {
  local url=$1 runs=$2 yml=$3 token times=() t0 id
  "$bin" fly -t b login -c "$url" -u test -p test > /dev/null
  token=$(awk '/value:/ {print $2}' "$HOME/.flyrc")
  "$bin" fly -t b set-pipeline -n -p echo -c "$yml" > /dev/null
  "$bin" fly -t b unpause-pipeline -p echo > /dev/null
  "$bin" fly -t b trigger-job -j echo/echo -w > /dev/null
  for _ in $(seq "$runs"); do
    t0=$(now_ms)
    id=$(curl -sf -H "Authorization: Bearer $token" -X POST \
      "$url/api/v1/teams/main/pipelines/echo/jobs/echo/builds" | sed 's/.*"id":\([0-9]*\).*/\1/')
    curl -sfN -H "Authorization: Bearer $token" "$url/api/v1/builds/$id/events" \
      | grep -q -m1 '^event: end'
    times+=($(($(now_ms) - t0)))
  done
  printf '%s\n' "${times[@]}" | sort -n \
    | awk -v n="$runs" 'NR == int((n + 1) / 2) {m = $1} NR == int(n * 0.9) {p = $1} END {print m, p}'
}
