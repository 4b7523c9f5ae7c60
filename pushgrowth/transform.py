"""Plain helpers around the dbt project: partition vars and the Parquet hand-off of marts.

DuckDB allows one writer per file. dbt is the warehouse's only writer: its runs share a single-slot Dagster pool
(`warehouse`, for runs the daemon launches) and hold an OS file lock (`<home>/warehouse.lock`) while they build
and export, so runs from any process (the daemon, `pushgrowth simulate`'s workers, a test) wait for each other
instead of failing on DuckDB's lock. Python assets never open the warehouse: after each dbt build, the marts
they read are exported, one partition at a time, to the lake (the `MARTS` datasets of `pushgrowth.storage`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from filelock import FileLock

from pushgrowth.domain import COUPON_VALIDITY_DAYS, MATURITY_DAYS
from pushgrowth.storage import MARTS
from pushgrowth.storage import lake as store

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
"""The dbt installed beside this Python: PATH may not include the virtualenv's bin folder."""
EXPORTED_MARTS = ("user_features", "lifecycle_segments", "audiences", "decision_log", "campaign_daily_performance")
"""Marts that Python assets read, exported to the lake after each build."""
REVISED_MARTS = {"decision_log": MATURITY_DAYS, "campaign_daily_performance": COUPON_VALIDITY_DAYS}
"""Marts whose recent partitions a build revises as outcomes arrive: the build re-exports that many past days."""


WAREHOUSE_LOCK_TIMEOUT = 1800
RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})
"""The dbt events a build hands on (the ones dagster-dbt turns into materializations and check results); the
other events of a build (hundreds of debug lines) are only written to dbt's log file."""


def warehouse_lock(home) -> FileLock:
    """The warehouse's writer lock: hold it while dbt builds and while its marts are exported."""
    home.root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(home.root / "warehouse.lock"), timeout=WAREHOUSE_LOCK_TIMEOUT)


def _project_mtime(project_dir: Path = DBT_PROJECT_DIR) -> float:
    """When the dbt project's files last changed."""
    sources = [project_dir / "dbt_project.yml", project_dir / "profiles.yml",
               *(project_dir / "models").rglob("*"), *(project_dir / "macros").rglob("*")]
    return max(p.stat().st_mtime for p in sources)


