"""The World is heterogeneous, calibrated, and its oracle agrees with what it simulates."""

import numpy as np
import pandas as pd
import pytest

from pushgrowth.domain import MATURITY_DAYS
from pushgrowth.sim import World, WorldConfig
from tests.sim.conftest import SPACE, outbox_for


@pytest.fixture(scope="module")
def world() -> World:
    w = World(WorldConfig.build(("MLB",), users=30_000, seed=11))
    w.step()
    return w


def _oracle_matrix(world, users, actions, metric):
    grid = pd.concat([actions] * len(users), ignore_index=True)
    values = world.oracle("MLB", np.repeat(users, len(actions)), grid)[metric].to_numpy()
    return values.reshape(len(users), len(actions))


@pytest.mark.parametrize("metric", ["open_rate", "net_revenue"])
def test_random_then_fixed_then_personalized_policies_are_clearly_ordered(world, metric):
    """BAU is the single best fixed plan (as a growth team would find by A/B tests on other users)."""
    actions = SPACE.joint_actions()
    pop = world.population("MLB")
    opted = pop.user_id[pop.push_opt_in]
    train, test = opted[:300], opted[300:900]
    bau = int(np.argmax(_oracle_matrix(world, train, actions, metric).mean(axis=0)))
    values = _oracle_matrix(world, test, actions, metric)
    random_v, bau_v, oracle_v = values.mean(axis=1), values[:, bau], values.max(axis=1)
    se = lambda x: x.std(ddof=1) / np.sqrt(len(x))  # noqa: E731
    assert bau_v.mean() - random_v.mean() > 3 * se(bau_v - random_v)
    assert oracle_v.mean() - bau_v.mean() > 3 * se(oracle_v - bau_v)
    assert oracle_v.mean() > 1.2 * bau_v.mean() if metric == "open_rate" else True


def test_the_best_plan_differs_across_users(world):
    actions = SPACE.joint_actions()
    pop = world.population("MLB")
    users = pop.user_id[pop.push_opt_in][:200]
    best = actions.iloc[_oracle_matrix(world, users, actions, "open_rate").argmax(axis=1)]
    assert best.drop_duplicates().shape[0] >= 40
    for dimension in ("send_hour", "send_weekday", "tone"):
        shares = best[dimension].value_counts(normalize=True)
        assert len(shares) >= 3 and shares.iloc[0] < 0.8, dimension
    best_nr = actions.iloc[_oracle_matrix(world, users, actions, "net_revenue").argmax(axis=1)]
    assert best_nr["coupon_value"].nunique() >= 2  # coupons pay off for some users, not for others


def test_a_push_can_lose_money_against_no_push(world):
    """A big coupon to frequent buyers is mostly used on orders that would have happened anyway."""
    pop = world.population("MLB")
    opted = np.flatnonzero(pop.push_opt_in)
    frequent = pop.user_id[opted[np.argsort(pop.order_rate[opted])[-300:]]]
    plan = SPACE.joint_actions().query("coupon_value == 25 and frequency == 2").iloc[[0] * len(frequent)]
    assert world.oracle("MLB", frequent, plan)["incremental_net_revenue"].mean() < 0
    no_coupon = SPACE.joint_actions().query("coupon_value == 0 and frequency == 1").iloc[[0] * len(frequent)]
    assert world.oracle("MLB", frequent, no_coupon)["incremental_net_revenue"].mean() > 0


def test_base_rates_are_plausible_and_the_oracle_matches_the_simulation():
    world = World(WorldConfig.build(("MLM",), users=40_000, seed=5))
    day0 = world.step()["MLM"]
    buyers = day0["orders"].to_pandas()["user_id"].nunique() / day0["users"].num_rows
    assert 0.003 < buyers < 0.02
    pop = world.population("MLM")
    users = pop.user_id[pop.push_opt_in][:15_000]
    actions = SPACE.joint_actions().sample(len(users), replace=True, random_state=3).reset_index(drop=True)
    expected = world.oracle("MLM", users, actions)
    world.deliver(outbox_for(world, "MLM", users, actions))
    days = [world.step()["MLM"] for _ in range(MATURITY_DAYS)]
    sends = pd.concat([d["push_sends"].to_pandas() for d in days])
    opens = pd.concat([d["push_events"].to_pandas() for d in days])
    opt_outs = pd.concat([d["opt_outs"].to_pandas() for d in days])
    delivered = (sends["status"] == "delivered").sum()
    realized_rate = len(opens) / delivered
    oracle_rate = expected["expected_opens"].sum() / expected["expected_sends"].sum()
    assert 0.02 < realized_rate < 0.12
    se = np.sqrt(oracle_rate * (1 - oracle_rate) / delivered)
    assert abs(realized_rate - oracle_rate) < 4 * se
    assert len(opt_outs) / delivered < 0.01
    p = expected["p_opt_out"].sum()
    assert abs(len(opt_outs) - p) < 4 * np.sqrt(p) + 2


