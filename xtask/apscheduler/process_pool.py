"""Scenario 6 on APScheduler: a process pool of 2, 1,000 trivial jobs due at once, as
executors/benches/process_pool.rs: executions per second from the due instant to the last
completion, on a warm pool (both workers started), memory store, no misfire grace limit.
Three bursts per run, each printed; each burst is one figure (the xtask takes the median).
Usage: process_pool.py [--quick]
"""

import sys
import threading
import time
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.executors.pool import ProcessPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from common import emit

WORKERS = 2
JOBS = 1_000

lock = threading.Lock()
done = 0
last_done = None
target = 0
finished = threading.Event()


def noop():
    pass


def on_event(event):
    global done, last_done
    if event.exception:
        print(f"a run failed: {event.exception}", file=sys.stderr, flush=True)
    with lock:
        done += 1
        if done == target:
            last_done = time.perf_counter()
            finished.set()


def burst(scheduler, jobs):
    """Adds `jobs` jobs due at one instant (while paused), resumes; answers executions/s."""
    global done, target
    with lock:
        done, target = 0, jobs
    finished.clear()
    scheduler.pause()
    lead = 1.0 + jobs * 200e-6
    due_perf = time.perf_counter() + lead
    due = datetime.now(timezone.utc) + timedelta(seconds=lead)
    for _ in range(jobs):
        scheduler.add_job(noop, "date", run_date=due, misfire_grace_time=None)
    start = max(due_perf, time.perf_counter())
    scheduler.resume()
    finished.wait()
    return jobs / (last_done - start), last_done - start


def main():
    if sys.argv[1:] not in ([], ["--quick"]):
        sys.exit("usage: process_pool.py [--quick]")
    bursts = 1 if sys.argv[1:] == ["--quick"] else 3
    scheduler = BackgroundScheduler(executors={"default": ProcessPoolExecutor(WORKERS)},
                                    timezone=timezone.utc)
    scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    # Warm the pool: both workers started.
    burst(scheduler, 20)
    for _ in range(bursts):
        rate, secs = burst(scheduler, JOBS)
        print(f"process pool of {WORKERS}, {JOBS} trivial jobs due at once: {rate:.0f} "
              f"executions/s ({secs * 1e3:.1f} ms)", flush=True)
        emit(f"process_pool.{WORKERS}.{JOBS}", "6. process pool",
             f"{JOBS // 1000}k trivial jobs due at once, process pool of {WORKERS}",
             "warm pool; memory store; misfire grace: none; due instant to last completion",
             "executions/s", "higher", rate)
    scheduler.shutdown(wait=True)


if __name__ == "__main__":
    main()
