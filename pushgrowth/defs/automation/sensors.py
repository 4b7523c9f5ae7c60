"""Monitoring: alerts on failed runs and failed blocking checks, late assignments, and a safety-net schedule.

Alerts go through the `notifier` resource (Slack when `PUSHGROWTH_SLACK_WEBHOOK_URL` is set, else
`<home>/alerts/alerts.log`), and every alert is also written to the Dagster log of the sensor tick.

Every sensor's minimum interval (here, the landing-zone sensor's and the catalog sensor's) goes through
`sensor_interval`: `PUSHGROWTH_SENSOR_INTERVAL_SECONDS`, when set, caps them all (read when the definitions are
loaded), so a test with the real daemon ticks in seconds instead of minutes.
"""

import datetime as dt
import json
import os
import time

import dagster as dg

from pushgrowth.alerts import Alert, innermost_error
from pushgrowth.defs.automation.jobs import daily_refresh_job
from pushgrowth.defs.partitions import country_day_partitions, partition_key
from pushgrowth.defs.resources import HomeResource, NotifierResource
from pushgrowth.landing.zone import list_drops
from pushgrowth.storage import DECISIONS
from pushgrowth.storage import lake as store

SENSOR_INTERVAL_ENV = "PUSHGROWTH_SENSOR_INTERVAL_SECONDS"
"""When set (whole seconds, at least 1), every sensor of the project ticks at most this far apart."""


def sensor_interval(seconds: int) -> int:
    """A sensor's minimum interval: `seconds`, or less when `PUSHGROWTH_SENSOR_INTERVAL_SECONDS` is smaller.

    Read at import time (when the code location loads the definitions); an empty value leaves `seconds`."""
    value = os.environ.get(SENSOR_INTERVAL_ENV, "").strip()
    if not value:
        return seconds
    try:
        cap = int(value)
    except ValueError:
        raise ValueError(f"{SENSOR_INTERVAL_ENV}={value!r}: expected whole seconds") from None
    if cap < 1:
        raise ValueError(f"{SENSOR_INTERVAL_ENV}={value!r}: expected at least 1 second")
    return min(seconds, cap)


LATE_AFTER_HOURS = 3.0
"""A country's plans for tomorrow are late when its day's complete drop landed this long ago without them."""


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=sensor_interval(30),
                       description="Alerts on every failed run: job, partition and the first error.")
def run_failure_alert(context: dg.RunFailureSensorContext, notifier: NotifierResource) -> None:
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    for event in context.get_step_failure_events():
        if event.step_failure_data and event.step_failure_data.error:
            message = f"step {event.step_key}: {innermost_error(event.step_failure_data.error)}"
            break
    notifier.send(Alert("run_failure", f"{run.job_name} failed", message, severity="error",
                        fields={"run_id": run.run_id, "partition": run.tags.get("dagster/partition", "-")}),
                  context.log)


@dg.sensor(default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=sensor_interval(30),
           description="Alerts when a blocking asset check fails (the data it gates was held back).")
