"""Scenarios 4 and 5 on APScheduler's SQLAlchemyJobStore: SQLite, PostgreSQL, MySQL/MariaDB.

As jobstore-sql/benches/store.rs (the scenarios are store_common.py). The servers are
SCHEDULER_TEST_POSTGRES_URL and SCHEDULER_TEST_MYSQL_URL (else the local defaults); SQLite is
a file in the temporary directory. Each dialect gets a table of its own, dropped at the end.
Usage: store_sql.py [--quick]
"""

import os
import pickle
import sys
import tempfile
import time

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import create_engine, text

from store_common import Backend, run


def sqlalchemy_url(url, driver):
    """postgres://... as postgresql+psycopg2://..., mysql://... as mysql+pymysql://..."""
    scheme, rest = url.split("://", 1)
    return f"{driver}://{rest}"


def setting(url, sql):
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            value = connection.execute(text(sql)).scalar()
        engine.dispose()
        return str(value)
    except Exception:  # noqa: BLE001 - shown as unknown, as the Rust side does
        return "-"


def bulk_add(store, jobs):
    rows = [{"id": job.id, "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
             "job_state": pickle.dumps(job.__getstate__(), store.pickle_protocol)}
            for job in jobs]
    with store.engine.begin() as connection:
        connection.execute(store.jobs_t.insert(), rows)


def backend(key, label, url, table, server, cleanup=None):
    def open_store():
        return SQLAlchemyJobStore(url=url, tablename=table)

    def drop():
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
        if cleanup:
            cleanup()

    return Backend(key, label, server, open_store, bulk_add, drop)


def main():
    argv = sys.argv[1:]
    table = f"bench_py_{os.getpid()}_{time.time_ns() // 1000}"

    path = os.path.join(tempfile.gettempdir(), f"apscheduler-{table}.sqlite")

    def remove_file():
        for suffix in ["", "-journal", "-wal", "-shm"]:
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass

    run(backend("sqlite", "SQLite", f"sqlite:///{path}", table,
                "SQLite file, synchronous FULL", remove_file), argv)

    pg = sqlalchemy_url(os.environ.get("SCHEDULER_TEST_POSTGRES_URL",
                                       "postgres://postgres@127.0.0.1:5432/test"),
                        "postgresql+psycopg2")
    server = (f"PostgreSQL, synchronous_commit={setting(pg, 'SHOW synchronous_commit')}, "
              f"fsync={setting(pg, 'SHOW fsync')}")
    run(backend("postgres", "PostgreSQL", pg, table, server), argv)

    my = sqlalchemy_url(os.environ.get("SCHEDULER_TEST_MYSQL_URL",
                                       "mysql://root@127.0.0.1:3306/test"), "mysql+pymysql")
    flush = setting(my, "SELECT CAST(@@innodb_flush_log_at_trx_commit AS CHAR)")
    server = (f"MariaDB/MySQL {setting(my, 'SELECT VERSION()')}, "
              f"innodb_flush_log_at_trx_commit={flush}")
    run(backend("mysql", "MySQL/MariaDB", my, table, server), argv)


if __name__ == "__main__":
    main()
