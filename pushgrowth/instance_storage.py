"""The Dagster instance's SQLite storage, with connections kept open between queries instead of one new engine
and one new connection per query.

Dagster's SQLite storages (`storage: sqlite` in dagster.yaml) build a new SQLAlchemy engine, and open a new
connection, for every query: a materialization, a check result or a step event costs about six of them. A
country-day of the loop writes about 300 events, and making engines (each with an empty cache of compiled
statements) and opening and closing connections was most of the time Dagster spent on them. Measured on a run of
20 assets with 20 checks (140 events): 1.35 s with the stock storage, 1.07 s with one engine per database file,
0.54 s with its connections pooled too.

Connections commit with `synchronous=NORMAL` (see `_synchronous_normal`). Otherwise nothing changes: every
query still runs in its own transaction, committed at once, so a pooled connection
holds no lock while it waits; several processes (the daemon, the webserver, the simulation's workers) share the
files exactly as with the stock storage, whose files and layout these are. A process keeps engines for the
`MAX_ENGINES` database files it used last (a run's event log is a file of its own) and closes the rest; an
engine is never used by another process than the one that made it. `<home>/dagster/dagster.yaml` selects this
storage (`storage: custom`, written by `pushgrowth.simulate.prepare_dagster_home`); a home folder without that
line works as before, only slower.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

MAX_ENGINES = 16
"""Database files a process keeps engines (and their open connections) for: the run storage, the index shard,
the schedules and the event logs of the last few runs."""
_ENGINES: OrderedDict[tuple[int, str], Engine] = OrderedDict()
_LOCK = threading.Lock()


def engine(conn_string: str, **connect_args) -> Engine:
    """The process's engine for a database file, with a small pool of connections kept open between queries.

    Keyed by process id too: an engine inherited across a fork is never used. The least recently used engine
    beyond `MAX_ENGINES` is disposed of (its idle connections closed; one in use closes when it is returned)."""
    key = (os.getpid(), conn_string)
    with _LOCK:
        found = _ENGINES.get(key)
        if found is None:
            found = _ENGINES[key] = create_engine(
                conn_string, poolclass=QueuePool, pool_size=1, max_overflow=8,
                connect_args={**connect_args, "check_same_thread": False})  # handed between threads, never shared
            event.listen(found, "connect", _synchronous_normal)
            while len(_ENGINES) > MAX_ENGINES:
                _, old = _ENGINES.popitem(last=False)
                old.dispose()
        else:
            _ENGINES.move_to_end(key)
    return found


def _synchronous_normal(dbapi_connection, _record) -> None:
    """`synchronous=NORMAL` on each new connection (Dagster puts the files in WAL mode): a commit no longer waits
    for the disk (0.37 ms against 0.04 ms a commit here, and a country-day commits ~1,800 times). SQLite's WAL
    mode stays consistent after any crash: a killed process loses nothing, a power loss may lose the last
    commits."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` (a file per run plus the index shard), with kept engines and connections."""

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            cached = engine(self.conn_string_for_shard(shard), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
            if shard not in self._initialized_dbs:
                self._initdb(cached)
                self._initialized_dbs.add(shard)
            with cached.connect() as conn, conn.begin():
                yield conn


class PooledSqliteRunStorage(SqliteRunStorage):
    """`SqliteRunStorage` (history/runs.db), with a kept engine and connections."""

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with engine(self._conn_string).connect() as conn, conn.begin():
            yield conn


class PooledSqliteStorage(DagsterSqliteStorage):
    """`storage: sqlite` with the pooled run and event log storages (schedules: the stock storage).

    Configured as `storage: {custom: {module: pushgrowth.instance_storage, class: PooledSqliteStorage,
    config: {base_dir: ...}}}`; the same folders and files as `storage: sqlite` with that `base_dir`."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return ConfigurableClassData(__name__, PooledSqliteEventLogStorage.__name__,
                                     yaml.dump({"base_dir": _event_logs_directory(self.base_dir)}))

    @property
    def run_storage_data(self) -> ConfigurableClassData | None:
        return ConfigurableClassData(__name__, PooledSqliteRunStorage.__name__,
                                     yaml.dump({"base_dir": _runs_directory(self.base_dir)}))

