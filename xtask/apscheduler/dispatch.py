"""Scenario 2 on APScheduler: N date jobs due at one instant, thread pool of W.

Executions per second from the due instant to the last completion, memory store, no misfire
grace limit, as executors/benches/dispatch.rs does. The jobs are added while the scheduler
is paused (APScheduler's faster way to add), then it resumes; when adding took longer
than the lead, the clock starts at the resume instead of the due instant.
Usage: dispatch.py --jobs N --workers W
"""

import argparse
import threading
import time
from datetime import datetime, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from common import count, emit

lock = threading.Lock()
done = 0
last_done = None
finished = threading.Event()


def tick(i, jobs):
    global done, last_done
    with lock:
        done += 1
        if done == jobs:
            last_done = time.time()
            finished.set()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()
    jobs, workers = args.jobs, args.workers

    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(workers)}, timezone=timezone.utc)
    scheduler.start(paused=True)
    lead = 1.0 + jobs * 20e-6
    due_epoch = time.time() + lead
    due = datetime.fromtimestamp(due_epoch, timezone.utc)
    for i in range(jobs):
        scheduler.add_job(tick, "date", run_date=due, args=[i, jobs], misfire_grace_time=None)
    start_epoch = max(due_epoch, time.time())
    scheduler.resume()
    finished.wait()
    elapsed = last_done - start_epoch
    scheduler.shutdown(wait=True)
    rate = jobs / elapsed
    print(f"thread pool of {workers} {jobs:>8} jobs  last done {elapsed * 1e3:8.1f} ms after "
          f"the due instant  {rate:10.0f} executions/s")
    emit(f"dispatch.threads{workers}.{jobs}", "2. jobs due at one instant",
         f"{count(jobs)} jobs due at once, thread pool of {workers}",
         "memory store; misfire grace: none; due instant to last completion",
         "executions/s", "higher", rate)


if __name__ == "__main__":
    main()
