"""Monitoring in Dagster: failed runs and failed blocking checks alert a (local) Slack, late assignments are
noticed, the safety net re-requests missing days, and every downstream asset follows by automation."""

import datetime as dt
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pyarrow as pa
import pytest
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.events import StepMaterializationData

from pushgrowth.defs.automation.sensors import (
    assignments_freshness,
    check_failure_alert,
    daily_safety_net,
    late_countries,
    run_failure_alert,
)
from pushgrowth.defs.partitions import COUNTRIES, country_day_partitions, country_partitions, daily_partitions
from pushgrowth.defs.resources import HomeResource, NotifierResource
from pushgrowth.storage import dataset
from pushgrowth.storage import lake as store
from pushgrowth.landing.zone import write_drop

DAY = dt.date(2026, 9, 1)


@pytest.fixture
def slack(monkeypatch):
    """A local HTTP server standing in for Slack's webhook; the notifier posts there."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("PUSHGROWTH_SLACK_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hook")
    yield received
    server.shutdown()


@pytest.fixture
def home(tmp_path, extracts):
    from pushgrowth.home import Home

    h = Home(tmp_path / "home")
    write_drop(h.landing, "MLA", DAY, extracts[DAY]["MLA"])
    return h


def _age(home, hours: float) -> None:
    marker = home.landing / "MLA" / DAY.isoformat() / "_SUCCESS"
    old = time.time() - hours * 3600
    os.utime(marker, (old, old))


def test_assignments_are_late_only_after_the_grace_period_and_without_decisions(home):
    assert late_countries(home, time.time()) == []  # the drop just landed
    _age(home, 5)
    late = late_countries(home, time.time())
    assert [(x["country"], x["decision_date"]) for x in late] == [("MLA", "2026-09-02")]
    store.write(home.lake, dataset("decisions"), "MLA", DAY + dt.timedelta(days=1), pa.table({"x": [1]}))
    assert late_countries(home, time.time()) == []


def test_freshness_sensor_alerts_once_and_records_the_check(home, slack):
    _age(home, 5)
    resources = {"home": HomeResource(root=str(home.root)), "notifier": NotifierResource(home_root=str(home.root))}
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        first = assignments_freshness(context)
        assert [e.passed for e in first.asset_events] == [False]
        assert first.asset_events[0].check_name == "on_time"
        again = assignments_freshness(dg.build_sensor_context(instance=instance, resources=resources,
                                                              cursor=first.cursor))
    assert [a["text"] for a in slack].count(slack[0]["text"]) == 1 and len(slack) == 1  # not alerted twice
    assert "late" in slack[0]["text"] and again.asset_events[0].passed is False


@dg.asset
def flaky() -> None:
    raise ValueError("extract unreadable: column gmv is text")


@dg.asset
def gated() -> int:
    return 1


@dg.asset_check(asset=gated, blocking=True)
def gated_is_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="3 rows with a negative gmv")


def test_a_failed_run_alerts_slack_with_its_error(tmp_path, slack):
    resources = {"notifier": NotifierResource(home_root=str(tmp_path))}
    with dg.instance_for_test() as instance:
        result = dg.materialize([flaky], instance=instance, raise_on_error=False)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=failure, resources=resources).for_run_failure()
        run_failure_alert(context)
    assert len(slack) == 1
    assert "__ephemeral_asset_job__ failed" in slack[0]["text"]
    assert "extract unreadable" in json.dumps(slack[0])


def test_a_failed_blocking_check_alerts_once(tmp_path, slack):
    resources = {"notifier": NotifierResource(home_root=str(tmp_path))}
    with dg.instance_for_test() as instance:
        dg.materialize([gated, gated_is_positive], instance=instance, raise_on_error=False)
        result = check_failure_alert(dg.build_sensor_context(instance=instance, resources=resources))
        again = check_failure_alert(dg.build_sensor_context(instance=instance, resources=resources,
                                                            cursor=result.cursor))
    assert len(slack) == 1 and "gated:gated_is_positive" in slack[0]["text"]
    assert again.skip_reason is not None


def test_without_a_webhook_alerts_go_to_the_log_file(tmp_path, monkeypatch):
    monkeypatch.delenv("PUSHGROWTH_SLACK_WEBHOOK_URL", raising=False)
    resources = {"notifier": NotifierResource(home_root=str(tmp_path))}
    with dg.instance_for_test() as instance:
        dg.materialize([gated, gated_is_positive], instance=instance, raise_on_error=False)
        check_failure_alert(dg.build_sensor_context(instance=instance, resources=resources))
    lines = (tmp_path / "alerts" / "alerts.log").read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "check_failure"


def test_safety_net_requests_days_without_plans(home, monkeypatch):
    from pushgrowth.defs.automation import sensors

    monkeypatch.setattr(sensors.dt, "date", type("D", (dt.date,), {"today": staticmethod(lambda: DAY)}))
    context = dg.build_schedule_context(resources={"home": HomeResource(root=str(home.root))})
    requests = daily_safety_net(context)
    assert [r.partition_key for r in requests] == ["MLA|2026-09-01"]
    store.write(home.lake, dataset("decisions"), "MLA", DAY + dt.timedelta(days=1), pa.table({"x": [1]}))
    assert isinstance(daily_safety_net(context), dg.SkipReason)


def test_the_monitoring_sensors_and_the_safety_net_are_registered():
    from pushgrowth.definitions import defs

    repo = defs.get_repository_def()
    assert {"run_failure_alert", "check_failure_alert", "assignments_freshness", "landing_zone_sensor",
            "catalog_change_sensor"} <= {s.name for s in repo.sensor_defs}
    assert [s.name for s in repo.schedule_defs] == ["daily_safety_net"]


# --------------------------------------------------------------------------------------------------------------
# Declarative automation, evaluated by Dagster itself on the project's definitions
# --------------------------------------------------------------------------------------------------------------

TODAY = DAY + dt.timedelta(days=1)
MLA = f"MLA|{TODAY.isoformat()}"


class Automation:
    """The project's automation conditions ticked by Dagster's evaluator (`evaluate_automation_conditions`, what
    the daemon runs every 30 seconds) against an ephemeral instance, at a fixed time.

    `run` stands in for a successful run: it records the materialization of each asset and the result of each of
    its checks (passed unless named in `failed`), under a run id of its own, as a run would (the instance keeps
    one result per check, partition and run, so runless check results could not be recorded twice)."""

    def __init__(self, now: dt.datetime):
        from pushgrowth.definitions import defs

        self.defs, self.now = defs, now
        self.graph = defs.resolve_asset_graph()
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor = None

    def tick(self) -> dict[str, set[str | None]]:
        """{asset or "asset:check": partitions} requested by this tick."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance,
                                                   evaluation_time=self.now, cursor=self.cursor)
        self.cursor = result.cursor
        requested = {}
        for item in result.results:
            if item.true_subset.size:
                key = item.key
                name = (key.to_user_string() if isinstance(key, dg.AssetKey)
                        else f"{key.asset_key.to_user_string()}:{key.name}")
                requested[name] = (set(item.true_subset.expensively_compute_partition_keys())
                                   if self.graph.get(key).partitions_def else {None})
        return requested

    def _report(self, run_id: str, event_type: dg.DagsterEventType, data) -> None:
        self.instance.report_dagster_event(
            dg.DagsterEvent(event_type.value, job_name="__fake_run__", event_specific_data=data), run_id=run_id)

    def run(self, assets, partition: str | None = None, failed: tuple[str, ...] = ()) -> None:
        run_id = uuid.uuid4().hex
        for name in assets:
            key = dg.AssetKey.from_user_string(name)
            node = self.graph.get(key)
            key_partition = partition if node.partitions_def else None
            self._report(run_id, dg.DagsterEventType.ASSET_MATERIALIZATION,
                         StepMaterializationData(dg.AssetMaterialization(key, partition=key_partition)))
            record = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[key_partition] if key_partition else None),
                limit=1).records[0]
            target = AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp)
            if name == "daily_assignments":  # it reports the decisions of the next day, which it wrote
                country, day = key_partition.split("|")
                tomorrow = f"{country}|{dt.date.fromisoformat(day) + dt.timedelta(days=1)}"
                self._report(run_id, dg.DagsterEventType.ASSET_MATERIALIZATION,
                             StepMaterializationData(dg.AssetMaterialization("decisions", partition=tomorrow)))
            for check in node.check_keys:
                self._report(run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.AssetCheckEvaluation(
                    asset_key=key, check_name=check.name, passed=f"{name}:{check.name}" not in failed,
                    partition=key_partition if self.graph.get(check).partitions_def else None,
                    target_materialization_data=target))

    def load(self, partition: str, failed: tuple[str, ...] = ()) -> None:
        """A raw load as raw_extracts_job runs it: the seven raw tables and their checks, and, for a day nobody
        planned, its (empty) decisions."""
        self.run(raw_assets(), partition, failed)
        if not self.instance.fetch_materializations(dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("decisions"), asset_partitions=[partition]), limit=1).records:
            self._report(uuid.uuid4().hex, dg.DagsterEventType.ASSET_MATERIALIZATION,
                         StepMaterializationData(dg.AssetMaterialization("decisions", partition=partition)))

    def assets(self, partitions_def) -> list[str]:
        """The materializable assets with `partitions_def` (external assets are written outside Dagster)."""
        nodes = [self.graph.get(key) for key in self.graph.get_all_asset_keys()]
        return sorted(node.key.to_user_string() for node in nodes
                      if node.is_materializable and node.partitions_def == partitions_def)

    def done(self, day: dt.date, countries=COUNTRIES) -> None:
        """Every asset of `day` built in every country, the catalog published and each country's model."""
        self.run(self.assets(None))
        for country in countries:
            self.load(f"{country}|{day.isoformat()}")
            self.run(self.assets(country_day_partitions), f"{country}|{day.isoformat()}")
            self.run(self.assets(country_partitions), country)

    def follow(self, limit: int = 20) -> list[dict[str, set[str | None]]]:
        """Tick and run whatever was requested (each asset partition as its own run) until nothing is."""
        ticks = []
        while len(ticks) < limit:
            requested = self.tick()
            if not requested:
                return ticks
            ticks.append(requested)
            for name, partitions in requested.items():
                if ":" not in name:  # a requested check runs with its asset here
                    for partition in partitions:
                        self.run([name], partition)
        raise AssertionError(f"automation still requests after {limit} ticks: {ticks[-1]}")

    def downstream(self, *assets: str) -> set[str]:
        """The materializable assets downstream of `assets` (the ones automation must bring up to date)."""
        keys = dg.AssetSelection.assets(*assets).downstream(include_self=False).resolve(self.graph)
        return {k.to_user_string() for k in keys if self.graph.get(k).is_materializable}


