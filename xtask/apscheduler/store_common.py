"""Scenarios 4 and 5 on APScheduler's persistent stores, as xtask/bench-support/store_scenarios.rs.

The same scenarios and parameters as the Rust store benches: adds through a running scheduler
(one at a time, 8 concurrent callers; APScheduler has no batch add), the due fetch and commit
rate on the store alone, a restart with stored jobs all due, and jobs due at once with the
default misfire grace time (1 s). A thread pool of 20 runs the jobs on both sides.

Jobs the scenarios store ahead (not measured) are written in bulk by `Backend.bulk_add`, the
rows APScheduler's own `add_job` writes, so that setting up 10,000 jobs does not take minutes.
Logging is left unconfigured, so a missed run's warning goes to standard error through
Python's last resort, as the Rust side's warnings do without a tracing subscriber.
"""

import os
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from common import count, emit

WORKERS = 20
CALLERS = 8
FETCH_BATCH = 1_000
ADDS = "4. persistent stores: adds, due fetch, burst"
RESTART = "5. restart with stored jobs all due"

lock = threading.Lock()
starts = []


def tick(i):
    now = time.perf_counter()
    with lock:
        starts.append(now)


def executed():
    with lock:
        return len(starts)


def sizes(argv):
    if argv == ["--quick"]:
        # As the Rust side's `Sizes` (store_scenarios.rs), which says why these.
        return dict(one_at_a_time=200, concurrent=400, fetch=500, restart=10_000, burst=1_000)
    if argv:
        sys.exit("usage: [--quick]")
    return dict(one_at_a_time=2_000, concurrent=10_000, fetch=10_000, restart=10_000,
                burst=10_000)


class Backend:
    """One store: `key`, `label` and `server` as the Rust bench names them; `open()` a new
    store object on the bench's table, prefix or collection; `bulk_add(store, jobs)` writes
    jobs as APScheduler's `add_job` would; `cleanup()` removes what the bench made;
    `lead_per_job` (seconds) is the time allowed per job to write a burst before it is due."""

    def __init__(self, key, label, server, open, bulk_add, cleanup, lead_per_job=200e-6):
        self.key, self.label, self.server = key, label, server
        self.open, self.bulk_add, self.cleanup = open, bulk_add, cleanup
        self.lead_per_job = lead_per_job


def scheduler_on(store):
    return BackgroundScheduler(jobstores={"default": store},
                               executors={"default": ThreadPoolExecutor(WORKERS)},
                               timezone=timezone.utc)


def started_store(backend):
    """A store started outside a running scheduler (for bulk writes and the fetch scenario)."""
    store = backend.open()
    store.start(BackgroundScheduler(timezone=timezone.utc), "default")
    store.remove_all_jobs()
    return store


def make_jobs(n, at, grace):
    owner = BackgroundScheduler(timezone=timezone.utc)
    return [Job(owner, id=f"job-{i:06}", func=tick, args=(i,), kwargs={}, name="tick",
                trigger=DateTrigger(at, timezone.utc), executor="default",
                misfire_grace_time=grace, coalesce=True, max_instances=1, next_run_time=at)
            for i in range(n)]


def selected(var, name):
    """Whether the comma-separated list in the environment variable `var` names `name` (or
    is unset): `STORE_BENCH_SCENARIOS` and `STORE_BENCH_BACKENDS`, as on the Rust side."""
    names = os.environ.get(var)
    return names is None or name in [n.strip() for n in names.split(",")]


def run(backend, argv):
    size = sizes(argv)
    if not selected("STORE_BENCH_BACKENDS", backend.key):
        return
    print(f"{backend.label} ({backend.server}); thread pool of {WORKERS}; sizes {size}",
          flush=True)
    scenarios = [("adds", lambda: adds(backend, size)),
                 ("fetch", lambda: fetch_and_commit(backend, size["fetch"])),
                 ("restart", lambda: restart(backend, size["restart"])),
                 ("burst", lambda: burst(backend, size["burst"]))]
    try:
        for name, scenario in scenarios:
            if selected("STORE_BENCH_SCENARIOS", name):
                scenario()
    finally:
        backend.cleanup()


