import datetime as dt

import pandas as pd
import pytest

from pushgrowth.domain import ActionSpace, plan_send_offsets
from pushgrowth.plans import expand_plans, trace_id

TUESDAY = dt.date(2026, 9, 1)


@pytest.mark.parametrize(
    ("weekday", "frequency", "offsets"),
    [(1, 1, (0,)), (0, 1, (6,)), (4, 2, (3, 6)), (5, 2, (0, 4)), (1, 3, (0, 2, 4)), (6, 3, (0, 2, 5))],
)
def test_plan_sends_start_on_the_chosen_weekday_and_stay_within_the_week(weekday, frequency, offsets):
    assert plan_send_offsets(TUESDAY, weekday, frequency) == offsets
    first_day = TUESDAY + dt.timedelta(days=min(o for o in offsets if (TUESDAY.weekday() + o) % 7 == weekday))
    assert first_day.weekday() == weekday


def test_plan_rejects_impossible_options():
    with pytest.raises(ValueError, match="frequency must be one of"):
        plan_send_offsets(TUESDAY, 1, 4)
    with pytest.raises(ValueError, match="send_weekday"):
        plan_send_offsets(TUESDAY, 7, 1)


def test_trace_ids_are_deterministic_and_distinct():
    a = trace_id(TUESDAY, "MLB", "c1", 42)
    assert a == trace_id(TUESDAY, "MLB", "c1", 42)
    assert len({a, trace_id(TUESDAY, "MLB", "c1", 43), trace_id(TUESDAY, "MLB", "c2", 42),
                trace_id(TUESDAY + dt.timedelta(days=1), "MLB", "c1", 42), trace_id(TUESDAY, "MLM", "c1", 42)}) == 5


def test_expand_plans_gives_one_row_per_push_with_unique_idempotency_keys():
    plans = pd.DataFrame({"trace_id": ["a", "b"], "send_weekday": [1, 4], "frequency": [3, 1], "x": [1, 2]})
    out = expand_plans(plans, TUESDAY)
    assert out["trace_id"].tolist() == ["a", "a", "a", "b"]
    assert out["idempotency_key"].tolist() == ["a-0", "a-1", "a-2", "b-0"]
    assert [d.date() for d in out["send_date"]] == [TUESDAY, TUESDAY + dt.timedelta(2),
                                                   TUESDAY + dt.timedelta(4), TUESDAY + dt.timedelta(3)]
    with pytest.raises(ValueError, match="row 1 has 5"):
        expand_plans(plans.assign(frequency=[1, 5]), TUESDAY)


def test_action_space_enumerates_every_joint_action():
    space = ActionSpace("installments", "percent", (0, 5, 10), (("a", "benefit"), ("b", "urgency")), (9, 20),
                        (0, 3, 5), (1, 2), coupon_cap=100.0)
    actions = space.joint_actions()
    assert len(actions) == space.size == 3 * 2 * 2 * 3 * 2
    assert not actions.duplicated().any()
    assert set(actions.loc[actions["coupon_value"] == 0, "coupon_kind"]) == {"none"}
    assert set(actions.loc[actions["coupon_value"] > 0, "coupon_kind"]) == {"percent"}
