"""The published catalog: the last valid catalog's flat tables in the lake, with its version.

Assignments and dbt read the published catalog, never the YAML files directly, so an invalid edit cannot reach
users: the catalog asset publishes only a catalog without problems, and its blocking check reports the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pushgrowth.campaigns import Catalog, catalog_frames
from pushgrowth.storage import lake as store
from pushgrowth.storage.datasets import CATALOG, CATALOG_TABLES, CATALOG_VERSION


def publish(catalog: Catalog, lake: Path) -> dict[str, int]:
    """Write every frame of a valid catalog, then its version last; returns rows per frame."""
    rows = {}
    frames = catalog_frames(catalog)
    frames["country_policies"] = pd.DataFrame(
        [{"country": code, "max_weekly_pushes": p.max_weekly_pushes,
          "quiet_hours": ",".join(map(str, p.quiet_hours.hours))}
         for code, p in sorted(catalog.policies.items())])
    for name, frame in frames.items():
        store.write_file(lake, CATALOG_TABLES[name], frame)
        rows[name] = len(frame)
    store.write_file(lake, CATALOG, catalog.model_dump_json())
    store.write_file(lake, CATALOG_VERSION, {"version": catalog.version, "rows": rows})
    return rows


def published_catalog(lake: Path) -> Catalog:
    """The last valid catalog exactly as published (what assignments serve), or a FileNotFoundError."""
    try:
        text = store.read_file(lake, CATALOG)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; no catalog has been published yet: materialize campaign_catalog first") from None
    return Catalog.model_validate_json(text)


def published_version(lake: Path) -> str | None:
    if not store.exists(lake, CATALOG_VERSION):
        return None
    return json.loads(store.read_file(lake, CATALOG_VERSION))["version"]