def check_failure_alert(context: dg.SensorEvaluationContext, notifier: NotifierResource) -> dg.SensorResult:
    """Reads the check evaluations of runs finished since the last tick (works on any event log storage)."""
    after = dt.datetime.fromisoformat(context.cursor) if context.cursor else None
    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    records = context.instance.get_run_records(dg.RunsFilter(updated_after=after, statuses=finished),
                                               limit=200, order_by="update_timestamp", ascending=True)
    sent = 0
    for record in records:
        for entry in context.instance.all_logs(record.dagster_run.run_id,
                                               of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data
            if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
                continue
            notifier.send(Alert("check_failure",
                                f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed",
                                evaluation.description or "a blocking check failed; downstream work was held back",
                                severity="error", fields={"partition": str(evaluation.partition or "-"),
                                                          "run_id": entry.run_id}), context.log)
            sent += 1
    cursor = records[-1].update_timestamp.isoformat() if records else context.cursor
    return dg.SensorResult(cursor=cursor, skip_reason=None if sent else "no failed blocking checks")


def late_countries(home, now: float, late_after_hours: float = LATE_AFTER_HOURS) -> list[dict]:
    """Countries whose latest complete drop is older than the grace period without tomorrow's decisions."""
    latest: dict[str, object] = {}
    for drop in list_drops(home.landing):
        if drop.country not in latest or drop.date > latest[drop.country].date:
            latest[drop.country] = drop
    late = []
    for country, drop in sorted(latest.items()):
        tomorrow = drop.date + dt.timedelta(days=1)
        waited = (now - drop.marker.stat().st_mtime) / 3600
        if waited > late_after_hours and not store.exists(home.lake, DECISIONS, country, tomorrow):
            late.append({"country": country, "data_date": drop.date.isoformat(),
                         "decision_date": tomorrow.isoformat(), "hours_waited": round(waited, 1)})
    return late


@dg.sensor(default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=sensor_interval(300),
           description=f"Freshness: alerts when a country's plans for tomorrow are missing {LATE_AFTER_HOURS:g} hours "
                       "after its day's extracts landed, and records the `on_time` check of daily_assignments.")
def assignments_freshness(context: dg.SensorEvaluationContext, home: HomeResource,
                          notifier: NotifierResource) -> dg.SensorResult:
    late = late_countries(home.home, time.time())
    alerted = set(json.loads(context.cursor)) if context.cursor else set()
    for item in late:
        key = f"{item['country']}|{item['decision_date']}"
        if key not in alerted:
            notifier.send(Alert("late_assignments", f"{item['country']}: plans for {item['decision_date']} are late",
                                f"the extracts of {item['data_date']} landed {item['hours_waited']} hours ago and "
                                "no decisions were written; check the daily refresh and assignment runs",
                                severity="error", fields=item), context.log)
            alerted.add(key)
    evaluation = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("daily_assignments"), check_name="on_time", passed=not late,
        metadata={"late": dg.MetadataValue.json(late), "grace_hours": LATE_AFTER_HOURS},
        description="; ".join(f"{i['country']} {i['decision_date']} late" for i in late) or "every country on time")
    return dg.SensorResult(asset_events=[evaluation], cursor=json.dumps(sorted(alerted)[-500:]))


@dg.asset_check(asset="daily_assignments", name="on_time",
                description=f"Every country's plans for tomorrow exist within {LATE_AFTER_HOURS:g} hours of its "
                            "day's extracts landing (evaluated by the assignments_freshness sensor).")
def assignments_on_time(home: HomeResource) -> dg.AssetCheckResult:
    late = late_countries(home.home, time.time())
    return dg.AssetCheckResult(passed=not late, metadata={"late": dg.MetadataValue.json(late)})


@dg.schedule(cron_schedule="0 11 * * *", job=daily_refresh_job, default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Safety net: every day at 11:00 UTC, re-request the refresh of any complete drop whose plans "
                         "for the next day are still missing (automation then runs models and assignments).")
def daily_safety_net(context: dg.ScheduleEvaluationContext, home: HomeResource):
    valid = set(country_day_partitions.get_partition_keys())
    requests = []
    for drop in list_drops(home.home.landing):
        tomorrow = drop.date + dt.timedelta(days=1)
        key = partition_key(drop.country, drop.date)
        done = store.exists(home.home.lake, DECISIONS, drop.country, tomorrow)
        if not done and key in valid and drop.date >= dt.date.today() - dt.timedelta(days=7):
            requests.append(dg.RunRequest(run_key=f"safety-net|{key}", partition_key=key))
    return requests or dg.SkipReason("every recent drop has its plans")


automation = dg.AutomationConditionSensorDefinition(
    "pushgrowth_automation", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=sensor_interval(30),
    description="Evaluates every asset's automation condition (pushgrowth.defs.automation.conditions) and requests "
                "the runs that follow the data: on by default, so a loaded drop flows through dbt, the country's "
                "model and gate, assignments, the outbox and the report without a manual launch.")
