"""Plain helpers around the dbt project: partition vars and the Parquet hand-off of marts.

DuckDB allows one writer per file. dbt is the warehouse's only writer: its runs share a single-slot Dagster pool
(`warehouse`, for runs the daemon launches) and hold an OS file lock (`<home>/warehouse.lock`) while they build
and export, so runs from any process (the daemon, `pushgrowth simulate`'s workers, a test) wait for each other
instead of failing on DuckDB's lock. Python assets never open the warehouse: after each dbt build, the marts
they read are exported, one partition at a time, to the lake
(`lake/marts/<model>/country=<C>/date=<D>/part-0.parquet`).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
from filelock import FileLock

from pushgrowth.domain import COUPON_VALIDITY_DAYS, MATURITY_DAYS
from pushgrowth.lake import write_partition

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
"""The dbt installed beside this Python: PATH may not include the virtualenv's bin folder."""
EXPORTED_MARTS = ("user_features", "lifecycle_segments", "audiences", "decision_log", "campaign_daily_performance")
"""Marts that Python assets read, exported to the lake after each build."""
REVISED_MARTS = {"decision_log": MATURITY_DAYS, "campaign_daily_performance": COUPON_VALIDITY_DAYS}
"""Marts whose recent partitions a build revises as outcomes arrive: the build re-exports that many past days."""


WAREHOUSE_LOCK_TIMEOUT = 1800


def warehouse_lock(home) -> FileLock:
    """The warehouse's writer lock: hold it while dbt builds and while its marts are exported."""
    home.root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(home.root / "warehouse.lock"), timeout=WAREHOUSE_LOCK_TIMEOUT)


def parse_project(force: bool = False) -> Path:
    """Write `target/manifest.json` when it is missing (a fresh checkout) or older than any project file."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml",
               *(DBT_PROJECT_DIR / "models").rglob("*"), *(DBT_PROJECT_DIR / "macros").rglob("*")]
    stale = not manifest.exists() or max(p.stat().st_mtime for p in sources) > manifest.stat().st_mtime
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
                write_partition(lake, f"marts/{model}", country, day, table)
            rows[model] = table.num_rows
    return rows