def parse_project(force: bool = False) -> Path:
    """Write `target/manifest.json` when it is missing (a fresh checkout) or older than any project file."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    stale = not manifest.exists() or _project_mtime() > manifest.stat().st_mtime
    if force or stale:
        done = subprocess.run(
            [DBT_EXECUTABLE, "parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
             "--quiet"], env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}, capture_output=True,
            text=True)
        if done.returncode != 0:
            raise RuntimeError(f"dbt parse of {DBT_PROJECT_DIR} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return manifest


def dbt_vars(country: str, date: dt.date) -> dict[str, str]:
    """The vars that make dbt build exactly one (country, date) partition."""
    if not country or not country.isupper():
        raise ValueError(f"dbt_vars: country must be a site code like 'MLB', got {country!r}")
    return {"country": country, "date": date.isoformat()}


def export_marts(warehouse: Path, lake: Path, country: str, date: dt.date,
                 models: tuple[str, ...] = EXPORTED_MARTS) -> dict[str, int]:
    """Copy one partition of each mart from the warehouse to the lake (and the revised days before it, for the
    marts in `REVISED_MARTS`); returns the rows of the partition itself per model."""
    rows = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for model in models:
            for back in range(REVISED_MARTS.get(model, 0), -1, -1):
                day = date - dt.timedelta(days=back)
                query = f"select * from main.{model} where country = $country and date = $day order by all"
                table: pa.Table = con.sql(query, params={"country": country, "day": day}).to_arrow_table()
                if back and not table.num_rows:
                    continue  # nothing decided that day (or before the first day)
                store.write(lake, MARTS[model], country, day, table)
            rows[model] = table.num_rows
    return rows


@dataclass
class DbtBuild:
    """What one in-process `dbt build` did: its structured events (dicts shaped like dbt's JSON log lines, which
    dagster-dbt turns into Dagster events) and, when it failed, what failed."""

    success: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class InProcessDbt:
    """dbt-core run inside this Python process, with its project parsed once per home folder.

    A `dbt build` subprocess per partition spends about 3 s importing dbt and 3 s re-parsing the project (the
    partition's vars change every run, and changed vars force a full parse) around about 4 s of SQL. Here the
    parsed manifest is kept and reused: partition vars are only read when SQL is compiled (the models' filters
    in macros/partitions.sql, the tests' partition filter in macros/tests.sql), so one manifest serves every
    partition. The sources' locations name the home folder at parse time, hence one manifest per home folder;
    an edit of the project parses it again. Not thread-safe: one build at a time per process (the warehouse's
    writer lock is held around it anyway).
    """

    _manifests: dict[tuple[str, str, float], Any] = {}

    def __init__(self, home, project_dir: Path = DBT_PROJECT_DIR):
        self.home, self.project_dir = home, Path(project_dir)

    def _args(self) -> list[str]:
        return ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.project_dir),
                "--target-path", str(self.home.dbt / "target"), "--log-path", str(self.home.dbt / "logs")]

    def manifest(self):
        """The project parsed for this home folder (parsed on first use, and again after an edit)."""
        from dbt.cli.main import dbtRunner

        key = (str(self.home.root), str(self.project_dir), _project_mtime(self.project_dir))
        if key not in self._manifests:
            with _home_env(self.home):
                result = dbtRunner().invoke(["parse", *self._args(), "--quiet"])
            if not result.success:
                raise RuntimeError(f"dbt parse of {self.project_dir} for {self.home.root} failed: {result.exception}")
            self._manifests.clear()  # one home folder per process is the rule; keep memory flat
            self._manifests[key] = result.result
        return self._manifests[key]

    def build(self, vars: dict[str, str], extra: Sequence[str] = ()) -> DbtBuild:
        """`dbt build --vars VARS EXTRA...` (unit tests excluded: they test SQL logic and run in the test suite).

        Only the result events are kept (`RESULT_EVENTS`); dbt's log file gets info-level lines (its debug lines,
        every statement and connection, cost more to format than the SQL takes on a small partition)."""
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_dict

        manifest = self.manifest()
        events: list[dict[str, Any]] = []

        def keep(msg) -> None:
            if msg.info.name in RESULT_EVENTS:
                events.append(msg_to_dict(msg))

        runner = dbtRunner(manifest=manifest, callbacks=[keep])
        args = ["build", "--vars", json.dumps(vars), "--exclude-resource-type", "unit_test",
                "--log-level-file", "info", *self._args(), *extra]
        try:
            with _home_env(self.home):
                result = runner.invoke(args)
        finally:
            _release_duckdb()
        if result.exception is not None:
            return DbtBuild(False, events, [f"dbt build {json.dumps(vars)}: {result.exception}"])
        errors = [f"{r.node.resource_type} {r.node.name}: {r.status} ({r.message})"
                  for r in getattr(result.result, "results", []) if str(r.status) in ("error", "fail")]
        return DbtBuild(bool(result.success), events, errors)


@contextlib.contextmanager
def _home_env(home) -> Iterator[None]:
    """PUSHGROWTH_HOME (read by dbt's profile and sources) set to the home folder while dbt runs."""
    before = os.environ.get("PUSHGROWTH_HOME")
    os.environ["PUSHGROWTH_HOME"] = str(home.root)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")  # no network: tracking would wait on it
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PUSHGROWTH_HOME", None)
        else:
            os.environ["PUSHGROWTH_HOME"] = before


def _release_duckdb() -> None:
    """Close the warehouse file that dbt-duckdb keeps open in this process after a build (its `keep_open`), so
    other processes, and read-only connections of this one, can open it."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()
