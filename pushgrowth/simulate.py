"""Drive the platform with the World: each simulated day the World delivers extracts to the landing zone, the
real landing-zone sensor is evaluated and its run requests are executed against the Dagster instance under the
home folder, exactly as the daemon would run them; then, per country, what automation runs after a raw load:
the daily refresh (dbt, checks, budget ledger), the model job (training and the promotion gate) and the
assignment job (decisions and the outbox). The World receives the delivered outbox and answers it in the next
days' extracts. `make dev` afterwards shows every run and materialization.

In simulation only, the oracle values every decision at decision time (the `oracle` dataset, an external asset
of the `simulation` group), for the report's regret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

import pandas as pd

from pushgrowth import settings as home_settings
from pushgrowth.alerts import innermost_error
from pushgrowth.bandit.model import THREADS_ENV
from pushgrowth.defs import reads
from pushgrowth.delivery import FileDelivery
from pushgrowth.evaluation.oracle import oracle_values
from pushgrowth.home import Home
from pushgrowth.storage import DECISIONS, ORACLE
from pushgrowth.storage import lake as store
from pushgrowth.storage.catalog import published_catalog
from pushgrowth.landing.zone import write_drop
from pushgrowth.sim import World, WorldConfig
from pushgrowth import timing

SENSOR_NAME = "landing_zone_sensor"
CATALOG_SENSOR = "catalog_change_sensor"
REFRESH_JOB = "daily_refresh_job"
MODEL_JOB = "model_job"
ASSIGNMENT_JOB = "assignment_job"
BUDGET_USERS = 500_000
"""The catalog's budgets are sized for about half a million reachable users per country (at that size BAU's own
coupon spend roughly fills them); the World is a sample, so `simulate` scales each country's budgets by (its
simulated users / this), unless told otherwise."""
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Runs log every event to the instance (the UI shows them); the terminal only gets warnings."""
DAGSTER_YAML = """# Written by pushgrowth: the Dagster instance of this home folder (SQLite storage beside this file).
telemetry:
  enabled: false
# the stock SQLite storage (the same files under this folder), with its connections kept open between queries
# instead of a new engine and connection per query: see pushgrowth/instance_storage.py
storage:
  custom:
    module: pushgrowth.instance_storage
    class: PooledSqliteStorage
    config:
      base_dir:
        env: DAGSTER_HOME
# runs the daemon launches (automation, sensors, the safety net, backfills) queue: at most 4 at once and one per
# country, so a backfill of many days goes a country-day at a time per country (simulate runs in process: no queue);
# the coordinator is Dagster's queue that first tags every partitioned run with its country (pushgrowth/country);
# it looks at the queue every second instead of every 5 (one SQLite query): a day's chain is about ten runs that
# each wait for the one before, so a 5-second look added some 25 s to a day's drop-to-report
run_coordinator:
  module: pushgrowth.defs.run_queue
  class: CountryRunCoordinator
  config:
    dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: pushgrowth/country
        value:
          applyLimitPerUniqueValue: true
        limit: 1
# a run whose worker died (SIGKILL, OOM, a lost machine) would hold its country's one slot forever: the monitoring
# daemon fails runs that never start within 5 minutes or run longer than an hour (a country-day takes minutes)
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  cancel_timeout_seconds: 300
  max_runtime_seconds: 3600
  poll_interval_seconds: 60
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
    decisions: dict[str, int] = field(default_factory=dict)
    pushes: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per timing stage (`pushgrowth.timing.STAGES`) spent on this day, summed over processes."""


@dataclass
class SimulationResult:
    config: WorldConfig
    days: list[DayResult]
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per timing stage over the whole run (the days' and the final reports'), summed over processes."""

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


@dataclass
class ChainResult:
    """What one country-day's chain of runs did."""

    key: str
    runs: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    assigned: bool = False
    ok: bool = False
    timings: dict[str, float] = field(default_factory=dict)


_WORKER: dict = {}
"""The definitions and the Dagster instance of the run, loaded once (importing them takes seconds)."""


