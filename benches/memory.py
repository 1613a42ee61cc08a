#!/usr/bin/env python3
"""scale.py's RSS row alone, as a timeline: PIPELINES pipelines of scale.py's chain (their
first checks done), then its burst of PIPELINES x 10 builds, then 16 clients polling
`/api/v1/jobs` for 60 s (the quickstart process's RSS every 2 s), then 35 s with nothing
asked. The web node returns freed memory to the kernel every 30 s (src/memory.rs), so the
figure after the pause is what it holds, the polling ones what it works with.

SPLIT=1 runs `concourse web` (embedded store) and a `concourse worker` registered through
its TSA instead of quickstart, and follows the web process alone: issue 17's "web RSS".

Run:  BIN=target/release/concourse PIPELINES=200 [SPLIT=1] python3 benches/memory.py
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402

BIN = scale.BIN


class WebAndWorker(scale.Quickstart):
    """A web node and a worker in processes of their own, driven as scale.Quickstart is;
    `proc` (whose CPU and RSS are read) is the web node's."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
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
             "--data-dir", os.path.join(d, "web")],
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.url = self._wait_for("web listening on (\\S+)")
        self.metrics = self._wait_for("prometheus listening on (\\S+)")
        tsa = self._wait_for("tsa listening on (\\S+)")
        self.worker_log = open(os.path.join(d, "worker.log"), "w+")
        self.worker = subprocess.Popen(
            [BIN, "worker", "--name", "w", "--work-dir", os.path.join(d, "worker"),
             "--tsa-host", tsa, "--tsa-public-key", os.path.join(d, "tsa_host_key.pub"),
             "--tsa-worker-private-key", os.path.join(d, "worker_key"),
             "--peer-address", "127.0.0.1", "--bind-ip", "127.0.0.1", "--bind-port", "0",
             "--baggageclaim-bind-ip", "127.0.0.1", "--baggageclaim-bind-port", "0"],
            stdout=subprocess.DEVNULL, stderr=self.worker_log)
        self.login()
        scale.wait_until("the worker running",
                         lambda: [w["state"] for w in self.get("/api/v1/workers")] == ["running"], 60, 0.1)

    def stop(self):
        """The worker first: it destroys its containers and unmounts its volumes."""
        self.terminate(self.worker, "the worker")
        self.terminate(self.proc, "the web node")
        self.dir.cleanup()


def main():
    n = scale.PIPELINES

    def run(qs):
        scale.set_checked_pipelines(qs, n)
        print(f"{n} pipelines, first checks done: RSS {qs.rss_mb():.1f} MB", flush=True)
        took = scale.burst(qs, "runnable", n, 10)
        print(f"{n * 10} builds in {took:.1f} s: RSS {qs.rss_mb():.1f} MB", flush=True)
        samples = [round(mb) for mb in scale.rss_while_polled(qs, 60, 2)]
        print(f"16 clients polling /api/v1/jobs, RSS every 2 s (MB): {samples}", flush=True)
        time.sleep(35)
        print(f"35 s later: RSS {qs.rss_mb():.1f} MB")

    if os.environ.get("SPLIT") == "1":
        node = WebAndWorker()
        try:
            run(node)
        finally:
            node.stop()
    else:
        scale.with_quickstart(run)


if __name__ == "__main__":
    main()
