"""The World: a seeded synthetic marketplace that produces raw extracts and answers pushes.

    world = World(WorldConfig.build(countries=("MLA", "MLB", "MLM"), users=5_000, seed=7))
    extracts = world.step()                      # {country: {table: pyarrow.Table}} for world.today, then advances
    world.deliver(outbox)                        # queue pushes (outbox rows) for their local send date
    world.oracle("MLB", user_ids, actions)       # expected outcomes of plans, as of world.today
    world.save(path); World.load(path)           # the state survives between processes

Every draw comes from a generator seeded by (seed, country, day, stream), so a World replays identically for
the same config and the same outboxes, whatever the order in which countries are stepped.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pushgrowth.domain import COUNTRIES, COUPON_KINDS, MATURITY_DAYS, TONES, VALUE_PROPOSITIONS
from pushgrowth.sim import ground_truth as _oracle
from pushgrowth.sim.config import WorldConfig
from pushgrowth.sim.day import simulate_country_day
from pushgrowth.sim.population import Population, day_index, generate
from pushgrowth.sim.state import QUEUE_COLUMNS, CountryState

COUNTRY_INDEX = {code: i for i, code in enumerate(COUNTRIES)}
STATE_VERSION = 1


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the World did with an outbox: queued pushes, and pushes refused as already received."""

    accepted: int
    duplicates: int