PARENT_POLL_SECONDS = 1.0
"""How often a worker checks that the driver that started it is still alive."""


def _exit_with_parent(parent: int) -> None:
    """End this worker as soon as its driver (`parent`: the pid the driver passed, since its driver may be gone
    before a worker starts) is no longer its parent. A driver killed on its own (SIGKILL, the OOM killer, a
    `kill` of its pid) left its workers running its last country-days to the end and beyond, for 40 minutes in
    one case, competing with whatever ran next; their runs left in flight are released by the next `--resume`
    (`release_dead_runs`)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="pushgrowth-driver-watch", daemon=True).start()


def _init_worker(root: str, log: str | None = None, threads: int | None = None, profile: str | None = None,
                 worker: bool = False, driver: int | None = None) -> None:
    """Set up a process that runs the loop's jobs: the driver itself, or (`worker`) one of its workers, which
    exits as soon as the `driver` process id is no longer its parent."""
    if threads is not None:  # this worker's share of the cores (see bandit.model.THREADS_ENV)
        os.environ.setdefault(THREADS_ENV, str(threads))
    if driver is not None:
        _exit_with_parent(driver)
    if worker and log:  # everything a worker prints (libraries' chatter, C extensions too) goes to the log
        with open(log, "a") as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
    timing.enable_profiling(profile)
    home = Home.from_env(root)
    prepare_dagster_home(home)
    from pushgrowth.definitions import defs  # imported here: DAGSTER_HOME must be set first

    _WORKER.update(defs=defs, instance=dg.DagsterInstance.get(), log=log)


def _execute(job_name: str, partition_key, chain: ChainResult, label: str, tags: dict | None = None,
             needed: str | None = None) -> bool:
    """Run a job; True when it succeeded (or, with `needed`, when that step did, whatever came after it)."""
    job = _WORKER["defs"].resolve_job_def(job_name)
    chain.runs.append(label)
    log = _WORKER.get("log")
    with (open(log, "a") if log else contextlib.nullcontext()) as out, \
            (contextlib.redirect_stdout(out) if out else contextlib.nullcontext()), \
            (contextlib.redirect_stderr(out) if out else contextlib.nullcontext()), timing.stage("dagster"):
        # dbt echoes its log, MLflow announces registrations: the log file gets them, not the console
        outcome = job.execute_in_process(partition_key=partition_key, instance=_WORKER["instance"],
                                         tags={**(tags or {}), DRIVER_TAG: DRIVER}, raise_on_error=False,
                                         run_config=QUIET)
    chain.timings = timing.add(chain.timings, timing.take())
    if not outcome.success:
        chain.failures.append(f"{label}: {_failure_message(outcome)}")
    if needed is not None:
        return any(e.step_key == needed for e in outcome.get_step_success_events())
    return outcome.success


DRIVER_TAG, DRIVER = "pushgrowth/driver", "simulate"
"""The tag on every run the simulation executes in its own processes (no run worker or daemon owns them)."""


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark as failed the runs a killed simulation left in flight, and say which (call it holding `driving`: no
    other simulation of this home is alive, so no run it tagged can still be running). Its locks need nothing:
    the warehouse and MLflow locks are OS file locks, released when their process dies."""
    in_flight = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                 dg.DagsterRunStatus.CANCELING]
    released = []
    for run in instance.get_runs(dg.RunsFilter(statuses=in_flight, tags={DRIVER_TAG: DRIVER})):
        instance.report_run_failed(run, "the simulation that ran it was killed; `simulate --resume` runs its "
                                        "day again")
        released.append(f"{run.job_name} {run.tags.get('dagster/partition', '')} ({run.run_id[:8]})".strip())
    return released


STAGES = ("raw", "refresh", "model", "assign")
"""A country-day's runs in order: the sensor's raw load, then what automation follows it (the daily refresh, the
model job, the assignment job). Each stage needs the one before it to succeed, except the model stage: a failed
model job keeps the champion serving."""


