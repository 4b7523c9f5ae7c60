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


def test_run_monitoring_frees_the_slot_of_a_run_whose_worker_died(home):
    """The daemon's run queue allows one run per country: a run left STARTED by a killed worker would block its
    country for good, so the home's instance monitors runs and fails those past a start timeout or a maximum
    runtime (well above a country-day's minutes)."""
    instance = dg.DagsterInstance.get()
    assert instance.run_monitoring_enabled
    assert 0 < instance.run_monitoring_start_timeout_seconds <= 600
    assert 600 < instance.run_monitoring_max_runtime_seconds <= 3600


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


@pytest.mark.parametrize("partition,country", [("MLB|2026-09-03", "MLB"), ("MLM", "MLM"), ("2026-09-03", None)])
def test_a_run_launched_with_only_its_partition_is_queued_under_its_countrys_limit(home, partition, country):
    """The GraphQL client, the Python API and `dagster asset materialize --partition` send only
    `dagster/partition`, and the model job's runs have one dimension: the queue adds `pushgrowth/country`, the tag
    the one-run-per-country limit keys on, and leaves Dagster's partition tags alone."""
    from dagster._core.run_coordinator import SubmitRunContext

    from pushgrowth.defs.run_queue import COUNTRY_TAG, CountryRunCoordinator

    instance = dg.DagsterInstance.get()
    coordinator = instance.run_coordinator
    assert isinstance(coordinator, CountryRunCoordinator)
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": COUNTRY_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits

    @dg.op
    def noop():
        return None

    @dg.job
    def noop_job():
        noop()

    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

    # the queue keeps where to launch the run from: a registered location's name is enough to queue it
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("pushgrowth.definitions"),
                                                    "__repository__"), "noop_job")
    run = instance.create_run_for_job(noop_job, tags={"dagster/partition": partition}, remote_job_origin=origin)
    queued = coordinator.submit_run(SubmitRunContext(run, workspace=None))
    assert queued.status == dg.DagsterRunStatus.QUEUED
    assert queued.tags.get(COUNTRY_TAG) == country
    assert queued.tags["dagster/partition"] == partition
    assert not any(k.startswith("dagster/partition/") for k in queued.tags)
