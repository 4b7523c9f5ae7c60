"""Where the closed loop's time goes: named stages, timed (and, on request, profiled) in whichever process runs
them.

Code marks its work with `with stage("dbt"): ...`. Time is *exclusive*: a stage entered inside another (MLflow
logging inside training, everything inside a Dagster run) is taken out of the outer one, so the stages of a
process add up to the time spent in them, and the run overhead of Dagster is what a run costs beyond the stages
it contains. Each process keeps its own totals; `take()` hands them over (the simulation's workers return them
with each run) and starts again from zero. With `enable_profiling(folder)`, every stage also runs under its own
`cProfile.Profile`, and `take()` writes what each profiled since the last call to `<folder>/<stage>-<pid>-<n>.prof`;
`merge_profiles(folder)` adds those up into one `<stage>.prof` per stage (read it with `python -m pstats` or
snakeviz).

No Dagster here: the domain modules stay importable without it, and timing costs two `perf_counter` calls a
stage.
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import itertools
import os
import pstats
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

STAGES: dict[str, str] = {
    "world": "the World: simulating the day, writing its extracts to the landing zone, receiving outboxes",
    "sensors": "evaluating the catalog and landing-zone sensors",
    "raw": "raw assets: reading a drop, checking it against the contract, writing the lake",
    "gx": "Great Expectations gates (raw extracts, user_features) and their Data Docs pages",
    "dbt": "dbt build (models and tests) and the export of the marts to the lake",
    "budget": "the budget ledger",
    "training": "training the country's reward model",
    "gate": "the promotion gate (off-policy evaluation, head quality)",
    "mlflow": "MLflow: logging and registering models, reading aliases, loading the champion",
    "assignments": "daily assignments and their blocking checks",
    "outbox": "the outbox and its delivery",
    "report": "the daily evaluation report",
    "oracle": "the oracle's value of each decision (simulation only)",
    "wait": "waiting for the warehouse's writer lock (another process's dbt build holds it)",
    "dagster": "Dagster run overhead: launching a run, resources, the event log, beyond the stages inside it",
    "summary": "the whole run's summary.json and report.html",
}
"""Every stage the loop is timed in, with what it covers (the benchmark's per-stage table uses this order)."""


@dataclass
class _Frame:
    name: str
    started: float
    spent: float = 0.0


@dataclass
class _State:
    totals: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    stack: list[_Frame] = field(default_factory=list)
    profile_dir: Path | None = None
    profilers: dict[str, cProfile.Profile] = field(default_factory=dict)
    dumps: Iterator[int] = field(default_factory=itertools.count)


_STATE = _State()


def enable_profiling(folder: Path | str | None) -> None:
    """Profile every stage of this process into `folder` (None: stop profiling)."""
    _STATE.profile_dir = Path(folder) if folder else None
    if _STATE.profile_dir is not None:
        _STATE.profile_dir.mkdir(parents=True, exist_ok=True)


def _profiler(name: str) -> cProfile.Profile | None:
    if _STATE.profile_dir is None:
        return None
    if name not in _STATE.profilers:
        _STATE.profilers[name] = cProfile.Profile()
    return _STATE.profilers[name]


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage `name` (one of `STAGES`), exclusive of the stages entered inside it."""
    if name not in STAGES:
        raise ValueError(f"unknown timing stage {name!r}; stages are {', '.join(STAGES)}")
    now = time.perf_counter()
    parent = _STATE.stack[-1] if _STATE.stack else None
    if parent is not None:
        parent.spent += now - parent.started
        outer = _profiler(parent.name)
        if outer is not None:
            outer.disable()
    frame = _Frame(name, now)
    _STATE.stack.append(frame)
    inner = _profiler(name)
    if inner is not None:
        inner.enable()
    try:
        yield
    finally:
        if inner is not None:
            inner.disable()
        now = time.perf_counter()
        _STATE.stack.pop()
        _STATE.totals[name] += frame.spent + (now - frame.started)
        if parent is not None:
            parent.started = now
            outer = _profiler(parent.name)
            if outer is not None:
                outer.enable()


def timed(name: str) -> Callable[[F], F]:
    """Decorate a function so that each call runs as stage `name`."""
    def wrap(function: F) -> F:
        @functools.wraps(function)
        def inner(*args, **kwargs):
            with stage(name):
                return function(*args, **kwargs)
        return inner  # type: ignore[return-value]
    return wrap


def take() -> dict[str, float]:
    """This process's seconds per stage since the last call (and its profiles written out); resets both.

    Stages still open (the caller's own) keep running and are counted when they end."""
    totals = {k: v for k, v in _STATE.totals.items() if v}
    _STATE.totals = defaultdict(float)
    if _STATE.profile_dir is not None:
        open_stages = {f.name for f in _STATE.stack}
        for name in [n for n in _STATE.profilers if n not in open_stages]:
            profiler = _STATE.profilers.pop(name)
            with contextlib.suppress(TypeError):  # a profiler that never ran has no stats to write
                profiler.dump_stats(_STATE.profile_dir / f"{name}-{os.getpid()}-{next(_STATE.dumps)}.prof")
    return totals


def add(totals: dict[str, float], more: dict[str, float]) -> dict[str, float]:
    """`totals` with `more` added in, per stage."""
    out = dict(totals)
    for name, seconds in more.items():
        out[name] = out.get(name, 0.0) + seconds
    return out


def merge_profiles(folder: Path | str) -> dict[str, Path]:
    """Add up the per-process dumps of each stage into `<folder>/<stage>.prof`; returns them by stage."""
    folder = Path(folder)
    merged = {}
    for name in STAGES:
        parts = sorted(folder.glob(f"{name}-*.prof"))
        if not parts:
            continue
        stats = pstats.Stats(str(parts[0]))
        for part in parts[1:]:
            stats.add(str(part))
        target = folder / f"{name}.prof"
        stats.dump_stats(str(target))
        for part in parts:
            part.unlink()
        merged[name] = target
    return merged