def _stage(key: str, tags: dict, stage: str) -> ChainResult:
    """Run one stage of a country-day; `chain.ok` says whether the next stage may run."""
    from pushgrowth.defs.partitions import country_day_partitions

    chain = ChainResult(key)
    partition = country_day_partitions.get_partition_key_from_str(key)
    country = partition.keys_by_dimension["country"]
    if stage == "raw":
        chain.ok = _execute("raw_extracts_job", partition, chain, key, tags)
    elif stage == "refresh":
        chain.ok = _execute(REFRESH_JOB, partition, chain, f"{REFRESH_JOB} {key}")
    elif stage == "model":
        _execute(MODEL_JOB, country, chain, f"{MODEL_JOB} {country}")
        chain.ok = True
    elif stage == "assign":
        # the outbox went out even if the day's report failed: the World must receive it
        chain.assigned = chain.ok = _execute(ASSIGNMENT_JOB, partition, chain, f"{ASSIGNMENT_JOB} {key}",
                                             needed="push_outbox")
    else:
        raise ValueError(f"unknown stage {stage!r}; stages are {STAGES}")
    return chain


class Loop:
    """The closed loop over one home folder: a World, the Dagster definitions and instance, the sensor cursors.

    With `workers` > 1 the country-days of a date run in that many processes at once, as a daemon with several
    run workers would: they take turns on the warehouse (its writer lock) and on MLflow's store (its lock), and
    everything else (raw loads, checks, models, assignments, reports) overlaps. Work is handed out a run at a
    time (a stage of a country-day, see `STAGES`), not a country-day at a time, so three countries on two
    workers take about 3/2 of a country-day's runs, not two country-days' worth.
    """

    def __init__(self, home: Home, world: World, workers: int = 1, profile: Path | None = None,
                 on_stage: Callable[[str, str, bool], None] | None = None):
        self.home, self.world = home, world
        self.log = home.root / "simulate.log"
        self.on_stage = on_stage or (lambda key, stage, done: None)
        """Called with (country-day key, stage, False) as each stage of a country-day starts and with True when it
        has ended (see `STAGES`)."""
        _init_worker(str(home.root), str(self.log), profile=str(profile) if profile else None)
        self.defs, self.instance = _WORKER["defs"], _WORKER["instance"]
        self.cursor_file = home.root / "simulate_cursor.json"
        self.cursors: dict[str, str | None] = (json.loads(self.cursor_file.read_text())
                                               if self.cursor_file.exists() else {})
        self.pool = None
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker,
                                            initargs=(str(home.root), str(self.log), max(1, cores // workers),
                                                      str(profile) if profile else None, True, os.getpid()))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def day(self) -> DayResult:
        date = self.world.today
        result = DayResult(date)
        with timing.stage("world"):
            extracts = self.world.step()
            for country, tables in extracts.items():
                write_drop(self.home.landing, country, date, tables)
                result.rows[country] = {name: t.num_rows for name, t in tables.items()}
        for request in self.tick(CATALOG_SENSOR):
            chain = ChainResult("catalog")
            _execute(self.defs.resolve_sensor_def(CATALOG_SENSOR).job_name, None, chain, "catalog_job",
                     {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": CATALOG_SENSOR})
            result.runs += chain.runs
            result.failures += chain.failures
            result.timings = timing.add(result.timings, chain.timings)
        work = [(str(r.partition_key), {**r.tags, "dagster/run_key": r.run_key, "dagster/sensor_name": SENSOR_NAME})
                for r in self.tick(SENSOR_NAME)]
        for chain in self._chains(work):
            result.runs += chain.runs
            result.failures += chain.failures
            result.timings = timing.add(result.timings, chain.timings)
            if chain.assigned:
                self.deliver(chain.key, result)
        with timing.stage("world"):
            self.world.save(self.home.world)
        result.timings = timing.add(result.timings, timing.take())
        return result

    def _chains(self, work: list[tuple[str, dict]]) -> Iterator[ChainResult]:
        """Run the country-days' stages, each after the one before it succeeded; yields each stage's result as it
        ends (a country-day's assign stage last)."""
        if self.pool is None:
            for key, tags in work:
                for stage in STAGES:
                    self.on_stage(key, stage, False)
                    chain = _stage(key, tags, stage)
                    self.on_stage(key, stage, True)
                    yield chain
                    if not chain.ok:
                        break
            return
        pending = {}
        for key, tags in work:
            self.on_stage(key, STAGES[0], False)
            pending[self.pool.submit(_stage, key, tags, STAGES[0])] = (key, tags, 0)
        while pending:
            done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
            for future in done:
                key, tags, i = pending.pop(future)
                chain = future.result()
                self.on_stage(key, STAGES[i], True)
                if chain.ok and i + 1 < len(STAGES):
                    self.on_stage(key, STAGES[i + 1], False)
                    pending[self.pool.submit(_stage, key, tags, STAGES[i + 1])] = (key, tags, i + 1)
                yield chain

    def deliver(self, key: str, result: DayResult) -> None:
        """Hand the delivered outbox to the World, and record the oracle's view of the decisions."""
        country, day = key.split("|")
        tomorrow = dt.date.fromisoformat(day) + dt.timedelta(days=1)
        result.decisions[country], result.pushes[country], _ = hand_over(self.home, self.world, self.instance,
                                                                         country, tomorrow)

    def tick(self, sensor_name: str) -> list[dg.RunRequest]:
        """Evaluate a sensor as the daemon would, keep its cursor, and return its run requests."""
        with timing.stage("sensors"):
            return self._tick(sensor_name)

    def _tick(self, sensor_name: str) -> list[dg.RunRequest]:
        sensor = self.defs.resolve_sensor_def(sensor_name)
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(sensor_name),
                                          sensor_name=sensor_name, resources=self.defs.resources,
                                          repository_def=self.defs.get_repository_def())
        sensor_result = sensor.evaluate_tick(context)
        self.cursors[sensor_name] = sensor_result.cursor
        self.cursor_file.write_text(json.dumps(self.cursors))
        return list(sensor_result.run_requests or [])


def hand_over(home: Home, world: World, instance: dg.DagsterInstance, country: str, date: dt.date
              ) -> tuple[int, int, int]:
    """Give the World the outbox the platform delivered for `country` and `date` (the day the World simulates
    next), and, while the World still stands before that day, value the day's decisions with its oracle (the
    external asset `oracle`, reported to the instance). Returns (decisions, pushes, pushes already received):
    handing an outbox over twice sends nothing twice (the World refuses keys it has, like the delivery system)."""
    with timing.stage("world"):
        outbox = pd.read_parquet(FileDelivery(home.outbox).path(country, date))
        duplicates = world.deliver(outbox).duplicates if len(outbox) else 0
    decisions = store.read_frame(home.lake, DECISIONS, country, date)
    if len(decisions) and world.today == date:
        with timing.stage("oracle"):
            truth = oracle_values(world, country, decisions, published_catalog(home.lake))
            path = store.write(home.lake, ORACLE, country, date, truth)
            instance.report_runless_asset_event(dg.AssetMaterialization(
                ORACLE.asset, description=f"the World's value of the decisions of {country} {date}",
                metadata={"country": country, "date": date.isoformat(), "dagster/row_count": len(truth),
                          "path": dg.MetadataValue.path(str(path))}))
    return len(decisions), len(outbox), duplicates


class HomeInUse(RuntimeError):
    """Another process is driving this home folder's World (`simulate` or `live`)."""


@contextlib.contextmanager
def driving(home: Home) -> Iterator[None]:
    """Hold the home folder's World for this process (an OS file lock, released even if the process is killed);
    a second `simulate` or `live` on the same home is refused with HomeInUse instead of running every job twice."""
    from filelock import FileLock, Timeout

    home.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(home.root / "world.lock"), timeout=0)
    owner = home.root / "world.lock.pid"
    try:
        lock.acquire()
    except Timeout:
        who = owner.read_text().strip() if owner.exists() else "another process"
        raise HomeInUse(f"{home.root} is in use by {who}: one simulation (or live World) per home folder; wait "
                        f"for it to end, or use another PUSHGROWTH_HOME") from None
    try:
        owner.write_text(f"pid {os.getpid()}")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def save_budget_scale(home: Home, config: WorldConfig, budget_scale: float | None = None) -> None:
    """The World is a sample of the marketplace: scale each country's budgets by its simulated users over
    BUDGET_USERS (or by `budget_scale`), in the home folder's settings."""
    scale = {c: (budget_scale if budget_scale is not None else n / BUDGET_USERS) for c, n in config.users.items()}
    home_settings.save(home, home_settings.HomeSettings(budget_scale=scale))


