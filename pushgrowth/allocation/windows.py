"""Caps over every rolling 7-day window: how many pushes a user can still take, window by window.

The country's `max_weekly_pushes` and a campaign's `frequency.weekly_cap` hold over *every* 7 consecutive days,
not over the plan's week alone: a plan that pushes late in its week followed by one that pushes early in the next
would otherwise put up to twice the cap into the seven days around the change of plans.

A new plan covers the seven days from its decision date (offsets 0..6). The 7-day windows it can touch start six
days before it to six days into it (`WINDOW_STARTS`, 13 windows) and together cover offsets -6..12 (`SPAN`). For
each window, the *room* is the cap minus the pushes already in it: delivered ones on the days before (from the
decisions of the last two weeks) and those that earlier plans still have in flight. A plan fits when, in every
window, its own pushes are within the room (`fits`). Windows that do not touch the new plan keep what they had.

The room of the 13 windows is logged with each decision (`encode_room`, the `window_room` column) so that
`pushgrowth trace` and off-policy evaluation rebuild exactly the schedules the policy could choose from.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pushgrowth.domain import PLAN_DAYS

WINDOW_STARTS = tuple(range(-(PLAN_DAYS - 1), PLAN_DAYS))
"""Start offsets (days from the plan's first day) of the 7-day windows that overlap a plan's week."""
SPAN = tuple(range(-(PLAN_DAYS - 1), 2 * PLAN_DAYS - 1))
"""The day offsets those windows cover: six days before the plan's week to six days after it."""
WEEK = WINDOW_STARTS.index(0)
"""The index of the window that is the plan's own week (the logged `capacity`)."""
HISTORY_DAYS = 2 * PLAN_DAYS - 2
"""Decision dates whose plans can have pushes in `SPAN`: the twelve days before the plan."""
MAX_ROOM = 9
"""Room is logged as one digit per window; caps are at most 7 (one push a day), so nothing is cut."""


def _rolling(counts: np.ndarray) -> np.ndarray:
    """(..., days - 6): the sums of (..., days) daily counts over every 7 consecutive days, earliest first."""
    counts = np.asarray(counts)
    # running totals in int32 into one preallocated array (pushes a day are a handful: no overflow); a million
    # users' int64 cumsum and concatenation took 0.9-3 s, this 0.1-0.3 s, with the same sums
    total = np.zeros((*counts.shape[:-1], counts.shape[-1] + 1), np.int32)
    np.cumsum(counts, axis=-1, dtype=np.int32, out=total[..., 1:])
    return (total[..., PLAN_DAYS:] - total[..., : counts.shape[-1] - PLAN_DAYS + 1]).astype(np.int64)


def _window_sums(counts: np.ndarray) -> np.ndarray:
    """(..., 13): the sums of (..., 19) counts on the offsets of `SPAN` over each window of `WINDOW_STARTS`."""
    return _rolling(counts)


def plan_windows(days: np.ndarray) -> np.ndarray:
    """(..., 13): a plan's pushes in each window, from (..., 7) pushes per day of its week."""
    days = np.asarray(days, dtype=np.int64)
    pad = np.zeros((*days.shape[:-1], PLAN_DAYS - 1), np.int64)
    return _window_sums(np.concatenate([pad, days, pad], axis=-1))


def pushes_by_offset(user_ids: np.ndarray, pushes: pd.DataFrame, date: dt.date) -> np.ndarray:
    """(users x 19): pushes each user already has on the days of `SPAN` around a plan decided on `date`.

    `pushes` has `user_id` and `send_date` (one row per push; rows outside `SPAN` or of other users are ignored)."""
    out = np.zeros((len(user_ids), len(SPAN)), dtype=np.int64)
    if not len(pushes):
        return out
    offsets = (pd.to_datetime(pushes["send_date"]) - pd.Timestamp(date)).dt.days.to_numpy() - SPAN[0]
    pos = pd.Index(np.asarray(user_ids, dtype=np.int64)).get_indexer(pushes["user_id"].to_numpy(np.int64))
    keep = (pos >= 0) & (offsets >= 0) & (offsets < len(SPAN))
    np.add.at(out, (pos[keep], offsets[keep]), 1)
    return out


def window_room(pushes: np.ndarray, cap: int | np.ndarray) -> np.ndarray:
    """(users x 13): pushes each user can still take in each window under `cap`, given `pushes_by_offset`."""
    return np.clip(np.asarray(cap)[..., None] - _window_sums(pushes), 0, MAX_ROOM)


def fits(days: np.ndarray, room: np.ndarray) -> np.ndarray:
    """(users,) booleans: a plan with (7,) pushes per day of its week fits each user's (users x 13) room."""
    return (plan_windows(days)[None, :] <= np.asarray(room)).all(axis=1)


def encode_room(room: np.ndarray) -> np.ndarray:
    """One string of 13 digits per user (the room of each window, earliest first), as logged in `window_room`."""
    room = np.clip(np.asarray(room, dtype=np.int64), 0, MAX_ROOM).reshape(-1, len(WINDOW_STARTS))
    digits = np.ascontiguousarray(room.astype(np.uint8) + ord("0"))  # one ASCII digit per window, row by row
    return digits.view(f"S{len(WINDOW_STARTS)}").ravel().astype(f"U{len(WINDOW_STARTS)}").astype(object)


def decode_room(logged: pd.Series | np.ndarray) -> np.ndarray:
    """(rows x 13) room from logged `window_room` strings (the inverse of `encode_room`); a clear error if not."""
    values = list(logged)
    bad = [i for i, v in enumerate(values)
           if not isinstance(v, str) or len(v) != len(WINDOW_STARTS) or not v.isdigit()]
    if bad:
        raise ValueError(f"window_room: row {bad[0]} is {values[bad[0]]!r}; expected {len(WINDOW_STARTS)} digits "
                         "(the room of each 7-day window around the plan)")
    if not values:
        return np.zeros((0, len(WINDOW_STARTS)), np.int64)
    return np.frombuffer("".join(values).encode(), dtype=np.uint8).reshape(len(values), -1).astype(np.int64) - 48


def rolling_overflows(pushes: pd.DataFrame, cap: int | pd.Series, keys: tuple[str, ...], first: dt.date,
                      last: dt.date) -> pd.DataFrame:
    """Every 7-day window starting between `first` and `last` in which a key (a user, or a user and campaign)
    has more pushes than its cap: `keys`, `window_start`, `pushes`, `cap`.

    `pushes` has `send_date` and the `keys` columns, one row per push; `cap` is one number or a Series indexed by
    the last key (e.g. campaign id -> weekly cap)."""
    columns = [*keys, "window_start", "pushes", "cap"]
    if not len(pushes) or last < first:
        return pd.DataFrame(columns=columns)
    days = (last - first).days + PLAN_DAYS
    offsets = (pd.to_datetime(pushes["send_date"]) - pd.Timestamp(first)).dt.days.to_numpy()
    inside = (offsets >= 0) & (offsets < days)
    rows = pushes.loc[inside, list(keys)].reset_index(drop=True)
    if not len(rows):
        return pd.DataFrame(columns=columns)
    grouped = rows.groupby(list(keys), sort=True)
    codes = grouped.ngroup().to_numpy()
    keyed = grouped.size().reset_index()[list(keys)]
    counts = np.zeros((len(keyed), days), dtype=np.int64)
    np.add.at(counts, (codes, offsets[inside]), 1)
    sums = _rolling(counts)
    limit = (keyed[keys[-1]].map(cap).to_numpy(np.float64) if isinstance(cap, pd.Series)
             else np.full(len(keyed), float(cap)))
    who, start = np.nonzero(sums > limit[:, None])
    out = keyed.iloc[who].reset_index(drop=True)
    out["window_start"] = [first + dt.timedelta(days=int(s)) for s in start]
    out["pushes"] = sums[who, start]
    out["cap"] = limit[who]
    return out[columns]
