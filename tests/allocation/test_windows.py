"""`allocation.windows`: the room of every 7-day window around a plan, and overflows over rolling windows, held
to brute-force counts over random schedules (hypothesis)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushgrowth.allocation import windows
from pushgrowth.allocation.assign import assign, scheduled_pushes
from pushgrowth.domain import PLAN_DAYS
from tests.allocation.conftest import MODEL_CAMPAIGNS
from tests.allocation.helpers import DATE


def _brute_room(offsets: list[int], cap: int) -> list[int]:
    return [max(0, min(windows.MAX_ROOM, cap - sum(s <= o < s + PLAN_DAYS for o in offsets)))
            for s in windows.WINDOW_STARTS]


def _frame(user_offsets: dict[int, list[int]], date: dt.date = DATE, campaign: str = "c") -> pd.DataFrame:
    rows = [(u, campaign, pd.Timestamp(date + dt.timedelta(days=o))) for u, offs in user_offsets.items() for o in offs]
    return pd.DataFrame(rows, columns=["user_id", "campaign_id", "send_date"])


def test_the_windows_around_a_plan():
    assert len(windows.WINDOW_STARTS) == 2 * PLAN_DAYS - 1 and windows.WINDOW_STARTS[windows.WEEK] == 0
    assert windows.SPAN[0] == -(PLAN_DAYS - 1) and windows.SPAN[-1] == 2 * PLAN_DAYS - 2
    # a push on the plan's first day is in the seven windows that start 6 days before it to that day
    first = windows.plan_windows(np.eye(PLAN_DAYS, dtype=int)[0])
    assert first.tolist() == [1] * PLAN_DAYS + [0] * (PLAN_DAYS - 1)
    last = windows.plan_windows(np.eye(PLAN_DAYS, dtype=int)[-1])
    assert last.tolist() == [0] * (PLAN_DAYS - 1) + [1] * PLAN_DAYS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-8, 14), max_size=12), st.integers(1, 7))
def test_room_is_the_cap_minus_the_pushes_of_each_window(offsets, cap):
    pushes = windows.pushes_by_offset(np.array([7]), _frame({7: offsets}), DATE)
    assert windows.window_room(pushes, cap)[0].tolist() == _brute_room(offsets, cap)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-6, 12), max_size=10), st.sets(st.integers(0, PLAN_DAYS - 1), max_size=4),
       st.integers(1, 7))
def test_a_plan_fits_exactly_when_no_window_goes_over_the_cap(existing, plan, cap):
    room = windows.window_room(windows.pushes_by_offset(np.array([1]), _frame({1: existing}), DATE), cap)
    days = np.isin(np.arange(PLAN_DAYS), sorted(plan)).astype(int)
    # every window the plan touches stays within the cap (a window already over it takes nothing more)
    brute = all(sum(s <= o < s + PLAN_DAYS for o in [*existing, *plan]) <= cap for s in windows.WINDOW_STARTS
                if any(s <= o < s + PLAN_DAYS for o in plan))
    assert bool(windows.fits(days, room)[0]) == brute


def test_pushes_outside_the_span_and_of_other_users_are_ignored():
    frame = _frame({1: [-7, -6, 0, 12, 13], 2: [0]})
    counts = windows.pushes_by_offset(np.array([1, 3]), frame, DATE)
    assert counts[0].sum() == 3 and counts[0][0] == 1 and counts[0][-1] == 1
    assert counts[1].sum() == 0


def test_room_round_trips_through_the_log():
    room = np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 0], [5] * 13])
    logged = windows.encode_room(room)
    assert logged.tolist() == ["0123456789990", "5" * 13]
    np.testing.assert_array_equal(windows.decode_room(pd.Series(logged)), room)
    assert windows.decode_room([]).shape == (0, 13)


def test_the_logged_room_is_each_windows_digit_and_is_clipped_to_one_digit():
    room = np.random.default_rng(3).integers(-3, 14, (500, 13))
    expected = ["".join(str(min(max(v, 0), windows.MAX_ROOM)) for v in row) for row in room.tolist()]
    logged = windows.encode_room(room)
    assert logged.dtype == object and all(type(v) is str for v in logged) and logged.tolist() == expected
    assert windows.encode_room(np.zeros((0, 13), np.int64)).shape == (0,)


def test_window_sums_are_the_plain_sums_of_every_seven_days():
    counts = np.random.default_rng(4).integers(0, 4, (200, len(windows.SPAN)))
    sums = windows.window_room(counts, 12)
    brute = np.array([[counts[u, s - windows.SPAN[0]: s - windows.SPAN[0] + PLAN_DAYS].sum()
                       for s in windows.WINDOW_STARTS] for u in range(len(counts))])
    np.testing.assert_array_equal(sums, np.clip(12 - brute, 0, windows.MAX_ROOM))
    np.testing.assert_array_equal(windows._rolling(counts), brute)


@pytest.mark.parametrize("bad", ["123", None, "12345678901x3"])
def test_a_malformed_logged_room_is_named(bad):
    with pytest.raises(ValueError, match="window_room: row 1"):
        windows.decode_room(["5" * 13, bad])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.integers(1, 4), st.lists(st.integers(-10, 16), max_size=9), max_size=4),
       st.integers(1, 6), st.integers(-6, 3), st.integers(0, 8))
def test_rolling_overflows_are_every_window_over_the_cap(user_offsets, cap, first, length):
    frame = _frame(user_offsets)
    start, last = DATE + dt.timedelta(days=first), DATE + dt.timedelta(days=first + length)
    found = windows.rolling_overflows(frame, cap, ("user_id",), start, last)
    expected = {(u, DATE + dt.timedelta(days=s), n) for u, offs in user_offsets.items()
                for s in range(first, first + length + 1)
                if (n := sum(s <= o < s + PLAN_DAYS for o in offs)) > cap}
    assert {(int(r.user_id), r.window_start, int(r.pushes)) for r in found.itertuples()} == expected


def test_rolling_overflows_take_a_cap_per_campaign():
    frame = pd.concat([_frame({1: [0, 2, 4]}, campaign="a"), _frame({1: [1, 3]}, campaign="b")], ignore_index=True)
    found = windows.rolling_overflows(frame, pd.Series({"a": 2, "b": 2}), ("user_id", "campaign_id"), DATE, DATE)
    assert found[["user_id", "campaign_id", "pushes", "cap"]].values.tolist() == [[1, "a", 3, 2.0]]


# --- assign keeps every window within the caps, whatever the pushes around the plan ------------------------------

@st.composite
def _histories(draw, users: np.ndarray, campaigns: list[str], country_cap: int, campaign_caps: dict[str, int]):
    """Random pushes of earlier plans around DATE (sent on the six days before, in flight up to six days after),
    at most one a day, that keep every window within the caps (as the platform left them)."""
    rows = []
    for user in users:
        offsets: list[int] = []
        per_campaign: dict[str, list[int]] = {}
        for offset in draw(st.lists(st.integers(-(PLAN_DAYS - 1), PLAN_DAYS - 2), max_size=7, unique=True)):
            cid = draw(st.sampled_from(campaigns))
            mine = per_campaign.get(cid, [])
            if _within([*offsets, offset], country_cap) and _within([*mine, offset], campaign_caps[cid]):
                offsets.append(offset)
                per_campaign[cid] = [*mine, offset]
                rows.append((int(user), cid, pd.Timestamp(DATE + dt.timedelta(days=offset))))
    return pd.DataFrame(rows, columns=["user_id", "campaign_id", "send_date"]).astype({"send_date": "datetime64[s]"})


def _within(offsets: list[int], cap: int) -> bool:
    return all(sum(s <= o < s + PLAN_DAYS for o in offsets) <= cap for s in range(-12, PLAN_DAYS))


@pytest.mark.parametrize("policy", ["cold", "model"])
def test_assign_never_puts_more_than_a_cap_into_any_seven_days(catalog, policies, build_inputs, policy):
    ids = MODEL_CAMPAIGNS[:5]
    base = build_inputs(policies[policy], 5, users=60, campaign_ids=ids)
    users = np.sort(base.audiences["user_id"].unique())
    cap = catalog.policies["MLB"].max_weekly_pushes
    caps = {c: catalog.get(c).frequency.weekly_cap for c in ids}

    @settings(max_examples=12, deadline=None)
    @given(_histories(users, ids, cap, caps))
    def check(history):
        inputs = build_inputs(policies[policy], 5, users=60, campaign_ids=ids, scheduled=history)
        d = assign(inputs).decisions
        new = scheduled_pushes(d[d["group"] != "holdout"].assign(date=pd.Timestamp(DATE)), DATE)
        assert len(new) > 0
        every = pd.concat([history, new], ignore_index=True)
        for user, rows in every.groupby("user_id"):
            touched = new["user_id"].eq(user).any()
            offsets = [(pd.Timestamp(t) - pd.Timestamp(DATE)).days for t in rows["send_date"]]
            assert not touched or _within(offsets, cap), f"user {user}: {sorted(offsets)} over {cap} in 7 days"
            for cid, mine in rows.groupby("campaign_id"):
                own = [(pd.Timestamp(t) - pd.Timestamp(DATE)).days for t in mine["send_date"]]
                assert _within(own, caps[cid]), f"user {user} {cid}: {sorted(own)} over {caps[cid]} in 7 days"
            assert rows["send_date"].is_unique, f"user {user}: two pushes on one day"

    check()
