"""The embedded World on a clock, for a platform that runs by itself (`make dev`: the Dagster daemon).

`pushgrowth simulate` drives every run itself. `pushgrowth live` only plays the marketplace: every `every`
seconds it hands the World the outboxes the platform delivered for the World's next day, lets the World live
that day, and drops its extracts into the landing zone. Everything else is the platform's own doing: the
landing-zone sensor loads the drop, automation follows it through dbt, the country's model and gate,
assignments and the outbox, and the outbox comes back on the next tick. A user watches the loop run itself in
the UI.

Before a day is simulated, the World waits up to `wait` seconds for the plans of that day (every country's
outbox); a country whose plans are still missing then gets no pushes that day, as a real marketplace would,
and the tick says so. The World is saved after every day, so `--resume` continues it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from pushgrowth.delivery import FileDelivery
from pushgrowth.home import Home
from pushgrowth.landing.zone import write_drop
from pushgrowth.sim import World, WorldConfig


@dataclass
class Tick:
    """One simulated day of the live World."""

    date: dt.date
    delivered: dict[str, int] = field(default_factory=dict)
    """Per country: pushes of the day's outbox handed to the World (already received ones not counted)."""
    late: list[str] = field(default_factory=list)
    """Countries whose plans for the day had not arrived when the World lived it."""
    rows: dict[str, int] = field(default_factory=dict)
    """Per country: rows of the drop written to the landing zone."""


class LiveWorld:
    """The World of a home folder, stepped one day at a time against whatever the platform has delivered."""

    def __init__(self, home: Home, config: WorldConfig | None = None, resume: bool = False,
                 instance: dg.DagsterInstance | None = None):
        from pushgrowth.simulate import prepare_dagster_home, save_budget_scale

        self.home = home
        home.root.mkdir(parents=True, exist_ok=True)
        if resume:
            self.world = World.load(home.world)
        else:
            if config is None:
                raise ValueError("a new live World needs a WorldConfig (or resume=True to continue the saved one)")
            self.world = World(config)
            save_budget_scale(home, config)
            self.world.save(home.world)
        prepare_dagster_home(home)
        self.instance = instance or dg.DagsterInstance.get()
        self.outbox = FileDelivery(home.outbox)

    @property
    def countries(self) -> list[str]:
        return list(self.world.config.users)

    def plans_ready(self, date: dt.date) -> list[str]:
        """Countries whose outbox for `date` has been delivered."""
        return [c for c in self.countries if self.outbox.path(c, date).exists()]

    def step(self, wait: float = 0.0, poll: float = 2.0, first: bool = False) -> Tick:
        """Live the World's next day: wait up to `wait` seconds for its plans (not on the `first` day, which
        nobody planned), hand them over, simulate the day and drop its extracts."""
        from pushgrowth.simulate import hand_over

        date = self.world.today
        deadline = time.monotonic() + wait
        while not first and len(self.plans_ready(date)) < len(self.countries) and time.monotonic() < deadline:
            time.sleep(poll)
        tick = Tick(date)
        for country in self.countries:
            if not self.outbox.path(country, date).exists():
                if not first:
                    tick.late.append(country)
                continue
            _, pushes, duplicates = hand_over(self.home, self.world, self.instance, country, date)
            tick.delivered[country] = pushes - duplicates
        extracts = self.world.step()
        for country, tables in extracts.items():
            write_drop(self.home.landing, country, date, tables)
            tick.rows[country] = sum(t.num_rows for t in tables.values())
        self.world.save(self.home.world)
        return tick


def run_live(world: LiveWorld, days: int, every: float, wait: float, on_tick: Callable[[Tick], None],
             first: bool = True) -> list[Tick]:
    """Step `days` days, one every `every` seconds (a day waits up to `wait` seconds for its plans)."""
    ticks = []
    for i in range(days):
        started = time.monotonic()
        ticks.append(world.step(wait=wait, first=first and i == 0))
        on_tick(ticks[-1])
        if i + 1 < days:
            time.sleep(max(0.0, every - (time.monotonic() - started)))
    return ticks
