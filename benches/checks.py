#!/usr/bin/env python3
"""scale.py's checks row alone: CHECKED mock resources of distinct sources (so as many
check containers) at `check_every: EVERY` seconds (10 unless given) on a fresh quickstart,
whose worker keeps 250 containers unless QS_FLAGS raises its cap; then checks/s and the web
node's CPU over two 20 s windows, and how many containers the worker holds at the end.
Offering more than the node keeps up with (a short EVERY) measures its ceiling.

SPLIT=1 runs a web node and a worker apart and reads the web node's CPU alone.

Run:  BIN=target/release/concourse CHECKED=1000 [EVERY=10] [SPLIT=1] python3 benches/checks.py
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402


def main():
    checked = int(os.environ.get("CHECKED", 1000))
    every = int(os.environ.get("EVERY", 10))

    def run(qs):
        counter = "concourse_resource_checks_total"
        t0 = time.monotonic()
        for i in range(0, checked, 100):
            qs.set_pipeline(f"checked{i}", scale.checked_yml(min(100, checked - i), i, every))
        scale.wait_until("the first checks", lambda: qs.metric(counter) >= checked, 600, 0.5)
        print(f"first checks of {checked}: {time.monotonic() - t0:.0f} s")
        for _ in range(2):
            cpu, rate = scale.window(qs, 20, counter)
            print(f"checks/s {rate:.1f} (offered {checked / every:.0f}/s), web CPU {cpu:.1f} %, "
                  f"RSS {qs.rss_mb():.1f} MB")
        held = len(os.listdir(os.path.join(qs.worker_dir, "containers")))
        print(f"containers on the worker: {held}")

    scale.with_quickstart(run)

if __name__ == "__main__":
    main()