def test_lifecycle_stages_emerge_from_behaviour_and_move_over_time():
    world = World(WorldConfig.build(("MLA",), users=3_000, seed=2))
    first = world.step()["MLA"]["users"].to_pandas()
    for _ in range(59):
        last = world.step()["MLA"]["users"].to_pandas()

    def recency(snapshot):
        days = (pd.to_datetime(snapshot["snapshot_date"]) - pd.to_datetime(snapshot["last_session_date"])).dt.days
        return pd.cut(days.fillna(10_000), [-1, 30, 90, 180, 100_000],
                      labels=["active", "at_risk", "dormant", "gone"])

    shares = recency(first).value_counts(normalize=True)
    assert (shares > 0.03).all(), shares.to_dict()
    moved = (recency(first) != recency(last.iloc[: len(first)])).mean()
    assert moved > 0.02
    new = (pd.to_datetime(last["snapshot_date"]) - pd.to_datetime(last["signup_date"])).dt.days <= 30
    assert 0.005 < new.mean() < 0.15
    assert len(last) > len(first)  # users keep signing up


def test_the_oracle_counts_the_pushes_other_plans_already_have_queued():
    """Two plans a week for the same users, interleaved: the second plan's pushes land on days the first plan
    already pushes around, and tire the user. Its oracle, asked after the first plan is queued, expects the
    fatigue that the simulation then shows; without the queue it would expect far more opens."""
    from pushgrowth.sim import ground_truth as sim_oracle

    world = World(WorldConfig.build(("MLM",), users=40_000, seed=6))
    world.step()
    pop = world.population("MLM")
    users = pop.user_id[pop.push_opt_in][:15_000]
    today = world.today.weekday()

    def plans(weekday: int, seed: int) -> pd.DataFrame:
        actions = SPACE.joint_actions().sample(len(users), replace=True, random_state=seed).reset_index(drop=True)
        return actions.assign(send_weekday=weekday, frequency=3)

    first, second = plans(today, 1), plans((today + 1) % 7, 2)
    world.deliver(outbox_for(world, "MLM", users, first, campaign="c1"))
    outbox = outbox_for(world, "MLM", users, second, campaign="c2")
    traces = outbox.drop_duplicates("trace_id").set_index("user_id").loc[users, "trace_id"].to_numpy()
    before = world.oracle("MLM", users, second)
    world.deliver(outbox)
    expected = world.oracle("MLM", users, second, trace_ids=traces)  # its own queued pushes are the plan itself
    pd.testing.assert_frame_equal(expected, before)
    state = world._state("MLM")
    naive = sim_oracle.evaluate(state, world.config.country_calibration("MLM"), world.today,
                                state.user_index(users), second)
    assert (expected["expected_opens"] <= naive["expected_opens"] + 1e-12).all()
    days = [world.step()["MLM"] for _ in range(MATURITY_DAYS)]
    sends = pd.concat([d["push_sends"].to_pandas() for d in days])
    opens = pd.concat([d["push_events"].to_pandas() for d in days])
    mine = set(traces)
    delivered = int(((sends["status"] == "delivered") & sends["trace_id"].isin(mine)).sum())
    realized = int(opens["trace_id"].isin(mine).sum()) / delivered
    rate = expected["expected_opens"].sum() / expected["expected_sends"].sum()
    naive_rate = naive["expected_opens"].sum() / naive["expected_sends"].sum()
    se = np.sqrt(rate * (1 - rate) / delivered)
    assert abs(realized - rate) < 4 * se, (realized, rate, naive_rate)
    assert naive_rate - realized > 8 * se, (realized, rate, naive_rate)
