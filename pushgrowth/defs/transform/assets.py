"""dbt models as Dagster assets: staging -> intermediate -> marts, built one (date, country) partition per run."""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets

from pushgrowth import decisions
from pushgrowth.defs.automation.conditions import FOLLOW, FOLLOW_DECISIONS
from pushgrowth.defs.partitions import country_and_date, country_day_partitions
from pushgrowth.defs.resources import DbtResource, HomeResource
from pushgrowth.storage import DECISIONS
from pushgrowth.storage import lake as store
from pushgrowth.timing import stage
from pushgrowth.transform import (
    DBT_PROJECT_DIR,
    EXPORTED_MARTS,
    dbt_vars,
    export_marts,
    parse_project,
    warehouse_lock,
)

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
parse_project(force=bool(os.environ.get("DAGSTER_IS_DEV_CLI")))  # fresh checkout, or `dagster dev`

LAYER_GROUPS = {"staging": "staging", "intermediate": "intermediate", "marts": "marts"}


class Translator(DagsterDbtTranslator):
    """Groups follow the dbt folders; sources map to the raw_* assets through their `meta.dagster.asset_key`."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None):
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id, {})
        folder = next((p for p in node.get("fqn", [])[1:-1] if p in LAYER_GROUPS), None)
        if not folder:
            return spec
        # follow upstream partitions as they land, but never past a failed blocking check
        reads_decisions = any(dep.asset_key == dg.AssetKey(DECISIONS.asset) for dep in spec.deps)
        return spec.replace_attributes(group_name=LAYER_GROUPS[folder],
                                       automation_condition=FOLLOW_DECISIONS if reads_decisions else FOLLOW)


def ensure_decisions(lake) -> None:
    """Give the decisions dataset an empty, schema-only partition so dbt can read it before the first decision
    (DuckDB refuses a glob that matches no file; the sentinel partition holds no rows)."""
    if not store.exists(lake, DECISIONS, decisions.SENTINEL_COUNTRY, decisions.SENTINEL_DATE):
        store.write(lake, DECISIONS, decisions.SENTINEL_COUNTRY, decisions.SENTINEL_DATE, decisions.SCHEMA.empty_table())


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    partitions_def=country_day_partitions,
    dagster_dbt_translator=Translator(),
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtResource, home: HomeResource):
    country, date = country_and_date(context)
    ensure_decisions(home.home.lake)
    # the warehouse's one writer, whichever process runs this partition; its events are logged after the lock
    lock = warehouse_lock(home.home)
    with stage("wait"):
        lock.acquire()
    try:
        with stage("dbt"):
            events, failure = dbt.build(context, home.home, dbt_vars(country, date))
            # only the marts this run built: automation builds a day's dbt layers in several runs
            selected = {k.to_user_string() for k in context.selected_asset_keys}
            marts = tuple(m for m in EXPORTED_MARTS if m in selected)
            rows = (export_marts(home.home.warehouse, home.home.lake, country, date, marts)
                    if failure is None and marts else None)
    finally:
        lock.release()
    yield from events
    if failure is not None:
        raise failure
    context.log.info(f"exported marts to the lake for {country} {date}: {rows}")
