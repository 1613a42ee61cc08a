#!/usr/bin/env python3
"""One web node under many pipelines (issue 17's scenario), printed as one table.

`concourse quickstart` (embedded store, or PostgreSQL with POSTGRES=1, and its in-process
worker unless QS_FLAGS says otherwise) with PIPELINES pipelines of 10 chained jobs and 3 mock
resources each, then: idle CPU, statements/s and RSS; `GET /api/v1/jobs` (one client, then
16); trigger -> succeeded of a one-task job; a `passed` chain's time per hop; RSS while 16
clients poll `/api/v1/jobs` after those builds; checks/s with CHECKED resources at
`check_every: 10s`, and the web CPU meanwhile.

Run:  cargo build --release && python3 benches/scale.py
CI:   SHORT=1 BIN=target/debug/concourse python3 benches/scale.py  (small and quick; fails
      only when the scenario itself breaks, never on a figure)
"""

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SHORT = os.environ.get("SHORT") == "1"
BIN = os.path.realpath(os.environ.get("BIN", "target/release/concourse"))
PIPELINES = int(os.environ.get("PIPELINES", 20 if SHORT else 200))
CHECKED = int(os.environ.get("CHECKED", 100 if SHORT else 1000))
MEASURE = float(os.environ.get("MEASURE", 5 if SHORT else 20))
RUNS = int(os.environ.get("RUNS", 5 if SHORT else 30))
CHAIN = 10
HZ = os.sysconf("SC_CLK_TCK")
# POSTGRES=1: the web node keeps its state in a schema of its own in PostgreSQL's `test`
# database on 127.0.0.1 (trust auth, as the tests use), dropped when the server stops.
POSTGRES = os.environ.get("POSTGRES") == "1"


def store_flags(name):
    """The web node's store flags: the embedded store in `name`, or a fresh schema."""
    if not POSTGRES:
        return ["--data-dir", name]
    schema = f"bench_{os.getpid()}_{int(time.monotonic() * 1000)}"
    return ["--data-dir", name, "--postgres-host", "127.0.0.1", "--postgres-user", "postgres",
            "--postgres-database", "test", "--postgres-schema", schema]


def drop_schema(flags):
    if "--postgres-schema" in flags:
        schema = flags[flags.index("--postgres-schema") + 1]
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c",
                        f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=True)


def pipeline_yml(chained_trigger=False):
    out = ["resources:"]
    # Checked once, then not again during the run: the checks/s line measures its own.
    for r in (1, 2, 3):
        out.append(f"- name: r{r}\n  type: mock\n  check_every: 1h\n"
                   f"  source: {{initial_version: v{r}}}")
    out.append("jobs:")
    for j in range(1, CHAIN + 1):
        get = f"- name: job-{j}\n  plan:\n  - get: r1\n"
        if j > 1:
            get += f"    passed: [job-{j - 1}]\n"
        if chained_trigger:
            get += "    trigger: true\n"
        get += "  - get: r2\n  - get: r3\n  - task: t\n    config:\n      platform: linux\n"
        get += "      image_resource: {type: mock, source: {mirror_self: true}}\n"
        get += '      run: {path: "true"}'
        out.append(get)
    return "\n".join(out) + "\n"


ECHO = """jobs:
- name: echo
  plan:
  - task: echo
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: echo, args: [hello]}
"""


def independent_yml(n):
    """`n` jobs with nothing between them: all runnable at once."""
    job = ECHO.split("\n", 1)[1]
    return "jobs:\n" + "".join(job.replace("name: echo", f"name: e{j}", 1) for j in range(n))


def checked_yml(n, offset, every=10):
    out = ["resources:"]
    for i in range(n):
        out.append(
            f"- name: c{i}\n  type: mock\n  check_every: {every}s\n"
            f"  source: {{initial_version: c{offset + i}}}"
        )
    # Every resource must be used by a job; this one never runs.
    out.append("jobs:\n- name: j\n  plan:")
    out.extend(f"  - get: c{i}" for i in range(n))
    return "\n".join(out) + "\n"


