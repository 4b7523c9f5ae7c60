"""Landing-zone fixtures: one seeded World day of extracts, delivered into a temporary landing folder."""

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pushgrowth.landing.zone import Drop, write_drop
from pushgrowth.sim import World, WorldConfig

DAY = dt.date(2026, 9, 1)


@pytest.fixture(scope="session")
def extracts() -> dict[str, dict[str, pa.Table]]:
    """{country: {table: pyarrow.Table}} for 2026-09-01 (read-only: tables are immutable)."""
    return World(WorldConfig.build(countries=("MLA", "MLB"), users=300, seed=1, start_date=DAY)).step()


@pytest.fixture
def landing(tmp_path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def drop(landing, extracts) -> Drop:
    return write_drop(landing, "MLA", DAY, extracts["MLA"])


def replace_file(drop: Drop, file_name: str, content: bytes | pa.Table) -> Path:
    """Swap a delivered file and fix the manifest up, so only the check under test can fail."""
    path = drop.path / file_name
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    else:
        path.write_bytes(content)
    manifest = json.loads(drop.marker.read_text())
    manifest["files"][file_name]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    if isinstance(content, pa.Table):
        manifest["files"][file_name]["rows"] = content.num_rows
    drop.marker.write_text(json.dumps(manifest))
    return path


@pytest.fixture
def tamper():
    return replace_file
