#!/usr/bin/env python3
"""scale.py's "jobs runnable at once" row alone: N pipelines of 10 independent one-task
jobs, every job triggered at once, timed until the last build succeeded; with the
quickstart process's CPU seconds meanwhile (its children, the containers' processes, are
not counted) and the whole machine's (everything but idle and iowait: containers, kernel
workers, and whatever else runs on the machine). PERF=<file> records the whole machine (`perf record -a -g`) meanwhile.

Run:  BIN=target/release/concourse N=200 python3 benches/runnable.py
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402


def machine_busy():
    """CPU seconds the machine spent busy since boot (all CPUs; not idle, not iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / scale.HZ


def main():
    n = int(os.environ.get("N", 200))

    def run(qs):
        perf = None
        if os.environ.get("PERF"):
            perf = subprocess.Popen(["perf", "record", "-g", "-a", "-F", "499", "-o", os.environ["PERF"]],
                                    stderr=subprocess.DEVNULL)
            time.sleep(1)
        c0, m0 = qs.cpu_seconds(), machine_busy()
        took = scale.burst(qs, "runnable", n, 10)
        cpu, machine = qs.cpu_seconds() - c0, machine_busy() - m0
        if perf:
            perf.send_signal(2)
            perf.wait()
        print(f"{n * 10} runnable: {took:.1f} s, quickstart CPU {cpu:.1f} s, "
              f"machine CPU {machine:.1f} s, RSS {qs.rss_mb():.1f} MB")

    scale.with_quickstart(run)

if __name__ == "__main__":
    main()
