"""End to end with the real Dagster daemon: `dagster dev` (webserver, daemon, code server) on a fresh home.

Nothing is launched by hand for the first day: the catalog sensor publishes the catalog, the landing-zone sensor
loads the drop, and declarative automation (the `pushgrowth_automation` sensor) runs everything after it, up to
the day's `evaluation_report`. Then a partition run launched through `DagsterGraphQLClient` with only the
`dagster/partition` tag (as scripts and other tools launch runs) succeeds.

The sensors tick every 5 seconds here (`PUSHGROWTH_SENSOR_INTERVAL_SECONDS`, see defs/automation/sensors.py).
The test is skipped only if `dagster dev` cannot start at all; anything after that fails with the failed runs'
errors, or, when the chain stalls, with the automation condition evaluation of every asset that never ran.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAY = dt.date(2026, 9, 1)
NEXT = DAY + dt.timedelta(days=1)
KEY = f"MLA|{DAY.isoformat()}"
NEXT_KEY = f"MLA|{NEXT.isoformat()}"
INTERVAL = 5
"""Seconds between sensor ticks (every sensor of the project, automation included); the daemon loops every
5 seconds anyway, and a shorter interval only adds ticks competing with the runs for the 2 CPUs."""
QUIET_SECONDS = 12
"""No run queued or running for this long (two daemon loops and more): automation has nothing more to do."""
STARTUP_SECONDS = 180
CATALOG_SECONDS = 120
CHAIN_SECONDS = 8 * 60
SETTLE_SECONDS = 240
LAUNCH_SECONDS = 150
IN_FLIGHT = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
LOCATION_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _selection(run: dg.DagsterRun) -> str:
    """What a run was asked to build: its assets and how many checks (a job's own selection when none)."""
    assets = sorted(k.to_user_string() for k in run.asset_selection or ())
    checks = len(run.asset_check_selection or ())
    if not assets and not checks:
        return "the job's selection"
    return f"{', '.join(assets) or 'no assets'}" + (f" + {checks} checks" if checks else "")


class Daemon:
    """`dagster dev` on a home folder, as `pushgrowth dev` starts it, and an instance on the same storage."""

    def __init__(self, home, port: int, process: subprocess.Popen, log: Path):
        from dagster_graphql import DagsterGraphQLClient

        self.home, self.port, self.process, self.log = home, port, process, log
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        self.instance = dg.DagsterInstance.from_config(str(home.dagster))

    # ---------------------------------------------------------------------------------------------------------
    # what the instance says
    # ---------------------------------------------------------------------------------------------------------

    def materialized(self, asset: str, partition: str | None = None) -> dg.EventLogRecord | None:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(asset),
                                  asset_partitions=[partition] if partition else None), limit=1).records
        return records[0] if records else None

    def runs(self, statuses=None) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(dg.RunsFilter(statuses=statuses) if statuses else None))

    def run_error(self, run_id: str) -> str:
        """The errors of a failed run, from its event log: each failed step's, else the run's own."""
        from pushgrowth.alerts import innermost_error

        errors = []
        for entry in self.instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                              dg.DagsterEventType.RUN_FAILURE,
                                                              dg.DagsterEventType.ENGINE_EVENT}):
            event = entry.dagster_event
            if event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_failure_data.error:
                errors.append(f"step {event.step_key}: {innermost_error(event.step_failure_data.error)}")
            elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
                errors.append(f"run: {event.message}")
            elif getattr(event.event_specific_data, "error", None) is not None:
                errors.append(f"engine: {innermost_error(event.event_specific_data.error)}")
        return "; ".join(errors) or "no error in the event log"

    def failures(self, run_ids=None) -> list[str]:
        """Every failed run (of `run_ids` when given), with what it built and its errors."""
        return [f"{run.job_name} [{run.tags.get('dagster/partition', '-')}] {run.run_id[:8]} "
                f"(by {run.tags.get('dagster/sensor_name', 'a launch')}; {_selection(run)}): "
                f"{self.run_error(run.run_id)}" for run in self.runs([dg.DagsterRunStatus.FAILURE])
                if run_ids is None or run.run_id in run_ids]

    def assert_no_failed_run(self, when: str, run_ids=None) -> None:
        failed = self.failures(run_ids)
        assert not failed, (f"{when}: {len(failed)} failed run(s):\n" + "\n".join(failed)
                            + "\nall runs, oldest first:\n" + self.runs_summary())

    def runs_summary(self) -> str:
        lines = []
        for record in self.instance.get_run_records(order_by="create_timestamp", ascending=True):
            run = record.dagster_run
            lines.append(f"  {record.create_timestamp:%H:%M:%S} {run.status.value:<8} {run.run_id[:8]} "
                         f"{run.job_name} [{run.tags.get('dagster/partition', '-')}] "
                         f"by {run.tags.get('dagster/sensor_name', 'a launch')}: {_selection(run)}")
        return "\n".join(lines) or "  (no runs)"

    # ---------------------------------------------------------------------------------------------------------
    # why automation did not request an asset partition
    # ---------------------------------------------------------------------------------------------------------

    def why_not(self, asset: str, partition: str | None) -> str:
        """The latest stored automation evaluation of `asset`, each node of its condition tree marked with
        whether `partition` was true there."""
        storage = self.instance.schedule_storage
        records = storage.get_auto_materialize_asset_evaluations(dg.AssetKey.from_user_string(asset), limit=1)
        if not records:
            return f"{asset}: no automation evaluation stored"
        record = records[0]
        evaluation = record.get_evaluation_with_run_ids().evaluation
        lines = [f"{asset} [{partition or '-'}], evaluation {record.evaluation_id} at "
                 f"{dt.datetime.fromtimestamp(record.timestamp, dt.UTC):%H:%M:%S}:"]

        def contains(subset) -> bool | None:
            value = getattr(subset, "value", None)
            if value is None:  # the candidates of a condition evaluated on every partition
                return None
            return value if isinstance(value, bool) else partition in set(value.get_partition_keys())

        def holds(node) -> str:
            if contains(node.candidate_subset) is False:
                return "  -  "  # not evaluated for the partition: an earlier operand of an AND was false
            return "TRUE " if contains(node.true_subset) else "false"

        def walk(node, depth: int) -> None:
            snap = node.condition_snapshot
            lines.append(f"    {'  ' * depth}{holds(node)}  {snap.label or snap.name or snap.description}")
            for child in node.child_evaluations:
                walk(child, depth + 1)

        walk(evaluation, 0)
        return "\n".join(lines)

    def diagnose(self, partition: str) -> str:
        """Which assets of the day's chain never materialized, and why automation did not request them."""
        from pushgrowth.definitions import defs
        from pushgrowth.defs.partitions import country_partitions

        graph = defs.resolve_asset_graph()
        chain = dg.AssetSelection.groups("raw") | dg.AssetSelection.assets("decisions")
        keys = sorted(chain.downstream().resolve(graph), key=lambda k: k.to_user_string())
        country = partition.split("|")[0]
        missing, done = [], []
        for key in keys:
            node = graph.get(key)
            if not node.is_materializable:
                continue
            part = (None if node.partitions_def is None
                    else country if node.partitions_def == country_partitions else partition)
            name = key.to_user_string()
            (done if self.materialized(name, part) else missing).append((name, part))
        text = [f"materialized: {', '.join(name for name, _ in done) or '-'}",
                f"never materialized: {', '.join(name for name, _ in missing) or '-'}",
                "runs:", self.runs_summary()]
        for name, part in missing:
            text.append(self.why_not(name, part))
        text.append("dagster dev output (last lines):\n" + _tail(self.log))
        return "\n".join(text)

    # ---------------------------------------------------------------------------------------------------------
    # waiting
    # ---------------------------------------------------------------------------------------------------------

    def wait_for(self, what: str, done, seconds: float, partition: str) -> float:
        """Poll `done()` until true; fail at once on a failed run, and with the diagnosis when time runs out."""
        start = time.monotonic()
        while not done():
            self.assert_no_failed_run(f"while waiting for {what}")
            assert self.process.poll() is None, (f"dagster dev exited ({self.process.returncode}):\n"
                                                 f"{_tail(self.log)}")
            if time.monotonic() - start > seconds:
                raise AssertionError(f"{what}: not within {seconds:.0f} s, without any failed run.\n"
                                     f"{self.diagnose(partition)}")
            time.sleep(2)
        return time.monotonic() - start

    def settle(self, seconds: float, partition: str) -> None:
        """Until no run is queued or running for `QUIET_SECONDS` (automation has nothing more to do)."""
        quiet_since = None
        start = time.monotonic()
        while True:
            self.assert_no_failed_run("while the chain settled")
            if self.runs(IN_FLIGHT):
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > QUIET_SECONDS:
                return
            if time.monotonic() - start > seconds:
                raise AssertionError(f"runs still in flight after {seconds:.0f} s:\n{self.diagnose(partition)}")
            time.sleep(2)

    def wait_run(self, run_id: str, seconds: float) -> dg.DagsterRunStatus:
        """Poll the run's status through the GraphQL client until it finishes."""
        start = time.monotonic()
        while True:
            status = self.client.get_run_status(run_id)
            if status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
                return status
            if time.monotonic() - start > seconds:
                raise AssertionError(f"run {run_id} still {status.value} after {seconds:.0f} s:\n"
                                     f"{self.runs_summary()}\n{_tail(self.log)}")
            time.sleep(2)