class World:
    def __init__(self, config: WorldConfig):
        self.config = config
        self.today: dt.date = config.start_date
        self.states: dict[str, CountryState] = {}
        for code, n in config.users.items():
            ci = COUNTRY_INDEX[code]
            rng = self._rng(code, day_index(config.start_date), stream=0)
            pop = generate(rng, COUNTRIES[code], config.country_calibration(code), n, config.start_date, 0, ci)
            self.states[code] = CountryState(code=code, index=ci, country=COUNTRIES[code], pop=pop, next_seq=n)

    @property
    def countries(self) -> tuple[str, ...]:
        return tuple(self.states)

    def _rng(self, code: str, day: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, COUNTRY_INDEX[code], day, stream])

    def population(self, country: str) -> Population:
        """The users of a country, hidden traits included (for tests and analysis, never for policies)."""
        return self._state(country).pop

    def _state(self, country: str) -> CountryState:
        try:
            return self.states[country]
        except KeyError:
            raise ValueError(f"country {country!r} is not simulated; this World has {list(self.states)}") from None

    def step(self, countries: tuple[str, ...] | None = None) -> dict[str, dict[str, pa.Table]]:
        """Simulate `self.today` for every country (or the given ones, all of them before advancing)."""
        out = {}
        for code in countries or self.countries:
            state = self._state(code)
            rng = self._rng(code, day_index(self.today), stream=1)
            out[code] = simulate_country_day(state, self.config.country_calibration(code), self.today, rng)
        self.today += dt.timedelta(days=1)
        return out

    def deliver(self, outbox: pd.DataFrame) -> DeliveryReceipt:
        """Queue outbox rows for delivery on their `send_date` at `send_hour_local` in the user's time zone.

        A push whose idempotency key was already received (queued or delivered) is dropped: the World, like
        the delivery system it stands for, never sends the same push twice. Rows for past dates fail as
        `expired` when their day is simulated.
        """
        _check_outbox(outbox)
        duplicates = 0
        accepted = 0
        for code, rows in outbox.groupby("country", sort=True):
            state = self._state(str(code))
            rows = rows.drop_duplicates("idempotency_key")
            seen = state.processed_keys | set(state.queue["idempotency_key"].tolist())
            fresh = rows[~rows["idempotency_key"].isin(seen)]
            duplicates += len(rows) - len(fresh)
            frame = fresh[list(QUEUE_COLUMNS)].astype(QUEUE_COLUMNS)
            state.queue = pd.concat([state.queue, frame], ignore_index=True) if len(state.queue) else frame
            accepted += len(fresh)
        duplicates += len(outbox) - outbox["idempotency_key"].nunique()
        return DeliveryReceipt(accepted=accepted, duplicates=duplicates)

    def oracle(
        self,
        country: str,
        user_ids: np.ndarray | list[int],
        actions: pd.DataFrame,
        date: dt.date | None = None,
        cost_share: np.ndarray | float = 1.0,
        trace_ids: np.ndarray | list[str] | None = None,
    ) -> pd.DataFrame:
        """Expected outcomes of one plan per user, decided on `date` (default: today, before it is simulated).

        `actions` has one row per user with the columns in `pushgrowth.sim.ground_truth.ACTION_COLUMNS`; see that
        module for the meaning of each outcome. Only today's state is known, so `date` must not be in the past.
        Pushes already queued for a user in the plan's window count as other plans' (they tire the user), except
        those of the row's own plan when `trace_ids` (one per row) names it: a plan already delivered to the
        World, or being compared with the alternatives it replaces.
        """
        date = date or self.today
        if date < self.today:
            raise ValueError(f"oracle: {date} is in the past; the World is at {self.today}")
        state = self._state(country)
        idx = state.user_index(np.asarray(user_ids, dtype=np.int64))
        if (idx < 0).any():
            bad = np.asarray(user_ids)[idx < 0][:5].tolist()
            raise ValueError(f"oracle: user ids {bad} are not users of {country}")
        if len(actions) != len(idx):
            raise ValueError(f"oracle: {len(actions)} actions for {len(idx)} users; give one action per user")
        if trace_ids is not None and len(trace_ids) != len(idx):
            raise ValueError(f"oracle: {len(trace_ids)} trace ids for {len(idx)} users; give one per user")
        calib = self.config.country_calibration(country)
        scheduled = _queued_pushes(state, date, idx, trace_ids)
        return _oracle.evaluate(state, calib, date, idx, actions.reset_index(drop=True), cost_share, scheduled)

    def save(self, path: str | Path) -> None:
        """Write the whole state (config, date, populations, queues) under `path`, replacing what was there."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / "world.pkl.tmp"
        with tmp.open("wb") as fh:
            pickle.dump({"version": STATE_VERSION, "today": self.today, "states": self.states}, fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
        (path / "config.json").write_text(self.config.model_dump_json(indent=2))
        tmp.replace(path / "world.pkl")

    @classmethod
    def load(cls, path: str | Path) -> World:
        path = Path(path)
        if not (path / "world.pkl").exists():
            raise FileNotFoundError(f"no saved World under {path} (expected {path / 'world.pkl'})")
        config = WorldConfig.model_validate(json.loads((path / "config.json").read_text()))
        with (path / "world.pkl").open("rb") as fh:
            saved = pickle.load(fh)
        if saved.get("version") != STATE_VERSION:
            raise ValueError(f"{path / 'world.pkl'}: state version {saved.get('version')}, "
                             f"expected {STATE_VERSION}")
        world = cls.__new__(cls)
        world.config, world.today, world.states = config, saved["today"], saved["states"]
        return world


def _queued_pushes(state: CountryState, date: dt.date, idx: np.ndarray,
                   trace_ids: np.ndarray | list[str] | None) -> np.ndarray:
    """(rows x MATURITY_DAYS): pushes queued for each row's user on each day of a window starting on `date`,
    the row's own trace's left out."""
    per_user, traces, own = _queue_counts(state, date)
    out = per_user[idx]
    if trace_ids is not None and len(traces):
        out = out - own[traces.get_indexer(np.asarray(trace_ids, dtype=object))]
    return out


_QUEUE_COUNTS: dict[int, tuple] = {}
"""The last `_queue_counts` of each country state, kept while its queue object and the date stay the same (the
oracle asks about one queue a dozen times a day)."""


def _queue_counts(state: CountryState, date: dt.date) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """Queued pushes per user and day of the window (users x MATURITY_DAYS), the queued traces, and their pushes
    per day (traces + 1 rows, the last one all zeros for traces with nothing queued)."""
    q = state.queue
    cached = _QUEUE_COUNTS.get(id(state))
    if cached is not None and cached[0] is q and cached[1] == date:
        return cached[2]
    per_user = np.zeros((state.pop.n, MATURITY_DAYS))
    offset = q["send_date"].to_numpy().astype("datetime64[D]").astype(np.int64) - day_index(date)
    user = state.user_index(q["user_id"].to_numpy(np.int64))
    keep = (offset >= 0) & (offset < MATURITY_DAYS) & (user >= 0)
    codes, uniques = pd.factorize(q["trace_id"].to_numpy(object)[keep])
    own = np.zeros((len(uniques) + 1, MATURITY_DAYS))
    np.add.at(per_user, (user[keep], offset[keep]), 1.0)
    np.add.at(own, (codes, offset[keep]), 1.0)
    result = (per_user, pd.Index(uniques), own)
    _QUEUE_COUNTS[id(state)] = (q, date, result)
    return result


def _check_outbox(outbox: pd.DataFrame) -> None:
    required = ["country", *QUEUE_COLUMNS]
    missing = [c for c in required if c not in outbox.columns]
    if missing:
        raise ValueError(f"outbox: missing columns {missing}")
    for column, allowed in (("tone", TONES), ("value_proposition", VALUE_PROPOSITIONS),
                            ("coupon_kind", COUPON_KINDS)):
        bad = set(outbox[column].dropna().unique()) - set(allowed)
        if bad:
            raise ValueError(f"outbox: column {column} has unknown values {sorted(bad)}; allowed: {list(allowed)}")
    hours = outbox["send_hour_local"]
    if ((hours < 0) | (hours > 23)).any():
        raise ValueError("outbox: column send_hour_local must be within 0..23")