class Quickstart:
    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        flags = os.environ.get("QS_FLAGS", "").split()
        self.store = store_flags(os.path.join(d, "data"))
        self.log = open(os.path.join(d, "log"), "w+")
        self.proc = subprocess.Popen(
            [BIN, "quickstart", "--bind-ip", "127.0.0.1", "--bind-port", "0",
             "--tsa-bind-ip", "127.0.0.1", "--tsa-bind-port", "0",
             "--prometheus-bind-ip", "127.0.0.1", "--prometheus-bind-port", "0",
             *self.store] + flags,
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.url = self._wait_for("web listening on (\\S+)")
        self.metrics = self._wait_for("prometheus listening on (\\S+)")
        self.login()
        self.worker_dir = os.path.join(d, "data", "worker")

    def login(self):
        """fly logs in as test:test, with HOME in the server's directory; `token` is its."""
        d = self.dir.name
        self.env = dict(os.environ, HOME=d)
        self.fly("login", "-c", "http://" + self.url, "-u", "test", "-p", "test")
        with open(os.path.join(d, ".flyrc")) as f:
            self.token = re.search(r"value: (\S+)", f.read()).group(1)
        host, port = self.url.split(":")
        self.host, self.port = host, int(port)

    def _wait_for(self, pattern):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.log.seek(0)
            m = re.search(pattern, self.log.read())
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                sys.exit(f"quickstart exited: {self.tail()}")
            time.sleep(0.05)
        sys.exit(f"quickstart never printed {pattern!r}: {self.tail()}")

    def tail(self):
        self.log.seek(0)
        return "".join(self.log.readlines()[-20:])

    def fly(self, *args):
        subprocess.run([BIN, "fly", "-t", "b", *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def set_pipeline(self, name, yml):
        path = os.path.join(self.dir.name, name + ".yml")
        with open(path, "w") as f:
            f.write(yml)
        self.fly("set-pipeline", "-n", "-p", name, "-c", path)
        self.fly("unpause-pipeline", "-p", name)

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, c, method, path):
        c.request(method, path, headers={"Authorization": "Bearer " + self.token})
        r = c.getresponse()
        body = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {body[:200]!r}")
        return body

    def json(self, method, path):
        c = self.conn()
        try:
            return json.loads(self.request(c, method, path))
        finally:
            c.close()

    def get(self, path):
        return self.json("GET", path)

    def post(self, path):
        return self.json("POST", path)

    def metric(self, name):
        host, port = self.metrics.split(":")
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024

    def stop(self):
        """Stops the server, which destroys its containers and unmounts its volumes first;
        one that has not done so within two minutes breaks the scenario."""
        self.terminate(self.proc, "quickstart")
        drop_schema(self.store)
        self.dir.cleanup()

    def terminate(self, proc, what):
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            sys.exit(f"{what} did not stop within 120 s of SIGTERM; {self.dir.name} may hold mounts")


class WebAndWorker(Quickstart):
    """A web node and a worker in processes of their own, driven as Quickstart is;
    `proc` (whose CPU and RSS are read) is the web node's."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        self.store = store_flags(os.path.join(d, "web"))
        for key in ("tsa_host_key", "worker_key"):
            subprocess.run([BIN, "generate-key", "-t", "ssh", "-f", os.path.join(d, key)],
                           check=True, stdout=subprocess.DEVNULL)
        self.log = open(os.path.join(d, "log"), "w+")
        self.proc = subprocess.Popen(
            [BIN, "web", "--bind-ip", "127.0.0.1", "--bind-port", "0",
             "--tsa-bind-ip", "127.0.0.1", "--tsa-bind-port", "0",
             "--prometheus-bind-ip", "127.0.0.1", "--prometheus-bind-port", "0",
             "--tsa-host-key", os.path.join(d, "tsa_host_key"),
             "--tsa-authorized-keys", os.path.join(d, "worker_key.pub"),
             "--add-local-user", "test:test", "--main-team-local-user", "test",
             *self.store],
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.url = self._wait_for("web listening on (\\S+)")
        self.metrics = self._wait_for("prometheus listening on (\\S+)")
        tsa = self._wait_for("tsa listening on (\\S+)")
        self.worker_log = open(os.path.join(d, "worker.log"), "w+")
        self.worker_dir = os.path.join(d, "worker")
        self.worker = subprocess.Popen(
            [BIN, "worker", "--name", "w", "--work-dir", self.worker_dir,
             "--tsa-host", tsa, "--tsa-public-key", os.path.join(d, "tsa_host_key.pub"),
             "--tsa-worker-private-key", os.path.join(d, "worker_key"),
             "--peer-address", "127.0.0.1", "--bind-ip", "127.0.0.1", "--bind-port", "0",
             "--baggageclaim-bind-ip", "127.0.0.1", "--baggageclaim-bind-port", "0"],
            stdout=subprocess.DEVNULL, stderr=self.worker_log)
        self.login()
        wait_until("the worker running",
                   lambda: [w["state"] for w in self.get("/api/v1/workers")] == ["running"], 60, 0.1)

    def stop(self):
        """The worker first: it destroys its containers and unmounts its volumes."""
        self.terminate(self.worker, "the worker")
        self.terminate(self.proc, "the web node")
        drop_schema(self.store)
        self.dir.cleanup()


def with_quickstart(body):
    """Runs `body(qs)` on a fresh Quickstart (with SPLIT=1, a WebAndWorker: its CPU and RSS
    are the web node's alone); on a broken scenario prints the server's last log lines;
    stops the server whatever happened."""
    qs = WebAndWorker() if os.environ.get("SPLIT") == "1" else Quickstart()
    try:
        body(qs)
    except SystemExit:
        print(qs.tail(), file=sys.stderr)
        raise
    finally:
        qs.stop()


def window(qs, seconds, counter=None):
    """CPU % of the web process and `counter`'s rate over `seconds`."""
    c0, t0 = qs.cpu_seconds(), time.monotonic()
    m0 = qs.metric(counter) if counter else 0
    time.sleep(seconds)
    m1 = qs.metric(counter) if counter else 0
    c1, t1 = qs.cpu_seconds(), time.monotonic()
    return (c1 - c0) / (t1 - t0) * 100, (m1 - m0) / (t1 - t0)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def api_load(qs, path, clients, seconds):
    times, stop = [], time.monotonic() + seconds
    lock = threading.Lock()

    def client():
        c = qs.conn()
        while time.monotonic() < stop:
            t = time.monotonic()
            qs.request(c, "GET", path)
            with lock:
                times.append(time.monotonic() - t)
        c.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(times) / seconds, pct(times, 0.5) * 1000


def wait_until(what, check, limit=600, every=0.02):
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"never happened: {what}")
        time.sleep(every)


def rss_while_polled(qs, seconds, every):
    """The web process's RSS (MB), sampled every `every` seconds while 16 clients poll
    `/api/v1/jobs` for `seconds`, and once more when they have stopped."""
    samples = []
    poll = threading.Thread(target=api_load, args=(qs, "/api/v1/jobs", 16, seconds))
    poll.start()
    while poll.is_alive():
        samples.append(qs.rss_mb())
        time.sleep(every)
    poll.join()
    samples.append(qs.rss_mb())
    return samples


def polled_rss(qs, seconds):
    """RSS twice a second while 16 clients poll (see rss_while_polled): (first, highest,
    last)."""
    samples = rss_while_polled(qs, seconds, 0.5)
    return samples[0], max(samples), samples[-1]


def set_checked_pipelines(qs, n):
    """Sets pipelines p1..pn of `pipeline_yml()` and waits for their resources' first
    checks."""
    for p in range(1, n + 1):
        qs.set_pipeline(f"p{p}", pipeline_yml())
    wait_until("every resource's first check",
               lambda: qs.metric("concourse_resource_checks_total") >= 3 * n, 900, 0.5)


def build_done(qs, build_id):
    return qs.get(f"/api/v1/builds/{build_id}")["status"] not in ("pending", "started")


def trigger_latency(qs):
    qs.set_pipeline("echo", ECHO)
    path = "/api/v1/teams/main/pipelines/echo/jobs/echo/builds"
    warm = qs.post(path)["id"]
    wait_until("the warm-up build", lambda: build_done(qs, warm))
    times = []
    for _ in range(RUNS):
        t0 = time.monotonic()
        build = qs.post(path)["id"]
        c = qs.conn()
        c.request("GET", f"/api/v1/builds/{build}/events",
                  headers={"Authorization": "Bearer " + qs.token})
        r = c.getresponse()
        while True:
            line = r.readline()
            if not line:
                sys.exit(f"build {build}'s events ended without `end`")
            if line.startswith(b"event: end"):
                break
        c.close()
        times.append((time.monotonic() - t0) * 1000)
        status = qs.get(f"/api/v1/builds/{build}")["status"]
        if status != "succeeded":
            sys.exit(f"echo build {build} {status}")
    return pct(times, 0.5), pct(times, 0.9)


def burst(qs, name, pipelines, jobs):
    """Seconds from triggering every job of `pipelines` pipelines of `jobs` independent
    echo jobs until the last build succeeded."""
    names = [f"{name}{p}" for p in range(pipelines)]
    for n in names:
        qs.set_pipeline(n, independent_yml(jobs))

    def listed():
        # A few pipelines are asked one by one: polling every job of the node (1 MB at
        # 2,000 jobs) would load the web node that is being measured.
        if len(names) <= 10:
            return [j for n in names for j in qs.get(f"/api/v1/teams/main/pipelines/{n}/jobs")]
        return [j for j in qs.get("/api/v1/jobs") if j["pipeline_name"] in names]

    before = {(j["pipeline_name"], j["name"]): (j.get("finished_build") or {}).get("id")
              for j in listed()}
    t0 = time.monotonic()
    for n in names:
        for j in range(jobs):
            qs.post(f"/api/v1/teams/main/pipelines/{n}/jobs/e{j}/builds")

    def done():
        new = [j.get("finished_build") or {} for j in listed()]
        new = [b for b in new if b.get("id") is not None
               and b["id"] != before.get((b["pipeline_name"], b["job_name"]))]
        if any(b["status"] != "succeeded" for b in new):
            sys.exit(f"a {name} build did not succeed: {[b['status'] for b in new]}")
        return len(new) == pipelines * jobs

    wait_until(f"every {name} build", done, 900, 0.1 if len(names) <= 10 else 1.0)
    return time.monotonic() - t0


def chain_hop(qs):
    """The chain's first round, from job-1's success to job-N's: each hop is a scheduling
    decision on a new `passed` version plus one build."""
    t0 = time.monotonic()
    qs.set_pipeline("chain", pipeline_yml(chained_trigger=True))
    jobs = "/api/v1/teams/main/pipelines/chain/jobs"

    def succeeded():
        status = [(j.get("finished_build") or {}).get("status") for j in qs.get(jobs)]
        if any(s not in (None, "succeeded") for s in status):
            sys.exit(f"a chain build did not succeed: {status}")
        return [s == "succeeded" for s in status]

    wait_until("the chain's first job", lambda: succeeded()[0])
    first = time.monotonic()
    wait_until("the chain's last job", lambda: all(succeeded()))
    last = time.monotonic()
    return (last - first) * 1000 / (CHAIN - 1), (first - t0) * 1000


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"{BIN} is not built")
    rows = []
    qs = Quickstart()
    try:
        yml = pipeline_yml()
        for p in range(1, PIPELINES + 1):
            qs.set_pipeline(f"p{p}", yml)
        jobs = len(qs.get("/api/v1/jobs"))
        t0 = time.monotonic()
        wait_until("every resource's first check",
                   lambda: qs.metric("concourse_resource_checks_total") >= 3 * PIPELINES, 900, 0.5)
        rows.append((f"first checks of {3 * PIPELINES} resources", f"{time.monotonic() - t0:.0f} s"))
        time.sleep(MEASURE)  # what the checks started settles
        cpu, sps = window(qs, MEASURE, "concourse_db_queries_total")
        rows.append((f"idle, {PIPELINES} pipelines unpaused: web CPU", f"{cpu:.2f} %"))
        rows.append(("idle: statements/s", f"{sps:.1f}"))
        rows.append(("idle: web RSS", f"{qs.rss_mb():.1f} MB"))
        rate, p50 = api_load(qs, "/api/v1/jobs", 1, MEASURE)
        rows.append((f"GET /api/v1/jobs ({jobs} jobs), 1 client", f"p50 {p50:.1f} ms, {rate:.0f} req/s"))
        rate, p50 = api_load(qs, "/api/v1/jobs", 16, MEASURE)
        rows.append((f"GET /api/v1/jobs ({jobs} jobs), 16 clients", f"p50 {p50:.1f} ms, {rate:.0f} req/s"))
        resources = len(qs.get("/api/v1/resources"))
        rate, p50 = api_load(qs, "/api/v1/resources", 1, MEASURE)
        rows.append((f"GET /api/v1/resources ({resources}), 1 client", f"p50 {p50:.1f} ms, {rate:.0f} req/s"))
        rate, p50 = api_load(qs, "/api/v1/teams/main/pipelines/p1/jobs", 16, MEASURE)
        rows.append(("a pipeline's jobs, 16 clients", f"p50 {p50:.1f} ms, {rate:.0f} req/s"))
        p50, p90 = trigger_latency(qs)
        rows.append((f"trigger -> succeeded, one task ({RUNS} builds)", f"p50 {p50:.0f} ms, p90 {p90:.0f} ms"))
        one = min(burst(qs, "single", 1, 1) for _ in range(3))
        ten = sorted(burst(qs, f"par{r}-", 1, 10) for r in range(3))[1]
        rows.append(("10 builds triggered together: all succeeded", f"{ten * 1000:.0f} ms ({ten / one:.1f}x one build's {one * 1000:.0f} ms)"))
        runnable = burst(qs, "runnable", PIPELINES, 10)
        rows.append((f"{PIPELINES * 10} jobs runnable at once: all succeeded", f"{runnable:.1f} s"))
        hop, first = chain_hop(qs)
        rows.append((f"`passed` chain of {CHAIN}: per hop", f"{hop:.0f} ms (set-pipeline to first job done: {first:.0f} ms)"))
        first, high, last = polled_rss(qs, 3 * MEASURE)
        rows.append((f"web RSS, {len(qs.get('/api/v1/pipelines'))} pipelines, builds above, 16 clients polling",
                     f"{first:.1f} MB at first, {high:.1f} MB at most, {last:.1f} MB after {3 * MEASURE:.0f} s"))
        checks0 = qs.metric("concourse_resource_checks_total")
        per = 100
        for i in range(0, CHECKED, per):
            qs.set_pipeline(f"checked{i}", checked_yml(min(per, CHECKED - i), i))
        wait_until("the first checks",
                   lambda: qs.metric("concourse_resource_checks_total") - checks0 >= CHECKED, 600, 0.5)
        cpu, rate = window(qs, max(MEASURE, 10), "concourse_resource_checks_total")
        rows.append((f"{CHECKED} resources at check_every 10s: checks/s (offered {CHECKED / 10:.0f}/s)", f"{rate:.1f}"))
        rows.append(("  web CPU meanwhile", f"{cpu:.1f} %"))
        rows.append((f"web RSS at the end ({CHECKED} more resources checking)", f"{qs.rss_mb():.1f} MB"))
    except SystemExit:
        print(qs.tail(), file=sys.stderr)
        raise
    finally:
        table(rows)
        qs.stop()


def table(rows):
    if not rows:
        return
    width = max(len(r[0]) for r in rows)
    print(f"| {'what':<{width}} | figure |")
    print(f"| {'-' * width} | --- |")
    for what, figure in rows:
        print(f"| {what:<{width}} | {figure} |", flush=True)


if __name__ == "__main__":
    main()