def _stop(process: subprocess.Popen) -> None:
    """Interrupt the whole process group (webserver, daemon, code server, run workers, dbt), then kill it.

    A run still in flight (the next day's chain, which the last test starts) keeps the code server waiting for
    it after the interrupt; the home is a temporary folder, so after 10 s the group is killed instead."""
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader exited: make sure nothing it started outlives it
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from pushgrowth.home import Home
    from pushgrowth.simulate import prepare_dagster_home

    if not (BIN / "dagster").exists():
        pytest.skip(f"no dagster executable in {BIN}")
    home = Home(tmp_path_factory.mktemp("e2e") / "home")
    port = _free_port()
    log = home.root.parent / "dagster-dev.log"
    with pytest.MonkeyPatch.context() as mp:
        # prepare_dagster_home sets DAGSTER_HOME and PUSHGROWTH_HOME here too (the instance config reads
        # DAGSTER_HOME); the monkeypatch puts back what the session had
        mp.setenv("DAGSTER_HOME", str(home.dagster))
        mp.setenv("PUSHGROWTH_HOME", str(home.root))
        mp.setenv("NO_PROXY", "127.0.0.1")
        mp.setenv("no_proxy", "127.0.0.1")
        prepare_dagster_home(home)
        # the MLflow store, as `pushgrowth dev` creates it; in a process of its own, since it points MLflow's
        # process-wide tracking URI (and MLFLOW_TRACKING_URI) at this home
        subprocess.run([sys.executable, "-c", "import sys; from pushgrowth.bandit import registry; "
                        "from pushgrowth.home import Home; registry.client(Home.from_env(sys.argv[1]))",
                        str(home.root)], check=True, cwd=REPO, capture_output=True, timeout=120)
        env = {**os.environ, "DAGSTER_HOME": str(home.dagster), "PUSHGROWTH_HOME": str(home.root),
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_PROXY": "127.0.0.1",
               "no_proxy": "127.0.0.1", "PUSHGROWTH_SENSOR_INTERVAL_SECONDS": str(INTERVAL),
               "PYTHONUNBUFFERED": "1"}
        env.pop("PUSHGROWTH_SLACK_WEBHOOK_URL", None)  # alerts go to <home>/alerts/alerts.log
        with log.open("w") as out:
            process = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"),
                                        "-h", "127.0.0.1", "-p", str(port)],
                                       cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        try:
            started = time.monotonic()
            while True:
                if process.poll() is not None:
                    pytest.skip(f"dagster dev could not start (exit {process.returncode}):\n{_tail(log)}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                        break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() - started > STARTUP_SECONDS:
                    pytest.skip(f"dagster dev's webserver did not answer within {STARTUP_SECONDS} s:\n"
                                f"{_tail(log)}")
                time.sleep(1)
            # the webserver is up: from here on, anything wrong is a failure, not a skip
            entries = _graphql(port, LOCATION_QUERY)["data"]["workspaceOrError"]["locationEntries"]
            while any(e["locationOrLoadError"] is None for e in entries):  # still loading
                assert time.monotonic() - started < STARTUP_SECONDS, f"code location never loaded:\n{_tail(log)}"
                time.sleep(1)
                entries = _graphql(port, LOCATION_QUERY)["data"]["workspaceOrError"]["locationEntries"]
            assert [e["name"] for e in entries] == ["pushgrowth.definitions"], entries
            loaded = entries[0]["locationOrLoadError"]
            assert loaded["__typename"] == "RepositoryLocation", f"code location failed to load: {loaded}"
            print(f"dagster dev up in {time.monotonic() - started:.0f} s on port {port}; home {home.root}")
            yield Daemon(home, port, process, log)
        finally:
            _stop(process)


@pytest.fixture(scope="module")
def days():
    """{date: MLA's tables} for 2026-09-01 and 2026-09-02 of a seeded World."""
    from pushgrowth.sim import World, WorldConfig

    world = World(WorldConfig.build(countries=("MLA",), users=300, seed=1, start_date=DAY))
    return {DAY: world.step()["MLA"], NEXT: world.step()["MLA"]}


def test_a_landed_day_flows_to_its_report_without_a_launch(daemon, days):
    from pushgrowth.landing.zone import write_drop

    took = daemon.wait_for("the catalog published by catalog_change_sensor",
                           lambda: daemon.materialized("campaign_catalog"), CATALOG_SECONDS, KEY)
    print(f"catalog published {took:.0f} s after start-up")
    write_drop(daemon.home.landing, "MLA", DAY, days[DAY])
    took = daemon.wait_for(f"evaluation_report and daily_assignments of {KEY}",
                           lambda: daemon.materialized("evaluation_report", KEY)
                           and daemon.materialized("daily_assignments", KEY), CHAIN_SECONDS, KEY)
    print(f"{KEY}: drop to report in {took:.0f} s")
    daemon.settle(SETTLE_SECONDS, KEY)
    daemon.assert_no_failed_run("after the day's chain")
    runs = daemon.runs()
    launched = [r for r in runs if "dagster/sensor_name" not in r.tags and "dagster/schedule_name" not in r.tags]
    assert not launched, f"runs not started by a sensor or schedule: {[r.job_name for r in launched]}"
    by = {r.tags["dagster/sensor_name"] for r in runs}
    assert by == {"catalog_change_sensor", "landing_zone_sensor", "pushgrowth_automation"}, by
    report = daemon.materialized("evaluation_report", KEY).event_log_entry.asset_materialization
    assert Path(report.metadata["json"].value).exists()
    print("runs:\n" + daemon.runs_summary())


def test_a_partition_run_launched_through_the_graphql_client_succeeds(daemon, days):
    from pushgrowth.landing.zone import write_drop

    before = {r.run_id for r in daemon.runs()}
    write_drop(daemon.home.landing, "MLA", NEXT, days[NEXT])
    run_id = daemon.client.submit_job_execution("raw_extracts_job", tags={"dagster/partition": NEXT_KEY})
    status = daemon.wait_run(run_id, LAUNCH_SECONDS)
    assert status == dg.DagsterRunStatus.SUCCESS, f"{run_id} {status.value}: {daemon.run_error(run_id)}"
    built = {(e.dagster_event.asset_key.to_user_string(), e.dagster_event.partition)
             for e in daemon.instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    assert ("raw_users", NEXT_KEY) in built, built  # the plain "MLA|2026-09-02" tag reached the step as that day
    runs = [r for r in daemon.runs() if r.job_name == "raw_extracts_job" and r.run_id not in before]
    ours = [r for r in runs if r.run_id == run_id]
    assert ours and ours[0].tags.get("dagster/partition") == NEXT_KEY and "dagster/sensor_name" not in ours[0].tags
    # the queue tagged it with its country, so the one-run-per-country limit applies to it as to a UI launch
    assert ours[0].tags.get("pushgrowth/country") == "MLA", ours[0].tags
    # the landing sensor requests the same drop (its run_key dedups only its own requests): it must succeed too
    start = time.monotonic()
    while True:
        sensed = [r for r in daemon.runs() if r.job_name == "raw_extracts_job" and r.run_id not in before
                  and r.tags.get("dagster/sensor_name") == "landing_zone_sensor"]
        if sensed and all(r.is_finished for r in sensed):
            break
        assert time.monotonic() - start < LAUNCH_SECONDS, f"the landing sensor's run of {NEXT_KEY}:\n" + \
            daemon.runs_summary()
        time.sleep(2)
    assert [r.tags.get("dagster/partition") for r in sensed] == [NEXT_KEY]
    for run in sensed:
        assert run.status == dg.DagsterRunStatus.SUCCESS, f"{run.run_id} {run.status.value}: " \
                                                           f"{daemon.run_error(run.run_id)}"
    # only these two loads are this test's: what automation starts after them is the next day's chain, cut
    # short when the daemon stops (the first day's chain is the other test's)
    daemon.assert_no_failed_run("after the GraphQL launch", {r.run_id for r in runs + sensed})
