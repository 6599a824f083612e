"""Scenario 3 on APScheduler: start latency (p50 / p99 / max), as executors/benches/latency.rs.

--kind date: N date jobs spread evenly over the spread; --kind interval: N interval jobs
(1 s) starting together, F firings each. APScheduler's default executor (a thread pool of
10) runs them.
Usage: latency.py --kind date --jobs 1000 --spread-ms 5000
       latency.py --kind interval --jobs 200 --firings 3
"""

import argparse
import threading
import time
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from common import emit, percentile

INTERVAL_US = 1_000_000
lock = threading.Lock()
lateness_ms = []


def probe(scheduled_us, interval):
    late = time.time_ns() // 1000 - scheduled_us
    if interval:
        late %= INTERVAL_US
    with lock:
        lateness_ms.append(late / 1e3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["date", "interval"], default="date")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--spread-ms", type=int, default=5000)
    parser.add_argument("--firings", type=int, default=3)
    args = parser.parse_args()
    interval = args.kind == "interval"
    jobs = args.jobs or (200 if interval else 1000)

    scheduler = BackgroundScheduler(timezone=timezone.utc)
    scheduler.start()
    # Room to add every job before the first is due, even on a loaded machine.
    start_us = time.time_ns() // 1000 + 1_500_000
    start = datetime.fromtimestamp(start_us / 1e6, timezone.utc)
    for i in range(jobs):
        if interval:
            scheduler.add_job(probe, "interval", seconds=1, start_date=start,
                              args=[start_us, True], misfire_grace_time=None)
        else:
            # Microsecond offsets so instants do not line up with millisecond ticks.
            at_us = start_us + i * args.spread_ms * 1000 // jobs + i % 997
            at = datetime.fromtimestamp(at_us / 1e6, timezone.utc)
            # fromtimestamp may round a float; schedule exactly the instant the job reports.
            at_us = int(at.timestamp() * 1e6)
            scheduler.add_job(probe, "date", run_date=at, args=[at_us, False],
                              misfire_grace_time=None)
    expected = jobs * args.firings if interval else jobs
    while True:
        with lock:
            if len(lateness_ms) >= expected:
                break
        time.sleep(0.02)
    scheduler.shutdown(wait=True)
    ms = sorted(lateness_ms[:expected])
    p50, p99, top = percentile(ms, 0.50), percentile(ms, 0.99), ms[-1]
    if interval:
        title = f"start latency, {jobs} interval jobs (1 s) firing together"
        params = f"{args.firings} firings each; thread pool of 10"
    else:
        title = f"start latency, {jobs} date jobs over {args.spread_ms // 1000} s"
        params = "thread pool of 10"
    print(f"{title}: p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {top:.3f} ms")
    for stat, value in [("p50", p50), ("p99", p99), ("max", top)]:
        emit(f"latency.{args.kind}{jobs}.{stat}", "3. start latency", f"{title}: {stat}",
             params, "ms", "lower", value)


if __name__ == "__main__":
    main()
