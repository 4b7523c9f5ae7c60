"""`build_outbox` (decisions -> one row per push) and `outbox_problems` (what must stop an outbox before delivery)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pushgrowth.allocation.assign import assign
from pushgrowth.allocation.invariants import outbox_problems
from pushgrowth.allocation.outbox import OUTBOX_COLUMNS, build_outbox, coupon_code
from pushgrowth.campaigns import format_coupon
from pushgrowth.domain import COUNTRIES, PLAN_DAYS
from tests.allocation.helpers import DATE, send_offsets

RUNS = [("cold", 1), ("cold", 2), ("model", 1)]


@pytest.fixture(scope="module")
def outboxes(run, catalog, population):
    """(decisions, outbox) of a few standard days."""
    out = {}
    for key in RUNS:
        _, result = run(*key)
        out[key] = (result.decisions, build_outbox(result.decisions, catalog, population.users, DATE))
    return out


@pytest.fixture(scope="module")
def exhausted_day(run, catalog, population):
    """A day with rows that carry no plan (`budget_exhausted`, as pacing leaves them when a ladder without a
    coupon-free option runs out mid-day): their users get nothing."""
    _, result = run("cold", 3)
    d = result.decisions.copy()
    rows = d.index[(d["group"] != "holdout") & d["frequency"].notna()][:25]
    for column in ("coupon_kind", "coupon_value", "coupon_cap", "template_id", "tone", "send_hour", "send_weekday",
                   "frequency"):
        d.loc[rows, column] = None
    d.loc[rows, "policy"] = "budget_exhausted"
    return d, build_outbox(d, catalog, population.users, DATE)


def _planned(d: pd.DataFrame) -> pd.DataFrame:
    return d[(d["group"] != "holdout") & d["frequency"].notna()]


# --- shape and keys ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", RUNS)
def test_one_row_per_push_of_every_plan(outboxes, key):
    d, out = outboxes[key]
    plans = _planned(d)
    assert list(out.columns) == OUTBOX_COLUMNS
    assert len(out) == int(plans["frequency"].astype(int).sum()) > 0
    per_trace = out.groupby("trace_id").size()
    expected = plans.set_index("trace_id")["frequency"].astype(int)
    pd.testing.assert_series_equal(per_trace.sort_index(), expected.sort_index(), check_names=False)
    assert set(out["country"]) <= set(COUNTRIES)


@pytest.mark.parametrize("key", RUNS)
def test_idempotency_keys_are_trace_and_position(outboxes, key):
    _, out = outboxes[key]
    assert out["idempotency_key"].is_unique
    assert (out["idempotency_key"] == out["trace_id"] + "-" + out["send_index"].astype(str)).all()
    for _, rows in out.groupby("trace_id"):
        assert sorted(rows["send_index"].tolist()) == list(range(len(rows)))
    assert out["idempotency_key"].is_monotonic_increasing   # sorted: a stable file for a stable day


@pytest.mark.parametrize("key", RUNS)
def test_send_dates_follow_the_plan_inside_its_week(outboxes, key):
    d, out = outboxes[key]
    plans = _planned(d).set_index("trace_id")
    week_end = pd.Timestamp(DATE + dt.timedelta(days=PLAN_DAYS))
    assert ((out["send_date"] >= pd.Timestamp(DATE)) & (out["send_date"] < week_end)).all()
    for trace, rows in out.groupby("trace_id"):
        plan = plans.loc[trace]
        offsets = send_offsets(DATE, int(plan["send_weekday"]), int(plan["frequency"]))
        days = sorted((rows["send_date"] - pd.Timestamp(DATE)).dt.days.tolist())
        assert tuple(days) == offsets
        assert (rows["send_hour_local"] == int(plan["send_hour"])).all()
    # never two pushes to one user on one day
    assert not out.duplicated(["user_id", "send_date"]).any()


@pytest.mark.parametrize("key", RUNS)
def test_rows_carry_the_decision_and_the_users_time_zone(outboxes, population, key):
    d, out = outboxes[key]
    plans = _planned(d).set_index("trace_id")
    merged = out.join(plans, on="trace_id", rsuffix="_plan")
    for column in ("user_id", "campaign_id", "group", "policy", "template_id", "tone", "value_proposition",
                   "coupon_kind", "propensity", "expected_cost"):
        left, right = merged[column], merged[f"{column}_plan"]
        assert (left == right).all(), column
    assert (merged["coupon_value"].astype(float) == merged["coupon_value_plan"].astype(float)).all()
    tz = population.users.set_index("user_id")["timezone"]
    assert (out["timezone"] == out["user_id"].map(tz)).all()


# --- what is (not) in the outbox ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key", RUNS)
def test_holdout_is_never_in_the_outbox(outboxes, key):
    d, out = outboxes[key]
    holdout = d.loc[d["group"] == "holdout", "trace_id"]
    assert len(holdout) > 0
    assert not out["trace_id"].isin(holdout).any()
    assert (out["group"] != "holdout").all()
    assert set(out["trace_id"]) == set(_planned(d)["trace_id"])


def test_rows_without_a_plan_send_nothing(exhausted_day):
    d, out = exhausted_day
    unsent = d.loc[d["frequency"].isna(), "trace_id"]
    assert not out["trace_id"].isin(unsent).any()
    assert (out["policy"] != "budget_exhausted").all()
    assert len(out) == int(_planned(d)["frequency"].astype(int).sum())


# --- wording and coupons ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", RUNS)
def test_wording_is_rendered_with_the_users_first_name(outboxes, catalog, population, key):
    _, out = outboxes[key]
    names = population.users.set_index("user_id")["first_name"]
    personal = 0
    for row in out.itertuples(index=False):
        tpl = catalog.get(row.campaign_id).template(row.template_id)
        name = names[row.user_id]
        for text, rendered in ((tpl.title, row.title), (tpl.body, row.body)):
            assert "{" not in rendered and "}" not in rendered, rendered
            if "{first_name}" in text:
                assert name in rendered
                personal += 1
            if "{coupon}" in text:
                c = catalog.get(row.campaign_id)
                assert format_coupon(c.coupon.kind, float(row.coupon_value), c.currency) in rendered
    assert personal > 50, "the synthetic day should use templates with {first_name}"


@pytest.mark.parametrize("key", RUNS)
def test_coupon_codes_only_for_coupon_plans_and_deterministic(outboxes, key):
    _, out = outboxes[key]
    has = out["coupon_value"].astype(float) > 0
    assert has.any() and (~has).any()
    assert out.loc[~has, "coupon_code"].isna().all()
    codes = out.loc[has, "coupon_code"]
    assert (codes == out.loc[has, "trace_id"].map(coupon_code)).all()
    assert codes.str.fullmatch(r"PG[0-9A-F]{10}").all()
    # one code per plan (all its pushes), distinct across plans
    per_trace = out[has].groupby("trace_id")["coupon_code"].nunique()
    assert (per_trace == 1).all()
    assert out[has].drop_duplicates("trace_id")["coupon_code"].is_unique
    assert (out.loc[has, "coupon_kind"] != "none").all() and (out.loc[~has, "coupon_kind"] == "none").all()


# --- determinism and errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", RUNS)
def test_rebuilding_gives_the_identical_outbox(outboxes, catalog, population, key):
    d, out = outboxes[key]
    pd.testing.assert_frame_equal(build_outbox(d, catalog, population.users, DATE), out)
    # the order of decisions and of the users snapshot does not matter
    rng = np.random.default_rng(0)
    shuffled = d.iloc[rng.permutation(len(d))]
    users = population.users.iloc[rng.permutation(len(population.users))]
    pd.testing.assert_frame_equal(build_outbox(shuffled, catalog, users, DATE), out)


def test_rebuilding_after_rerunning_assign_gives_the_identical_outbox(run, catalog, population):
    """Re-materializing the day (assign, then the outbox) yields exactly the same pushes and keys."""
    inputs, result = run("cold", 4)
    first = build_outbox(result.decisions, catalog, population.users, DATE)
    again = build_outbox(assign(inputs).decisions, catalog, population.users, DATE)
    pd.testing.assert_frame_equal(first, again)


def test_a_planned_user_missing_from_the_users_snapshot_is_named(outboxes, catalog, population):
    d, _ = outboxes[("cold", 1)]
    victim = int(_planned(d)["user_id"].iloc[7])
    users = population.users[population.users["user_id"] != victim]
    with pytest.raises(ValueError, match=str(victim)):
        build_outbox(d, catalog, users, DATE)


def test_a_holdout_user_missing_from_the_snapshot_is_fine(outboxes, catalog, population):
    d, out = outboxes[("cold", 1)]
    holdout_users = d.loc[d["group"] == "holdout", "user_id"]
    users = population.users[~population.users["user_id"].isin(holdout_users)]
    pd.testing.assert_frame_equal(build_outbox(d, catalog, users, DATE), out)


def test_no_plans_give_an_empty_outbox(outboxes, catalog, population):
    d, _ = outboxes[("cold", 1)]
    empty = build_outbox(d[d["group"] == "holdout"], catalog, population.users, DATE)
    assert len(empty) == 0 and list(empty.columns) == OUTBOX_COLUMNS
    empty = build_outbox(d.iloc[0:0], catalog, population.users, DATE)
    assert len(empty) == 0 and list(empty.columns) == OUTBOX_COLUMNS


# --- outbox_problems ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", RUNS)
def test_a_valid_outbox_passes_the_checks(outboxes, population, key):
    d, out = outboxes[key]
    assert outbox_problems(out, d, population.users) == []


def _problem(problems: list[str], words: str) -> str:
    hits = [p for p in problems if words in p]
    assert len(hits) == 1, problems
    return hits[0]


def test_check_catches_a_duplicated_idempotency_key(outboxes, population):
    d, out = outboxes[("cold", 1)]
    dup = out.iloc[[5]]
    bad = pd.concat([out, dup], ignore_index=True)
    problems = outbox_problems(bad, d, population.users)
    assert dup["idempotency_key"].iloc[0] in _problem(problems, "idempotency")


def test_check_catches_a_holdout_trace(outboxes, population):
    d, out = outboxes[("cold", 1)]
    h = d[d["group"] == "holdout"].iloc[0]
    row = out.iloc[[0]].assign(trace_id=h["trace_id"], idempotency_key=h["trace_id"] + "-0",
                               user_id=h["user_id"], send_date=pd.Timestamp("2030-01-01"))
    problems = outbox_problems(pd.concat([out, row], ignore_index=True), d, population.users)
    assert h["trace_id"] in _problem(problems, "holdout")


def test_check_catches_an_opted_out_user(outboxes, population):
    d, out = outboxes[("cold", 1)]
    victim = int(out["user_id"].iloc[3])
    users = population.users.copy()
    users.loc[users["user_id"] == victim, "push_opt_in"] = False
    problems = outbox_problems(out, d, users)
    assert str(victim) in _problem(problems, "do not accept pushes")


def test_check_catches_a_user_unknown_to_the_snapshot(outboxes, population):
    d, out = outboxes[("cold", 1)]
    victim = int(out["user_id"].iloc[3])
    users = population.users[population.users["user_id"] != victim]
    problems = outbox_problems(out, d, users)
    assert str(victim) in _problem(problems, "do not accept pushes")


def test_check_catches_two_pushes_to_one_user_on_one_day(outboxes, population):
    d, out = outboxes[("cold", 1)]
    first = out.iloc[0]
    extra = out.iloc[[0]].assign(trace_id="pg-extra", idempotency_key="pg-extra-0", campaign_id="other")
    problems = outbox_problems(pd.concat([out, extra], ignore_index=True), d, population.users)
    message = _problem(problems, "one day")
    # like the other checks, the message names what was found: the user (and the day)
    assert str(int(first["user_id"])) in message, message


def test_check_reports_every_problem_at_once(outboxes, population):
    d, out = outboxes[("cold", 1)]
    h = d[d["group"] == "holdout"].iloc[0]
    victim = int(out["user_id"].iloc[3])
    users = population.users.copy()
    users.loc[users["user_id"] == victim, "push_opt_in"] = False
    holdout_row = out.iloc[[1]].assign(trace_id=h["trace_id"], idempotency_key=h["trace_id"] + "-0")
    bad = pd.concat([out, out.iloc[[5]], holdout_row], ignore_index=True)
    problems = outbox_problems(bad, d, users)
    assert len(problems) == 4, problems


def test_check_catches_a_cap_broken_across_outboxes(outboxes, population, catalog):
    """Earlier outboxes count: pushes sent in the days before fill the 7-day windows this outbox's pushes
    fall in (the country's cap and each campaign's)."""
    d, out = outboxes[("cold", 1)]
    assert outbox_problems(out, d, population.users, catalog=catalog, earlier=out.iloc[:0], date=DATE) == []
    first = out.sort_values("send_date").iloc[0]
    user, day = int(first["user_id"]), pd.Timestamp(first["send_date"])
    cap = catalog.policies["MLB"].max_weekly_pushes
    sent = pd.DataFrame({"user_id": user, "campaign_id": "mlb-other",
                         "send_date": [day - pd.Timedelta(days=k) for k in range(1, cap + 1)]})
    problems = outbox_problems(out, d, population.users, catalog=catalog, earlier=sent, date=DATE)
    message = _problem(problems, "7-day window")
    assert str(user) in message and f"{cap} pushes in 7 days" in message, message
    # the same pushes two weeks earlier are outside every window: nothing to say
    old = sent.assign(send_date=sent["send_date"] - pd.Timedelta(days=14))
    assert outbox_problems(out, d, population.users, catalog=catalog, earlier=old, date=DATE) == []
    # the campaign's own cap: one more push of the same campaign the day before
    c = catalog.get(str(first["campaign_id"]))
    own = pd.DataFrame({"user_id": user, "campaign_id": c.id,
                        "send_date": [day - pd.Timedelta(days=k) for k in range(1, c.frequency.weekly_cap + 1)]})
    message = _problem(outbox_problems(out, d, population.users, catalog=catalog, earlier=own, date=DATE),
                       "7-day window")
    assert "campaign weekly cap" in message, message


def test_check_catches_a_push_on_a_day_an_earlier_outbox_already_took(outboxes, population, catalog):
    d, out = outboxes[("cold", 1)]
    first = out.iloc[0]
    earlier = pd.DataFrame({"user_id": [int(first["user_id"])], "campaign_id": ["mlb-other"],
                            "send_date": [first["send_date"]]})
    message = _problem(outbox_problems(out, d, population.users, catalog=catalog, earlier=earlier, date=DATE),
                       "one day")
    assert str(int(first["user_id"])) in message
