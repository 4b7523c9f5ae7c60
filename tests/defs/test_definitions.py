"""The code location loads, in process and through the `dagster` CLI as `dagster dev` would load it."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pushgrowth.landing.schema import TABLES

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
