"""Scenarios 4 and 5 on APScheduler's MongoDBJobStore, as jobstore-mongo/benches/store.rs (the
scenarios are store_common.py), against SCHEDULER_TEST_MONGO_URL (the nx-27017 server that
`cargo xtask bench` starts; about 12,000 inserts/s batched and 1,500 conditional updates/s is
that server's own ceiling). The bench's collection is dropped at the end.
Usage: store_mongo.py [--quick]
"""

import os
import pickle
import sys

from apscheduler.jobstores.mongodb import MongoDBJobStore
from apscheduler.util import datetime_to_utc_timestamp
from bson.binary import Binary
from pymongo import MongoClient

from store_common import Backend, run

DATABASE = "apscheduler_bench"


def main():
    url = os.environ.get("SCHEDULER_TEST_MONGO_URL",
                         "mongodb://127.0.0.1:27017/?directConnection=true")
    collection = f"bench_py_{os.getpid()}"
    client = MongoClient(url)

    def open_store():
        return MongoDBJobStore(database=DATABASE, collection=collection, host=url)

    def bulk_add(store, jobs):
        store.collection.insert_many([
            {"_id": job.id, "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
             "job_state": Binary(pickle.dumps(job.__getstate__(), store.pickle_protocol))}
            for job in jobs])

    def cleanup():
        client[DATABASE].drop_collection(collection)

    server = ("nx-27017, single-threaded, ~12k inserts/s and ~1.5k conditional updates/s "
              "ceiling")
    # nx-27017 writes a 10,000-job burst in seconds: 1 ms per job before it is due.
    run(Backend("mongo", "MongoDB (nx-27017)", server, open_store, bulk_add, cleanup,
                lead_per_job=1e-3), sys.argv[1:])


if __name__ == "__main__":
    main()
