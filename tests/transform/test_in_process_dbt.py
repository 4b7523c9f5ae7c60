"""dbt in process: one parse serves every partition, vars reach the SQL at compile time, failures name the node,
and the warehouse file is released after each build."""

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pushgrowth.home import Home
from pushgrowth.transform import InProcessDbt

PROFILE = """tiny:
  target: local
  outputs:
    local:
      type: duckdb
      path: "{{ env_var('PUSHGROWTH_HOME') }}/warehouse.duckdb"
      threads: 1
"""
PROJECT = """name: tiny
version: "1.0.0"
config-version: 2
profile: tiny
model-paths: ["models"]
macro-paths: ["macros"]
flags:
  send_anonymous_usage_stats: false
vars:
  n: null
"""
MODEL = "select {{ var('n') }} as n"
SCHEMA = """version: 2
models:
  - name: numbers
    columns:
      - name: n
        data_tests:
          - accepted_values:
              arguments: {values: [1, 2]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "models").mkdir(parents=True)
    (root / "macros").mkdir()
    (root / "dbt_project.yml").write_text(PROJECT)
    (root / "profiles.yml").write_text(PROFILE)
    (root / "models" / "numbers.sql").write_text(MODEL)
    (root / "models" / "schema.yml").write_text(SCHEMA)
    return root


def _numbers(home: Home) -> list[int]:
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        return [r[0] for r in con.sql("select n from numbers").fetchall()]


def test_one_parse_serves_builds_with_different_vars(project, tmp_path):
    home = Home(tmp_path / "home")
    dbt = InProcessDbt(home, project)
    first = dbt.build({"n": "1"})
    assert first.success, first.errors
    assert _numbers(home) == [1]  # the read-only connection opens: dbt released the file
    manifest = dbt.manifest()
    second = dbt.build({"n": "2"})
    assert second.success, second.errors
    assert dbt.manifest() is manifest
    assert _numbers(home) == [2]
    assert any(e["info"]["name"] == "LogTestResult" for e in second.events)
    assert (home.dbt / "target" / "run_results.json").exists()  # artifacts under the home folder


def test_a_failed_test_names_the_test_and_the_build_fails(project, tmp_path):
    home = Home(tmp_path / "home")
    build = InProcessDbt(home, project).build({"n": "3"})
    assert not build.success
    assert len(build.errors) == 1 and "accepted_values_numbers_n" in build.errors[0] and "fail" in build.errors[0]


def test_another_process_can_write_the_warehouse_after_a_build(project, tmp_path):
    home = Home(tmp_path / "home")
    assert InProcessDbt(home, project).build({"n": "1"}).success
    code = f"import duckdb; duckdb.connect({str(home.warehouse)!r}).sql('create table other as select 1')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_an_edited_project_is_parsed_again(project, tmp_path):
    home = Home(tmp_path / "home")
    dbt = InProcessDbt(home, project)
    manifest = dbt.manifest()
    time.sleep(0.01)
    (project / "models" / "more.sql").write_text("select 1 as one")
    assert dbt.manifest() is not manifest
    assert dbt.build({"n": "1"}).success
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        assert con.sql("select one from more").fetchall() == [(1,)]
