"""Every column of every dbt model has a description in the models' YAML, and the Dagster UI shows it.

dagster-dbt builds a dbt asset's `dagster/column_schema` from the columns its YAML lists, so a column the YAML
leaves out is missing from the UI altogether. The columns a model really has come from the warehouse that one
small partition's build leaves behind.
"""

import copy
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
import duckdb
import pytest

from pushgrowth.campaigns import load_catalog
from pushgrowth.definitions import defs
from pushgrowth.home import Home
from pushgrowth.landing.zone import write_drop
from pushgrowth.sim import World, WorldConfig
from pushgrowth.storage.catalog import publish
from pushgrowth.transform import parse_project

DAY = dt.date(2026, 9, 1)


def _models(manifest: Mapping[str, Any]) -> dict[str, dict]:
    return {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}


def _undescribed(models: Mapping[str, dict], warehouse: Mapping[str, list[str]]) -> list[str]:
    """`model.column` for each column the warehouse has and the YAML does not describe."""
    return [f"{name}.{column}" for name, columns in sorted(warehouse.items()) for column in columns
            if not (models[name]["columns"].get(column, {}).get("description") or "").strip()]


def _undescribed_in_ui(assets_def: dg.AssetsDefinition, models: Mapping[str, dict]) -> list[str]:
    """`model.column` for each documented column the asset's column schema lacks or shows without description."""
    problems = []
    for spec in assets_def.specs:
        name = spec.key.to_user_string()
        schema = spec.metadata.get("dagster/column_schema")
        shown = {c.name: c.description for c in schema.columns} if schema is not None else {}
        problems += [f"{name}.{column} (not shown)" for column in models[name]["columns"] if column not in shown]
        problems += [f"{name}.{column}" for column, text in shown.items() if not (text or "").strip()]
    return problems


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(parse_project().read_text())


@pytest.fixture(scope="module")
def warehouse_columns(tmp_path_factory) -> dict[str, list[str]]:
    """The columns of every table and view of the warehouse after one MLA day runs through the real jobs."""
    home = Home.from_env(tmp_path_factory.mktemp("home"))
    world = World(WorldConfig.build(("MLA",), users=40, seed=5))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUSHGROWTH_HOME", str(home.root))
        instance = dg.DagsterInstance.ephemeral()
        publish(load_catalog(), home.lake)
        write_drop(home.landing, "MLA", DAY, world.step()["MLA"])
        key = dg.MultiPartitionKey({"country": "MLA", "date": DAY.isoformat()})
        for job in ("raw_extracts_job", "daily_refresh_job"):
            assert defs.resolve_job_def(job).execute_in_process(partition_key=key, instance=instance).success
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        tables = [t for (t,) in con.sql("select table_name from information_schema.tables "
                                         "where table_schema = 'main' order by all").fetchall()]
        return {t: [row[0] for row in con.sql(f'describe main."{t}"').fetchall()] for t in tables}


def test_every_column_of_every_model_has_a_description(manifest, warehouse_columns):
    models = _models(manifest)
    assert set(warehouse_columns) == set(models), "every model is built, and only models are in the warehouse"
    undescribed = _undescribed(models, warehouse_columns)
    assert not undescribed, f"columns without a description in the models' YAML: {', '.join(undescribed)}"
    stale = [f"{name}.{column}" for name, node in sorted(models.items()) for column in node["columns"]
             if column not in warehouse_columns[name]]
    assert not stale, f"columns the YAML documents but the model does not have: {', '.join(stale)}"


def test_the_dbt_assets_show_every_column_description(manifest):
    models = _models(manifest)
    assets_def = defs.resolve_assets_def(dg.AssetKey("user_features"))
    assert {spec.key.to_user_string() for spec in assets_def.specs} == set(models)
    undescribed = _undescribed_in_ui(assets_def, models)
    assert not undescribed, f"dbt asset columns shown without a description: {', '.join(undescribed)}"


def test_a_blank_description_is_caught(manifest, warehouse_columns):
    """The checks above fail on a column left undescribed (here blanked in a copy of the manifest)."""
    from dagster_dbt import dbt_assets

    from pushgrowth.defs.transform.assets import Translator

    blanked = copy.deepcopy(manifest)
    node = blanked["nodes"]["model.pushgrowth.decision_log"]
    node["columns"]["reward_net_revenue"]["description"] = ""
    del node["columns"]["context_segment"]
    models = _models(blanked)
    assert set(_undescribed(models, warehouse_columns)) == {"decision_log.context_segment",
                                                            "decision_log.reward_net_revenue"}

    @dbt_assets(manifest=blanked, dagster_dbt_translator=Translator())
    def blanked_models():
        ...

    assert _undescribed_in_ui(blanked_models, models) == ["decision_log.reward_net_revenue"]
