"""Mutable state of one country in the World, and the small helpers the day simulation needs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from pushgrowth.domain import Country
from pushgrowth.sim.population import Population, day_index

QUEUE_COLUMNS = {
    "trace_id": "string",
    "idempotency_key": "string",
    "user_id": "int64",
    "campaign_id": "string",
    "template_id": "string",
    "value_proposition": "string",
    "tone": "string",
    "coupon_kind": "string",
    "coupon_value": "float64",
    "coupon_cap": "float64",
    "coupon_code": "string",
    "send_date": "datetime64[s]",
    "send_hour_local": "int64",
}
"""Outbox columns the World reads; other columns (rendered wording, group, ...) are ignored."""

PENDING_COLUMNS = {"due_day": "int64", "idx": "int64", "hour": "float64", "gmv": "float64", "ref": "int64"}
REF_COLUMNS = {"trace_id": "string", "campaign_id": "string", "coupon_code": "string"}
DAY_2000 = day_index(dt.date(2000, 1, 1))


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


@dataclass
class CountryState:
    """One country's users plus what is in flight: queued pushes, conversions still to happen, coupons issued."""

    code: str
    index: int
    country: Country
    pop: Population
    next_seq: int
    queue: pd.DataFrame = field(default_factory=lambda: empty_frame(QUEUE_COLUMNS))
    pending: pd.DataFrame = field(default_factory=lambda: empty_frame(PENDING_COLUMNS))
    refs: pd.DataFrame = field(default_factory=lambda: empty_frame(REF_COLUMNS))
    processed_keys: set[str] = field(default_factory=set)

    @property
    def id_base(self) -> int:
        return (self.index + 1) * 1_000_000_000

    def user_index(self, user_ids: np.ndarray) -> np.ndarray:
        """Row of each user id in the population, -1 where the id is not a user of this country."""
        idx = np.asarray(user_ids, dtype=np.int64) - self.id_base
        return np.where((idx >= 0) & (idx < self.pop.n), idx, -1)

    def ids(self, day: int, table_no: int, n: int) -> np.ndarray:
        """Deterministic, unique ids for `n` new rows of a table on a day."""
        base = (((self.index + 1) * 100 + table_no) * 100_000 + (day - DAY_2000)) * 10_000_000
        return base + np.arange(n, dtype=np.int64)


@lru_cache(maxsize=4096)
def utc_offset_seconds(tz: str, date: dt.date) -> int:
    """Offset of a zone at local noon of a date (pushes and events are not simulated across DST switches)."""
    return int(ZoneInfo(tz).utcoffset(dt.datetime(date.year, date.month, date.day, 12)).total_seconds())


def timestamps(
    state: CountryState, date: dt.date, idx: np.ndarray, hour: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(UTC, local) datetime64[us] arrays for fractional local hours of `date` for users `idx`."""
    micros = np.clip(np.round(np.asarray(hour, dtype=np.float64) * 3.6e9), 0, 24 * 3.6e9 - 1).astype(np.int64)
    local = np.datetime64(date, "us") + micros.astype("timedelta64[us]")
    offsets = np.array([utc_offset_seconds(tz, date) for tz in state.country.timezones], dtype=np.int64)
    utc = local - (offsets[state.pop.tz[idx]] * 1_000_000).astype("timedelta64[us]")
    return utc, local