def _union(ticks: list[dict[str, set[str | None]]]) -> dict[str, set[str | None]]:
    """Everything requested over `ticks`: {asset or "asset:check": partitions}."""
    out: dict[str, set[str | None]] = {}
    for tick in ticks:
        for name, partitions in tick.items():
            out.setdefault(name, set()).update(partitions)
    return out


def raw_assets() -> list[str]:
    from pushgrowth.landing.contract import TABLES

    return [f"raw_{name}" for name in TABLES]


def latest_at(day: dt.date) -> dt.datetime:
    """A time at which `day` is the latest date partition (its noon UTC while the partitions end a day ahead)."""
    for hours in (12, 36):
        now = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(hours=hours)
        with dg.partition_loading_context(effective_dt=now):
            if daily_partitions.get_last_partition_key() == day.isoformat():
                return now
    raise AssertionError(f"{day} is never the latest date partition")


@pytest.fixture
def automation(tmp_path, monkeypatch):
    """Yesterday built everywhere and today's plans read back (a daemon that has been running), today to come."""
    monkeypatch.setenv("PUSHGROWTH_HOME", str(tmp_path / "home"))
    auto = Automation(latest_at(TODAY))
    auto.done(DAY)
    for country in COUNTRIES:  # yesterday's assignments wrote today's decisions, and dbt read them back
        auto.run(["stg_decisions"], f"{country}|{TODAY.isoformat()}")
    assert auto.tick() == {}  # nothing new since the daemon started
    return auto


