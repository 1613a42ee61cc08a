#!/usr/bin/env python3
"""A `passed` chain's time per hop beside PIPELINES idle pipelines (issue 17's shape), alone.

scale.py measures the hop once, after its other scenarios (2,000 builds' containers still
being cleaned up); this runs only the hop, HOPS times, each on a new 10-job chain:
PIPELINES pipelines of scale.py's shape, their first checks, then (with RUNNABLE=1)
scale.py's 2,000-runnable burst, then the chains.

Run:  BIN=target/release/concourse PIPELINES=200 RUNNABLE=0 HOPS=4 python3 benches/chain_hop.py
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402


def hop(qs, name):
    qs.set_pipeline(name, scale.pipeline_yml(chained_trigger=True))
    jobs = f"/api/v1/teams/main/pipelines/{name}/jobs"

    def succeeded():
        status = [(j.get("finished_build") or {}).get("status") for j in qs.get(jobs)]
        if any(s not in (None, "succeeded") for s in status):
            sys.exit(f"a {name} build did not succeed: {status}")
        return [s == "succeeded" for s in status]

    scale.wait_until(f"{name}'s first job", lambda: succeeded()[0])
    first = time.monotonic()
    scale.wait_until(f"{name}'s last job", lambda: all(succeeded()))
    return (time.monotonic() - first) * 1000 / (scale.CHAIN - 1)


def main():
    n = scale.PIPELINES

    def run(qs):
        scale.set_checked_pipelines(qs, n)
        if os.environ.get("RUNNABLE", "0") == "1":
            print(f"{n * 10} runnable: {scale.burst(qs, 'runnable', n, 10):.1f} s")
        hops = [hop(qs, f"chain{i}") for i in range(int(os.environ.get("HOPS", 4)))]
        print(f"{n} pipelines: per hop " + ", ".join(f"{h:.0f}" for h in hops) + " ms")

    scale.with_quickstart(run)

if __name__ == "__main__":
    main()
