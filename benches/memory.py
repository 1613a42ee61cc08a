#!/usr/bin/env python3
"""scale.py's RSS row alone, as a timeline: PIPELINES pipelines of scale.py's chain (their
first checks done), then its burst of PIPELINES x 10 builds, then 16 clients polling
`/api/v1/jobs` for 60 s (the quickstart process's RSS every 2 s), then 35 s with nothing
asked. The web node returns freed memory to the kernel every 30 s (src/memory.rs), so the
figure after the pause is what it holds, the polling ones what it works with.

SPLIT=1 follows the web process alone (see scale.with_quickstart): issue 17's "web RSS".

Run:  BIN=target/release/concourse PIPELINES=200 [SPLIT=1] python3 benches/memory.py
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402

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

    scale.with_quickstart(run)


if __name__ == "__main__":
    main()