def test_the_plans_of_a_day_are_read_back_as_soon_as_they_are_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PUSHGROWTH_HOME", str(tmp_path / "home"))
    auto = Automation(latest_at(TODAY))
    assert auto.tick() == {}
    auto.run(["daily_assignments"], f"MLA|{DAY.isoformat()}")  # it wrote the decisions of TODAY
    assert auto.tick().get("stg_decisions") == {MLA}
    assert auto.tick() == {}


def test_a_day_nobody_planned_is_read_back_with_its_drop(tmp_path, monkeypatch):
    """The first day (or one whose assignments never ran) has no decisions: its raw load says so, and the day's
    read-back runs with the other staging models, so what needs it (user_features, audiences) can follow."""
    monkeypatch.setenv("PUSHGROWTH_HOME", str(tmp_path / "home"))
    auto = Automation(latest_at(DAY))
    assert auto.tick() == {}
    first = f"MLA|{DAY.isoformat()}"
    auto.load(first)
    requested = auto.tick()
    assert requested.get("stg_decisions") == {first} and requested.get("stg_users") == {first}


def test_a_loaded_drop_is_followed_for_its_own_partition_only_and_once(automation):
    raw = raw_assets()
    automation.load(MLA)  # raw_extracts_job: the raw tables and their Great Expectations checks
    requested = automation.tick()
    assert {f"stg_{name.removeprefix('raw_')}" for name in raw} | {"budget_ledger"} <= set(requested)
    assert set(requested) <= automation.downstream(*raw, "decisions")  # the checks ran with the load
    assert all(partitions == {MLA} for partitions in requested.values()), requested  # not MLB, not yesterday
    assert automation.tick() == {}  # requested once: nothing new upstream, nothing requested