def adds(backend, size):
    store = started_store(backend)
    scheduler = scheduler_on(backend.open())
    scheduler.start()
    far = datetime.now(timezone.utc) + timedelta(days=365)

    def report(case, what, n, secs):
        rate = n / secs
        print(f"{backend.label}: {what}: {n} jobs in {secs:.3f} s, {rate:.0f} jobs/s", flush=True)
        emit(f"store.{backend.key}.add.{case}", ADDS, f"{backend.label}: {what}",
             f"{n} date jobs; scheduler running; {backend.server}", "jobs/s", "higher", rate)

    def add(i):
        scheduler.add_job(tick, "date", run_date=far, args=[i], id=f"job-{i:06}")

    n = size["one_at_a_time"]
    started = time.perf_counter()
    for i in range(n):
        add(i)
    report("one", "add jobs one at a time", n, time.perf_counter() - started)
    store.remove_all_jobs()

    per_caller = size["concurrent"] // CALLERS

    def caller(c):
        for i in range(c * per_caller, (c + 1) * per_caller):
            add(i)

    threads = [threading.Thread(target=caller, args=(c,)) for c in range(CALLERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report("callers8", "add jobs, 8 concurrent callers", per_caller * CALLERS,
           time.perf_counter() - started)
    scheduler.shutdown(wait=True)
    store.remove_all_jobs()
    store.shutdown()


def fetch_and_commit(backend, n):
    """What APScheduler's loop does with the store per due job: get_due_jobs (all of them),
    then update_job for each."""
    store = started_store(backend)
    now = datetime.now(timezone.utc)
    backend.bulk_add(store, make_jobs(n, now - timedelta(seconds=1), 1))
    later = now + timedelta(days=1)
    started = time.perf_counter()
    committed = 0
    while True:
        due = store.get_due_jobs(now)
        if not due:
            break
        for job in due:
            job._modify(next_run_time=later)
            store.update_job(job)
        committed += len(due)
    secs = time.perf_counter() - started
    rate = committed / secs
    print(f"{backend.label}: due fetch + commit: {committed} jobs in {secs:.3f} s, "
          f"{rate:.0f} jobs/s", flush=True)
    emit(f"store.{backend.key}.fetch_commit.{n}", ADDS,
         f"{backend.label}: due jobs fetched and committed",
         f"{n} due jobs, each moved to a later run time; get_due_jobs, then update_job per "
         f"job; {backend.server}", "jobs/s", "higher", rate)
    store.remove_all_jobs()
    store.shutdown()


def restart(backend, n):
    store = started_store(backend)
    backend.bulk_add(store, make_jobs(n, datetime.now(timezone.utc) - timedelta(seconds=1),
                                      None))
    store.shutdown()
    with lock:
        starts.clear()
    scheduler = scheduler_on(backend.open())
    started = time.perf_counter()
    scheduler.start()
    deadline = started + 300
    while executed() < n and time.perf_counter() < deadline:
        time.sleep(0.005)
    scheduler.shutdown(wait=True)
    with lock:
        done = list(starts)
    if not done:
        print(f"{backend.label}: restart: no job ran in 300 s", flush=True)
        return
    first, last = min(done) - started, max(done) - started
    print(f"{backend.label}: restart with {n} due jobs: first run {first * 1e3:.1f} ms after "
          f"start, last {last:.3f} s ({len(done)} ran, {len(done) / last:.0f} executions/s)",
          flush=True)
    params = (f"{n} stored date jobs due 1 s ago, no misfire grace limit; from start(); "
              f"thread pool of {WORKERS}; {backend.server}")
    title = f"{backend.label}: restart with {count(n)} jobs due"
    emit(f"restart.{backend.key}.{n}.first", RESTART, f"{title}: to the first run", params,
         "ms", "lower", first * 1e3)
    emit(f"restart.{backend.key}.{n}.last", RESTART, f"{title}: to the last run", params,
         "s", "lower", last)
    started_store(backend).shutdown()


def burst(backend, n):
    """n jobs due at one instant in a running scheduler, default misfire grace (1 s). The
    jobs are written by another store object (as another process would), then the scheduler
    is woken, so the adding is not what is measured."""
    writer = started_store(backend)
    with lock:
        starts.clear()
    scheduler = scheduler_on(backend.open())
    missed = [0]

    def on_missed(event):
        with lock:
            missed[0] += 1

    scheduler.add_listener(on_missed, EVENT_JOB_MISSED)
    scheduler.start()
    lead = 2.0 + n * backend.lead_per_job
    due_perf = time.perf_counter() + lead
    due = datetime.now(timezone.utc) + timedelta(seconds=lead)
    backend.bulk_add(writer, make_jobs(n, due, 1))
    if time.perf_counter() > due_perf:
        print(f"{backend.label}: burst: writing the jobs took longer than the lead", flush=True)
    scheduler.wakeup()
    deadline = due_perf + 300
    while time.perf_counter() < deadline:
        with lock:
            if len(starts) + missed[0] >= n:
                break
        time.sleep(0.005)
    scheduler.shutdown(wait=True)
    with lock:
        done, lost = sorted(starts), missed[0]
    first = max(0.0, done[0] - due_perf) if done else 0.0
    last = max(0.0, done[-1] - due_perf) if done else 0.0
    rate = len(done) / max(last, 1e-6)
    print(f"{backend.label}: {n} jobs due at once, misfire grace 1 s: {len(done)} ran, {lost} "
          f"missed; first run {first * 1e3:.1f} ms after the due instant, last {last:.3f} s; "
          f"{rate:.0f} executions/s", flush=True)
    steps = " ".join(f"{max(0.0, t - due_perf):.2f}" for t in done[::1000])
    print(f"{backend.label}: burst: seconds after the due instant of runs 1, 1001, 2001, ...: "
          f"{steps}", flush=True)
    params = (f"{n} date jobs due at one instant, misfire grace 1 s (the default); scheduler "
              f"running; thread pool of {WORKERS}; {backend.server}")
    title = f"{backend.label}: {count(n)} jobs due at once"
    emit(f"burst.{backend.key}.{n}.rate", ADDS, f"{title}: executions/s", params,
         "executions/s", "higher", rate)
    emit(f"burst.{backend.key}.{n}.missed", ADDS, f"{title}: missed", params, "missed",
         "lower", lost)
    writer.remove_all_jobs()
    writer.shutdown()
