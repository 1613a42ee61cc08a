# Sourced by the API benches: `concourse quickstart` ($bin) on loopback in a temporary
# directory, fly logged in as target `b`, and $pipelines pipelines of 10 jobs each (or of
# $pipeline_yml when set). $qs_flags adds flags to quickstart.
# Sets dir, pid, url, token and HOME; stops the server and removes the directory on exit.
dir=$(mktemp -d)
# The server removes its containers' mounts as it stops: wait for it before removing them.
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" quickstart --bind-ip 127.0.0.1 --bind-port 0 --tsa-bind-ip 127.0.0.1 --tsa-bind-port 0 \
  --data-dir "$dir/data" ${qs_flags:-} 2> "$dir/log" &
pid=$!
for _ in $(seq 300); do grep -q "web listening on" "$dir/log" && break; sleep 0.1; done
url="http://$(grep -o 'web listening on .*' "$dir/log" | awk '{print $4}')"
export HOME=$dir
"$bin" fly -t b login -c "$url" -u test -p test > /dev/null
if [ -n "${pipeline_yml:-}" ]; then
  cp "$pipeline_yml" "$dir/p.yml"
else
  {
    echo "jobs:"
    for j in $(seq 10); do
      printf -- '- name: job-%s\n  plan:\n  - task: t\n    config: {platform: linux, run: {path: "true"}}\n' "$j"
    done
  } > "$dir/p.yml"
fi
for p in $(seq "$pipelines"); do
  "$bin" fly -t b set-pipeline -n -p "p$p" -c "$dir/p.yml" > /dev/null
done
token=$(awk '/value:/ {print $2}' "$dir/.flyrc")