def _failure_message(outcome: dg.ExecuteInProcessResult) -> str:
    """The step and the innermost error of the first failed step (what a person needs to start looking)."""
    for event in outcome.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            return f"{event.step_key}: {innermost_error(event.step_failure_data.error)}"
    return "run failed"


def simulate(
    home: Home,
    config: WorldConfig,
    days: int,
    resume: bool = False,
    on_day: Callable[[DayResult], None] | None = None,
    budget_scale: float | None = None,
    workers: int = 1,
    profile: Path | None = None,
    on_stage: Callable[[str, str, bool], None] | None = None,
) -> SimulationResult:
    """Run `days` days; with `resume`, continue the World saved in the home folder instead of a fresh one.

    `on_day` is called with each finished day, `on_stage` with (country-day key, stage, done) as each run starts
    and ends;
    with `profile`, every timing stage is profiled into that folder (see `pushgrowth.timing`). Raises HomeInUse
    when another simulation or live World holds the home folder."""
    with driving(home):
        return _simulate(home, config, days, resume, on_day, budget_scale, workers, profile, on_stage)


def _simulate(home: Home, config: WorldConfig, days: int, resume: bool, on_day, budget_scale, workers: int,
              profile: Path | None, on_stage) -> SimulationResult:
    world = World.load(home.world) if resume else World(config)
    if not resume and budget_scale is not False:
        save_budget_scale(home, config, budget_scale)
    if not resume:
        (home.root / "simulate_cursor.json").unlink(missing_ok=True)
    loop = Loop(home, world, workers, profile=profile, on_stage=on_stage)
    released = release_dead_runs(loop.instance)
    if released:
        print(f"resume: {len(released)} runs of a killed simulation were left in flight, now marked failed: "
              f"{', '.join(released[:5])}{' ...' if len(released) > 5 else ''}", file=sys.stderr)
    results = []
    try:
        for _ in range(days):
            day = loop.day()
            results.append(day)
            if on_day:
                on_day(day)
    finally:
        loop.close()
    with timing.stage("summary"):
        result = SimulationResult(world.config, results)
        write_reports(home, result)
    result.timings = timing.add({}, timing.take())
    for day in results:
        result.timings = timing.add(result.timings, day.timings)
    if profile is not None:
        timing.merge_profiles(profile)
    return result


def write_reports(home: Home, result: SimulationResult) -> dict:
    """`reports/summary.json` and `reports/report.html` for the whole run (every decision so far, all countries)."""
    from pushgrowth.evaluation import summary as evaluation
    from pushgrowth.evaluation.models import model_summary
    from pushgrowth.evaluation.render import render_html

    data = result.to_json()
    data["generated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    frames, oracles = {}, {}
    for country in result.config.users:
        frames[country] = evaluation.decisions_frame(reads.decision_log(home.lake, country))
        oracles[country] = reads.oracle(home.lake, country)
        report = evaluation.country_summary(frames[country], oracles[country])
        report["models"] = model_summary(home, country)
        data["countries"].setdefault(country, {}).update(report)
    data["pooled"] = evaluation.pooled(frames, oracles=oracles)
    home.reports.mkdir(parents=True, exist_ok=True)
    (home.reports / "summary.json").write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    render_html(data, home.reports / "report.html", title=f"pushgrowth simulation: {data['days']} days")
    return data
