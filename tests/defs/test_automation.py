"""Monitoring in Dagster: failed runs and failed blocking checks alert a (local) Slack, late assignments are
noticed, the safety net re-requests missing days, and every downstream asset follows by automation."""

import datetime as dt
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pyarrow as pa
import pytest

from pushgrowth.defs.automation.sensors import (
    assignments_freshness,
    check_failure_alert,
    daily_safety_net,
    late_countries,
    run_failure_alert,
)
from pushgrowth.defs.resources import HomeResource, NotifierResource
from pushgrowth.lake import write_partition
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
    write_partition(home.lake, "decisions", "MLA", DAY + dt.timedelta(days=1), pa.table({"x": [1]}))
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
    write_partition(home.lake, "decisions", "MLA", DAY + dt.timedelta(days=1), pa.table({"x": [1]}))
    assert isinstance(daily_safety_net(context), dg.SkipReason)


def test_everything_after_the_raw_load_follows_by_automation_behind_blocking_checks():
    from pushgrowth.defs.automation.conditions import FOLLOW
    from pushgrowth.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in ("budget_ledger", "bandit_model", "model_promotion", "daily_assignments", "push_outbox",
                "evaluation_report", "user_features", "decision_log"):
        condition = graph.get(dg.AssetKey(key)).automation_condition
        assert condition is not None, key
        assert "all_deps_blocking_checks_passed" in str(condition) or condition == FOLLOW, key
    repo = defs.get_repository_def()
    assert {"run_failure_alert", "check_failure_alert", "assignments_freshness", "landing_zone_sensor",
            "catalog_change_sensor"} <= {s.name for s in repo.sensor_defs}
    assert [s.name for s in repo.schedule_defs] == ["daily_safety_net"]
