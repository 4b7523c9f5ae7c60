"""The code location loads, in process and through the `dagster` CLI as `dagster dev` would load it."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pushgrowth.landing.contract import TABLES

REPO = Path(__file__).resolve().parents[2]
RAW_KEYS = {dg.AssetKey(f"raw_{name}") for name in TABLES}


def test_definitions_load_raw_assets_sensor_and_job():
    from pushgrowth.definitions import defs

    assert len(RAW_KEYS) == 7
    assert RAW_KEYS <= set(defs.resolve_all_asset_keys())
    sensor = defs.resolve_sensor_def("landing_zone_sensor")
    assert sensor.job_name == "raw_extracts_job"
    job = defs.resolve_job_def("raw_extracts_job")
    assert set(job.asset_layer.selected_asset_keys) == RAW_KEYS
    assert job.partitions_def is not None
    assert {dim.name for dim in job.partitions_def.partitions_defs} == {"country", "date"}


def test_dagster_cli_validates_the_workspace(tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PUSHGROWTH_HOME": str(tmp_path / "home")}
    proc = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_bandit_settings_default_to_the_library_configs_and_pass_every_override():
    """The launchpad's `bandit` resource is the one place to tune the policy and the gate: its defaults are the
    library's, and each field reaches the config it names."""
    from dataclasses import asdict, fields

    from pushgrowth.bandit.model import TrainConfig
    from pushgrowth.bandit.policy import PolicyConfig
    from pushgrowth.bandit.training import GateConfig
    from pushgrowth.defs.resources import BanditSettings

    assert BanditSettings().gate() == GateConfig() and BanditSettings().policy() == PolicyConfig()
    policy_fields = ("temperature", "epsilon", "cold_epsilon", "cold_hour_width", "cold_hour_habit", "weekday_habit",
                     "bau_prior")
    changed_policy = {name: getattr(PolicyConfig, name) * 2 + 1 for name in policy_fields}
    changed_policy.update(cold_epsilon=0.3, cold_hour_habit=0.45)  # shares: both within [0, 1] together
    assert all(changed_policy[name] != getattr(PolicyConfig, name) for name in policy_fields)
    assert BanditSettings(**changed_policy).policy() == PolicyConfig(**changed_policy)
    assert BanditSettings(cold_hour_width=None).policy().cold_hour_width is None
    gate_fields = [f.name for f in fields(GateConfig) if f.name != "rule"]
    changed = {f"gate_{name}": type(getattr(GateConfig, name))(getattr(GateConfig, name) * 2 + 1)
               for name in gate_fields}
    gate = BanditSettings(gate_rule="paired", **changed).gate()
    assert asdict(gate) == {"rule": "paired", **{name: changed[f"gate_{name}"] for name in gate_fields}}
    assert BanditSettings().training() == TrainConfig()
    assert BanditSettings(training_window_days=14).training().window_days == 14
    assert BanditSettings(training_window_days=None).training().window_days is None


def test_a_partition_launched_with_only_the_partition_tag_resolves_its_country_and_day():
    """The GraphQL client, the Python API and `dagster asset materialize --partition` send only
    `dagster/partition`; the step then gets the key as a string, which must still name the country-day."""
    import datetime as dt

    from pushgrowth.defs.partitions import country_and_date, country_day_partitions

    seen = []

    @dg.asset(partitions_def=country_day_partitions)
    def probe(context: dg.AssetExecutionContext) -> None:
        seen.append((type(context.partition_key).__name__, country_and_date(context)))

    job = dg.define_asset_job("probe_job", [probe], partitions_def=country_day_partitions)
    defs = dg.Definitions(assets=[probe], jobs=[job])
    assert defs.resolve_job_def("probe_job").execute_in_process(tags={"dagster/partition": "MLB|2026-09-03"}).success
    assert seen == [("str", ("MLB", dt.date(2026, 9, 3)))]
    bad = defs.resolve_job_def("probe_job").execute_in_process(tags={"dagster/partition": "2026-09-03"},
                                                              raise_on_error=False)
    assert not bad.success


def test_the_automation_sensor_is_on_by_default_and_targets_every_asset():
    from pushgrowth.definitions import defs

    sensor = defs.resolve_sensor_def("pushgrowth_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    assert sensor.asset_selection.resolve(graph) >= {k for k in graph.get_all_asset_keys()
                                                     if graph.get(k).automation_condition is not None}