def test_a_failed_blocking_check_holds_what_follows_until_a_reload_passes(automation):
    automation.load(MLA, failed=("raw_users:great_expectations",))
    requested = automation.tick()
    held = {"stg_users"} | automation.downstream("stg_users")
    assert {"stg_orders", "stg_push_sends", "budget_ledger"} <= set(requested)  # their own raw tables passed
    assert not held & set(requested), held & set(requested)
    assert automation.tick() == {}  # still held, across ticks
    automation.run(["raw_users"], MLA)  # the corrected users extract, reloaded and passing
    assert automation.tick().get("stg_users") == {MLA}


def test_a_days_features_retrain_only_that_countrys_model(automation):
    automation.done(TODAY)
    assert automation.tick() == {}
    automation.run(["user_features"], MLA)
    requested = _union(automation.follow())
    assert {name: requested.get(name) for name in ("bandit_model", "model_promotion")} == {
        "bandit_model": {"MLA"}, "model_promotion": {"MLA"}}


def test_a_new_champion_replans_no_day_already_planned(automation):
    """Plans already made (and delivered) stand: a champion promoted by hand serves the next day's plans; no past
    day of the country is re-planned (which `eager()` did for the latest one, and a condition without the latest
    time window would do for every one)."""
    automation.done(TODAY)
    assert automation.tick() == {}
    automation.run(["model_promotion"], "MLA")
    requested = automation.tick()
    assert "daily_assignments" not in requested and "push_outbox" not in requested, requested
    assert set(requested) <= {"evaluation_report"}, requested  # nothing but, at most, reports
    assert automation.tick() == {}


def test_a_catalog_edit_rebuilds_no_day_already_built(automation):
    """A published catalog edit serves the next days; it does not re-run every day's ledger and plans."""
    automation.done(TODAY)
    assert automation.tick() == {}
    automation.run(["campaign_catalog"])
    requested = automation.tick()
    assert not {"budget_ledger", "daily_assignments", "push_outbox"} & set(requested), requested


def test_a_loaded_drop_is_followed_all_the_way_to_the_outbox_and_the_report(automation):
    raw = raw_assets()
    automation.load(MLA)
    ticks = automation.follow()
    requested = _union(ticks)
    first = {name: min(i for i, t in enumerate(ticks) if name in t) for name in requested}
    early = {check for check in requested if ":" in check and check.split(":")[0] in first
             and first[check] < first[check.split(":")[0]]}
    assert not early, f"checks requested before their asset: {sorted(early)}"
    country = set(automation.assets(country_partitions))
    expected = {name: {"MLA"} if name in country else {MLA} for name in automation.downstream(*raw)}
    assert {name: requested.get(name, set()) for name in expected} == expected


def test_the_days_assignments_wait_for_the_days_model_and_run_once(automation):
    automation.load(MLA)
    ticks = automation.follow()
    when = {name: [i for i, tick in enumerate(ticks) if name in tick]
            for name in ("model_promotion", "daily_assignments", "push_outbox")}
    assert when["model_promotion"] and len(when["daily_assignments"]) == 1 and len(when["push_outbox"]) == 1, when
    assert when["model_promotion"][-1] < when["daily_assignments"][0] < when["push_outbox"][0], when


def test_a_drop_that_lands_after_its_local_day_is_followed(tmp_path, monkeypatch):
    monkeypatch.setenv("PUSHGROWTH_HOME", str(tmp_path / "home"))
    # 09:00 UTC: the local day is over in every country of the catalog (UTC-3 to UTC-6)
    auto = Automation(dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(9), tzinfo=dt.UTC))
    auto.done(DAY)
    assert auto.tick() == {}
    auto.load(MLA)
    assert auto.tick().get("stg_users") == {MLA}


def test_on_a_first_day_assignments_wait_for_the_gate_that_follows_the_days_features(tmp_path, monkeypatch):
    """Publishing the catalog trains and gates every country's model before any data: that gate must not let a
    first day's assignments run before the model of that day's features (or in the same run as its dbt)."""
    monkeypatch.setenv("PUSHGROWTH_HOME", str(tmp_path / "home"))
    auto = Automation(latest_at(DAY))
    assert auto.tick() == {}
    auto.run(["campaign_catalog"])
    auto.follow()  # the catalog's followers (the models of every country) run
    first = f"MLA|{DAY.isoformat()}"
    auto.load(first)
    ticks = auto.follow()
    when = {name: [i for i, tick in enumerate(ticks) if name in tick]
            for name in ("user_features", "model_promotion", "daily_assignments")}
    assert when["user_features"] and when["model_promotion"] and len(when["daily_assignments"]) == 1, when
    assert when["user_features"][0] <= when["model_promotion"][-1] < when["daily_assignments"][0], when

