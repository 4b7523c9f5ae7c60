"""Drive the platform with the World: each simulated day the World delivers extracts to the landing zone, the
real landing-zone sensor is evaluated and its run requests are executed against the Dagster instance under the
home folder, exactly as the daemon would run them. `make dev` afterwards shows every run and materialization.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from pushgrowth.home import Home
from pushgrowth.landing.zone import write_drop
from pushgrowth.sim import World, WorldConfig

SENSOR_NAME = "landing_zone_sensor"
CATALOG_SENSOR = "catalog_change_sensor"
REFRESH_JOB = "daily_refresh_job"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Runs log every event to the instance (the UI shows them); the terminal only gets warnings."""
DAGSTER_YAML = """# Written by pushgrowth: the Dagster instance of this home folder (SQLite storage beside this file).
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


def prepare_dagster_home(home: Home) -> Path:
    """Create `<home>/dagster` with a dagster.yaml and point DAGSTER_HOME (and PUSHGROWTH_HOME) at it."""
    home.dagster.mkdir(parents=True, exist_ok=True)
    config = home.dagster / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    os.environ["PUSHGROWTH_HOME"] = str(home.root)
    return home.dagster


@dataclass
class DayResult:
    date: dt.date
    runs: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class SimulationResult:
    config: WorldConfig
    days: list[DayResult]

    @property
    def failures(self) -> list[str]:
        return [f for d in self.days for f in d.failures]

    def to_json(self) -> dict:
        totals: dict[str, dict[str, int]] = {}
        for day in self.days:
            for country, rows in day.rows.items():
                for table, n in rows.items():
                    totals.setdefault(country, {}).setdefault(table, 0)
                    totals[country][table] += n
        return {
            "seed": self.config.seed,
            "start_date": self.config.start_date.isoformat(),
            "days": len(self.days),
            "users": self.config.users,
            "runs": sum(len(d.runs) for d in self.days),
            "failures": self.failures,
            "countries": {c: {"raw_rows": rows} for c, rows in totals.items()},
        }


class Loop:
    """The closed loop over one home folder: a World, the Dagster definitions and instance, the sensor cursors."""

    def __init__(self, home: Home, world: World):
        prepare_dagster_home(home)
        from pushgrowth.definitions import defs  # imported here: DAGSTER_HOME must be set first

        self.home, self.world, self.defs = home, world, defs
        self.instance = dg.DagsterInstance.get()
        self.cursor_file = home.root / "simulate_cursor.json"
        self.log = home.root / "simulate.log"
        self.cursors: dict[str, str | None] = (json.loads(self.cursor_file.read_text())
                                               if self.cursor_file.exists() else {})

    def day(self) -> DayResult:
        date = self.world.today
        extracts = self.world.step()
        result = DayResult(date)
        for country, tables in extracts.items():
            write_drop(self.home.landing, country, date, tables)
            result.rows[country] = {name: t.num_rows for name, t in tables.items()}
        self.tick(CATALOG_SENSOR, result)
        self.tick(SENSOR_NAME, result, then=REFRESH_JOB)
        self.world.save(self.home.world)
        return result

    def tick(self, sensor_name: str, result: DayResult, then: str | None = None) -> None:
        """Evaluate a sensor as the daemon would and run what it requests (and `then`, on success)."""
        sensor = self.defs.resolve_sensor_def(sensor_name)
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(sensor_name),
                                          sensor_name=sensor_name, resources=self.defs.resources,
                                          repository_def=self.defs.get_repository_def())
        sensor_result = sensor.evaluate_tick(context)
        job = self.defs.resolve_job_def(sensor.job_name)
        for request in sensor_result.run_requests or []:
            tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": sensor_name}
            label = str(request.partition_key or job.name)
            result.runs.append(label)
            with self.log.open("a") as log, contextlib.redirect_stdout(log):  # dbt echoes its log to stdout
                outcome = job.execute_in_process(partition_key=request.partition_key, instance=self.instance,
                                                 tags=tags, raise_on_error=False, run_config=QUIET)
                if outcome.success and then:  # what automation does after a raw load: refresh downstream
                    outcome = self.defs.resolve_job_def(then).execute_in_process(
                        partition_key=request.partition_key, instance=self.instance, raise_on_error=False,
                        run_config=QUIET)
            if not outcome.success:
                result.failures.append(f"{label}: {_failure_message(outcome)}")
        self.cursors[sensor_name] = sensor_result.cursor
        self.cursor_file.write_text(json.dumps(self.cursors))


def _failure_message(outcome: dg.ExecuteInProcessResult) -> str:
    for event in outcome.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            return event.step_failure_data.error.message.strip().splitlines()[0]
    return "run failed"


def simulate(
    home: Home,
    config: WorldConfig,
    days: int,
    resume: bool = False,
    on_day: Callable[[DayResult], None] | None = None,
) -> SimulationResult:
    """Run `days` days; with `resume`, continue the World saved in the home folder instead of a fresh one."""
    home.root.mkdir(parents=True, exist_ok=True)
    world = World.load(home.world) if resume else World(config)
    if not resume:
        (home.root / "simulate_cursor.json").unlink(missing_ok=True)
    loop = Loop(home, world)
    results = []
    for _ in range(days):
        day = loop.day()
        results.append(day)
        if on_day:
            on_day(day)
    result = SimulationResult(world.config, results)
    home.reports.mkdir(parents=True, exist_ok=True)
    (home.reports / "summary.json").write_text(json.dumps(result.to_json(), indent=2, sort_keys=True))
    return result
