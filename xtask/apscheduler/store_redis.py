"""Scenarios 4 and 5 on APScheduler's RedisJobStore, as jobstore-redis/benches/store.rs (the
scenarios are store_common.py). The server is SCHEDULER_TEST_REDIS_URL (default
redis://127.0.0.1:6379/); the keys it writes (prefix bench.py.<random>.) are deleted at the end.
Usage: store_redis.py [--quick]
"""

import os
import pickle
import sys
import uuid
from urllib.parse import urlparse

from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.util import datetime_to_utc_timestamp
from redis import Redis

from store_common import Backend, run


def main():
    url = urlparse(os.environ.get("SCHEDULER_TEST_REDIS_URL", "redis://127.0.0.1:6379/"))
    connect = dict(host=url.hostname or "127.0.0.1", port=url.port or 6379,
                   db=int(url.path.strip("/") or 0))
    if url.password:
        connect["password"] = url.password
    prefix = f"bench.py.{uuid.uuid4().hex}."
    client = Redis(**connect)

    def config(name):
        try:
            return client.config_get(name).get(name, "-")
        except Exception:  # noqa: BLE001 - shown as unknown, as the Rust side does
            return "-"

    server = f"Redis, appendonly={config('appendonly')}, appendfsync={config('appendfsync')}"

    def open_store():
        return RedisJobStore(jobs_key=prefix + "jobs", run_times_key=prefix + "run_times",
                             **connect)

    def bulk_add(store, jobs):
        with store.redis.pipeline() as pipe:
            for job in jobs:
                pipe.hset(store.jobs_key, job.id,
                          pickle.dumps(job.__getstate__(), store.pickle_protocol))
                pipe.zadd(store.run_times_key,
                          {job.id: datetime_to_utc_timestamp(job.next_run_time)})
            pipe.execute()

    def cleanup():
        keys = client.keys(prefix + "*")
        if keys:
            client.delete(*keys)

    run(Backend("redis", "Redis", server, open_store, bulk_add, cleanup), sys.argv[1:])


if __name__ == "__main__":
    main()
