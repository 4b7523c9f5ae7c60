"""Dagster fixtures: seeded World extracts delivered into a temporary home folder."""

import datetime as dt
import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pushgrowth.defs.resources import HomeResource
from pushgrowth.home import Home
from pushgrowth.landing.zone import Drop
from pushgrowth.sim import World, WorldConfig

DAY = dt.date(2026, 9, 1)


def world_days(seed: int, days: int) -> dict[dt.date, dict[str, dict[str, pa.Table]]]:
    world = World(WorldConfig.build(countries=("MLA", "MLB"), users=300, seed=seed, start_date=DAY))
    return {DAY + dt.timedelta(days=i): world.step() for i in range(days)}


@pytest.fixture(scope="session")
def extracts():
    """{date: {country: {table: pyarrow.Table}}} for 2026-09-01 and 2026-09-02 (seed 1)."""
    return world_days(seed=1, days=2)


@pytest.fixture(scope="session")
def other_extracts():
    """Another World's 2026-09-01 (seed 2): a re-delivery with different content."""
    return world_days(seed=2, days=1)


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def resources(home):
    return {"home": HomeResource(root=str(home.root))}


@pytest.fixture
def tamper():
    """Swap a delivered file for `table` and fix the manifest up, so only the contract check can fail."""

    def replace(drop: Drop, file_name: str, table: pa.Table) -> None:
        path = drop.path / file_name
        pq.write_table(table, path)
        manifest = json.loads(drop.marker.read_text())
        manifest["files"][file_name] = {"rows": table.num_rows,
                                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        drop.marker.write_text(json.dumps(manifest))

    return replace
