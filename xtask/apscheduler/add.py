"""Scenario 1 on APScheduler: add N date jobs to the memory store, scheduler running.

Prints jobs/s and the RSS growth per job, as jobstore-memory/benches/add_jobs.rs does.
Usage: add.py --jobs N
"""

import argparse
import time
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from common import count, emit, rss_bytes


def cancel_order(order_id):
    pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, required=True)
    n = parser.parse_args().jobs

    scheduler = BackgroundScheduler(timezone=timezone.utc)
    scheduler.start()
    far = datetime.now(timezone.utc) + timedelta(days=365)
    rss = rss_bytes()
    started = time.perf_counter()
    for i in range(n):
        scheduler.add_job(cancel_order, "date", run_date=far + timedelta(seconds=i),
                          kwargs={"order_id": i})
    secs = time.perf_counter() - started
    per_job = (rss_bytes() - rss) / n
    scheduler.shutdown(wait=False)
    print(f"scheduler {n:>9} jobs  {secs:8.3f} s  {n / secs:10.0f} jobs/s  {per_job:.0f} B/job")
    scenario = "1. add date jobs"
    params = "memory store; tokio executor; scheduler running"
    emit(f"add.running.{n}", scenario, f"add {count(n)} date jobs one by one",
         params.replace("tokio executor", "thread pool of 10"), "jobs/s", "higher", n / secs)
    emit(f"memory.{n}", scenario, f"memory per job, {count(n)} jobs",
         "RSS growth while adding / jobs", "B/job", "lower", per_job)


if __name__ == "__main__":
    main()
