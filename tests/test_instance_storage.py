"""The instance storage of a home folder: the stock SQLite files, shared by processes, with pooled connections."""

import subprocess
import sys
import textwrap

import dagster as dg
import pytest

from pushgrowth import instance_storage
from pushgrowth.home import Home
from pushgrowth.simulate import prepare_dagster_home

JOB = textwrap.dedent("""
    import sys
    import dagster as dg

    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
    def numbers(context):
        yield dg.MaterializeResult(metadata={"n": 3})
        yield dg.AssetCheckResult(passed=True)

    job = dg.Definitions(assets=[numbers], jobs=[dg.define_asset_job("numbers_job", [numbers])]
                         ).resolve_job_def("numbers_job")
    instance = dg.DagsterInstance.get()
    for _ in range(int(sys.argv[1])):
        assert job.execute_in_process(instance=instance, tags={"who": sys.argv[2]}).success
    print(type(instance.event_log_storage).__name__)
""")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    home = Home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(home.dagster))  # restored after the test
    monkeypatch.setenv("PUSHGROWTH_HOME", str(home.root))
    prepare_dagster_home(home)
    return home


def test_processes_writing_at_once_lose_nothing_and_the_stock_storage_reads_it(home, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    dg.DagsterInstance.get()  # the databases exist before the writers start (as in `simulate` and the daemon)
    writers = [subprocess.Popen([sys.executable, str(script), "4", name], stdout=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    outputs = [w.communicate(timeout=300)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0]
    assert all("PooledSqliteEventLogStorage" in out for out in outputs)

    stock = tmp_path / "stock"  # the same files, read through Dagster's own storage classes
    stock.mkdir()
    (stock / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home.dagster}\n")
    instance = dg.DagsterInstance.from_config(str(stock))
    assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
    runs = instance.get_runs()
    assert len(runs) == 8 and sorted(r.tags["who"] for r in runs) == ["a"] * 4 + ["b"] * 4
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    records = instance.fetch_materializations(dg.AssetKey("numbers"), limit=100).records
    assert len(records) == 8
    check = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("numbers"), "positive"), limit=100)
    assert len(check) == 8


def test_a_home_folder_instance_uses_the_pooled_storage(home):
    instance = dg.DagsterInstance.get()
    assert isinstance(instance.event_log_storage, instance_storage.PooledSqliteEventLogStorage)
    assert isinstance(instance.run_storage, instance_storage.PooledSqliteRunStorage)
    assert (home.dagster / "history" / "runs.db").exists()


def test_engines_beyond_the_limit_are_disposed(tmp_path, monkeypatch):
    monkeypatch.setattr(instance_storage, "MAX_ENGINES", 3)
    monkeypatch.setattr(instance_storage, "_ENGINES", type(instance_storage._ENGINES)())
    urls = [f"sqlite:///{tmp_path / f'db{i}.db'}" for i in range(5)]
    engines = [instance_storage.engine(url) for url in urls]
    for e in engines:
        with e.connect() as conn:
            conn.exec_driver_sql("select 1")
    assert instance_storage.engine(urls[4]) is engines[4]  # kept, and now the most recent
    assert instance_storage.engine(urls[0]) is not engines[0]  # evicted before, so made anew
    assert len(instance_storage._ENGINES) == 3
    assert [k[1] for k in instance_storage._ENGINES] == [urls[3], urls[4], urls[0]]
