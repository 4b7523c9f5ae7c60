"""`assign`: one country's decisions for one day, checked against the documented rules on synthetic day inputs.

Inputs are built directly (no Dagster): the shipped catalog (MLB on 2026-09-02), a small World's users with a
user_features-shaped context, random audiences, pushes scheduled by earlier plans, budgets from
`campaigns.budget.group_budgets`, and two serving policies (cold start and a small trained model). Expected values come
from independent re-statements of the rules in `helpers.py` wherever possible; the bandit's propensities are
compared with the serving policy's own distribution, which is what "exact propensity" means.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pushgrowth.allocation.assign import DECISION_COLUMNS, MAX_PRICE, DayInputs, assign, scheduled_pushes
from pushgrowth.allocation.groups import assign_groups, unit_hash
from pushgrowth.allocation.pacing import BudgetState
from pushgrowth.bandit.policy import Distribution, Options, logged_room, schedule_mask
from pushgrowth.decisions import ACTION_FIELDS, SCHEMA, to_table
from pushgrowth.domain import PLAN_DAYS, WEEKDAYS
from pushgrowth.plans import trace_id
from tests.allocation.helpers import (
    COUNTRY,
    DATE,
    active_push,
    eligible_campaigns,
    empty_scheduled,
    exhaust,
    expected_bau_schedule,
    make_budgets,
    send_offsets,
    user_weeks,
    within_every_window,
    with_salt,
    with_targets,
)

COLD_SEEDS = (1, 2, 3, 4, 5, 6)
MODEL_SEEDS = (1, 2)
RUNS = [("cold", s) for s in COLD_SEEDS] + [("model", s) for s in MODEL_SEEDS]

BUDGET_CAMPAIGNS = [
    "mlb-carrinho-abandonado",        # amount ladder with 0, conversion
    "mlb-desconto-esportes",          # percent ladder (capped) with 0, cost share 0.6
    "mlb-desconto-moda",              # percent ladder without 0, net_revenue
    "mlb-volta-clientes-inativos",    # amount ladder without 0, 80% BAU, weekly cap 1
    "mlb-frete-gratis-primeira-compra",  # amount ladder without 0
    "mlb-lembrete-navegacao",         # no coupon at all, open objective, up to 3 a week
]


# --- helpers -----------------------------------------------------------------------------------------------------

def planned(d: pd.DataFrame) -> pd.DataFrame:
    return d[d["frequency"].notna()]


def indices(c, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Option indices of logged plans (rows must all carry a plan)."""
    s = c.action_space()
    templates = [t for t, _ in s.templates]
    return {
        "coupon": np.array([s.coupon_values.index(float(v)) for v in rows["coupon_value"]]),
        "template": np.array([templates.index(t) for t in rows["template_id"]]),
        "hour": np.array([s.hours.index(int(h)) for h in rows["send_hour"]]),
        "weekday": np.array([s.weekdays.index(int(w)) for w in rows["send_weekday"]]),
        "frequency": np.array([s.frequencies.index(int(f)) for f in rows["frequency"]]),
    }


def context_of(inputs: DayInputs, user_ids) -> pd.DataFrame:
    ctx = inputs.context.drop_duplicates("user_id").set_index("user_id", drop=False)
    return ctx.loc[np.asarray(user_ids, dtype=np.int64)].reset_index(drop=True)


def free_matrix(rows: pd.DataFrame) -> np.ndarray:
    bits = rows["free_days"].to_numpy(np.int64)
    return ((bits[:, None] >> np.arange(PLAN_DAYS)) & 1).astype(bool)


def policy_distribution(inputs: DayInputs, c, rows: pd.DataFrame) -> tuple[Distribution, np.ndarray]:
    """The serving policy's distribution for these logged rows, from what the row logged (masks, price)."""
    options = Options.of_campaign(c)
    ctx = context_of(inputs, rows["user_id"])
    mask = schedule_mask(free_matrix(rows), logged_room(rows), options.space, inputs.date)
    cost = inputs.policy.expected_cost(ctx, options, c.coupon.cost_share)
    values = np.asarray(options.space.coupon_values)
    allowed = np.where(rows["coupons_allowed"].to_numpy(bool)[:, None], True, values[None, :] == 0)
    prices = rows["cost_price"].unique()
    assert len(prices) == 1, f"{c.id}: one price per campaign and day, got {prices}"
    dist, _ = inputs.policy.distribution(c.objective, ctx, options, mask, allowed, float(prices[0]), cost)
    return dist, cost


def joint_probability(dist: Distribution, idx: dict[str, np.ndarray]) -> np.ndarray:
    """P(plan) under a factored distribution: the product of its blocks (coupon, template, hour, schedule)."""
    rows = np.arange(len(idx["coupon"]))
    blocks = (dist.coupon[rows, idx["coupon"]], dist.template[rows, idx["template"]], dist.hour[rows, idx["hour"]],
              dist.schedule[rows, idx["weekday"], idx["frequency"]])
    for block in (dist.coupon, dist.template, dist.hour, dist.schedule.reshape(len(rows), -1)):
        np.testing.assert_allclose(block.sum(axis=1), 1.0, rtol=1e-9)  # every block is a distribution
    return np.prod(np.vstack(blocks), axis=0)


def assert_bandit_propensities(inputs: DayInputs, d: pd.DataFrame) -> int:
    """Every planned bandit row's propensity is the policy's probability of its plan; returns rows checked."""
    checked = 0
    for cid, rows in planned(d[d["group"] == "bandit"]).groupby("campaign_id"):
        c = inputs.catalog.get(cid)
        rows = rows.reset_index(drop=True)
        dist, cost = policy_distribution(inputs, c, rows)
        idx = indices(c, rows)
        p = rows["propensity"].to_numpy(float)
        assert ((p > 0) & (p <= 1)).all(), f"{cid}: propensities outside (0, 1]: {p[(p <= 0) | (p > 1)]}"
        np.testing.assert_allclose(p, joint_probability(dist, idx), rtol=1e-9, atol=0,
                                   err_msg=f"{cid}: logged propensity is not the policy's probability")
        logged_cost = cost[np.arange(len(rows)), idx["coupon"]]
        np.testing.assert_allclose(rows["expected_cost"].to_numpy(float), logged_cost, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{cid}: expected_cost of the logged coupon")
        checked += len(rows)
    return checked


def assert_schedules_valid(inputs: DayInputs, d: pd.DataFrame) -> None:
    """Planned rows: no push on a taken day, the country's weekly cap, the user's pushes left, the campaign's
    cap, and every option on the campaign's menu."""
    weeks = user_weeks(inputs)
    cap = inputs.catalog.policies[inputs.country].max_weekly_pushes
    for row in planned(d[d["group"] != "holdout"]).itertuples(index=False):
        c = inputs.catalog.get(row.campaign_id)
        week = weeks[int(row.user_id)]
        days = send_offsets(inputs.date, int(row.send_weekday), int(row.frequency))
        assert len(days) == int(row.frequency), row
        assert not set(days) & week.taken, f"user {row.user_id}: push on a day already taken {sorted(week.taken)}"
        assert week.scheduled + int(row.frequency) <= cap, f"user {row.user_id}: weekly cap {cap} exceeded"
        assert within_every_window([*week.around, *days], cap), f"user {row.user_id}: {cap} in some 7 days"
        assert int(row.frequency) <= week.left, f"user {row.user_id}: {row.frequency} > {week.left} pushes left"
        assert int(row.frequency) <= c.frequency.weekly_cap, f"{c.id}: campaign weekly cap"
        assert int(row.frequency) in c.frequency.options
        assert int(row.send_weekday) in c.weekday_numbers
        assert int(row.send_hour) in c.send_window.hours
        tpl = c.template(row.template_id)
        assert row.tone == tpl.tone
        assert float(row.coupon_value) in [float(v) for v in c.coupon.values]
        assert row.coupon_kind == (c.coupon.kind if float(row.coupon_value) > 0 else "none")
        assert float(row.coupon_cap) == float(c.coupon.max_discount or 0.0)


def shuffled(inputs: DayInputs, seed: int) -> DayInputs:
    rng = np.random.default_rng(seed)

    def perm(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)

    budgets = dict(reversed(list(inputs.budgets.items())))
    return DayInputs(inputs.date, inputs.country, inputs.catalog, perm(inputs.audiences), perm(inputs.context),
                     perm(inputs.scheduled), budgets, inputs.policy)


# --- the contract ------------------------------------------------------------------------------------------------

def test_decision_columns_are_the_contract():
    assert DECISION_COLUMNS == SCHEMA.names
    assert set(ACTION_FIELDS) <= set(DECISION_COLUMNS)


@pytest.mark.parametrize("policy,seed", RUNS)
def test_decisions_convert_to_the_contract_table(run, policy, seed):
    inputs, result = run(policy, seed)
    d = result.decisions
    assert len(d) > 500, "the synthetic day should produce hundreds of decisions"
    table = to_table(d)
    assert table.schema.equals(SCHEMA)
    assert table.num_rows == len(d)
    assert list(d.columns) == DECISION_COLUMNS
    assert (d["country"] == COUNTRY).all() and (d["date"] == DATE).all()
    assert (d["catalog_version"] == inputs.catalog.version).all()
    for row in d.itertuples(index=False):
        c = inputs.catalog.get(row.campaign_id)
        assert row.objective == c.objective and row.value_proposition == c.value_proposition
        assert row.share_bandit == c.shares.bandit


@pytest.mark.parametrize("policy,seed", RUNS)
def test_one_decision_per_user_with_reproducible_trace_ids(run, policy, seed):
    _, result = run(policy, seed)
    d = result.decisions
    assert not d["user_id"].duplicated().any()
    assert not d["trace_id"].duplicated().any()
    expected = [trace_id(DATE, COUNTRY, c, int(u)) for c, u in zip(d["campaign_id"], d["user_id"])]
    assert d["trace_id"].tolist() == expected


# --- eligibility and the campaign pick ---------------------------------------------------------------------------

@pytest.mark.parametrize("policy,seed", RUNS)
def test_every_eligible_user_gets_one_eligible_campaign(run, policy, seed):
    inputs, result = run(policy, seed)
    d = result.decisions.set_index("user_id")
    eligible = eligible_campaigns(inputs)
    weeks = user_weeks(inputs)
    assert set(d.index) == set(eligible), "decided users must be exactly the users with an eligible campaign"
    for user, row in d.iterrows():
        assert row["campaign_id"] in eligible[user]
        assert row["candidates"] == len(eligible[user])
        week = weeks[user]
        assert row["capacity"] == min(week.capacity, inputs.catalog.get(row["campaign_id"]).frequency.weekly_cap)
        assert row["free_days"] == sum(1 << k for k in range(PLAN_DAYS) if k not in week.taken)


@pytest.mark.parametrize("seed", COLD_SEEDS)
def test_cold_start_picks_the_campaign_by_a_stable_random_draw(run, seed):
    inputs, result = run("cold", seed)
    d = result.decisions
    eligible = eligible_campaigns(inputs)
    assert (d["campaign_pick"] == "random").all()
    for row in d.itertuples(index=False):
        values = {cid: unit_hash(np.array([row.user_id]), f"pick|{cid}")[0] for cid in eligible[row.user_id]}
        assert row.campaign_value == pytest.approx(values[row.campaign_id])
        best = max(values.values())
        assert row.campaign_id == min(cid for cid, v in values.items() if v == best)


@pytest.mark.parametrize("seed", MODEL_SEEDS)
def test_model_picks_the_campaign_by_expected_margin(run, seed):
    _, result = run("model", seed)
    d = result.decisions
    assert (d["campaign_pick"] == "expected_margin").all()
    assert np.isfinite(d["campaign_value"].astype(float)).all()


@pytest.mark.parametrize("policy,seed", [("cold", 1), ("model", 1)])
def test_campaign_pick_does_not_depend_on_the_group_salt(run, policy, seed):
    inputs, result = run(policy, seed)
    other = assign(DayInputs(inputs.date, inputs.country, with_salt(inputs.catalog, "another-salt"), inputs.audiences,
                             inputs.context, inputs.scheduled, inputs.budgets, inputs.policy))
    a = result.decisions.set_index("user_id").sort_index()
    b = other.decisions.set_index("user_id").sort_index()
    assert a.index.equals(b.index)
    pd.testing.assert_series_equal(a["campaign_id"], b["campaign_id"])
    pd.testing.assert_series_equal(a["campaign_value"], b["campaign_value"])
    pd.testing.assert_series_equal(a["candidates"], b["candidates"])
    assert (a["group"] != b["group"]).mean() > 0.2, "another salt must reshuffle the groups"
    for cid, rows in b.groupby("campaign_id"):
        s = inputs.catalog.get(cid).shares
        np.testing.assert_array_equal(rows["group"].to_numpy(),
                                      assign_groups(rows.index.to_numpy(), cid, s.holdout, s.bau, "another-salt"))


def test_group_shares_are_not_biased_by_the_campaign_pick(catalog, population, policies, build_inputs):
    """The campaign is picked before the group: among the users each campaign wins, the groups keep the
    catalog's shares (a pick correlated with the group hash would skew them)."""
    frames = [assign(build_inputs(policies["cold"], seed, users=2_000, per_user=6)).decisions
              for seed in (101, 102)]
    d = pd.concat(frames, ignore_index=True)
    for name in ("holdout", "bau", "bandit"):
        expected = d["campaign_id"].map(lambda cid: getattr(catalog.get(cid).shares, name)).to_numpy(float)
        observed = float((d["group"] == name).sum())
        sd = float(np.sqrt((expected * (1 - expected)).sum()))
        assert abs(observed - expected.sum()) <= 5 * sd + 1, (name, observed, expected.sum(), sd)


# --- groups and plans --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy,seed", RUNS)
def test_groups_follow_the_stable_hash(run, policy, seed):
    inputs, result = run(policy, seed)
    for cid, rows in result.decisions.groupby("campaign_id"):
        s = inputs.catalog.get(cid).shares
        expected = assign_groups(rows["user_id"].to_numpy(), cid, s.holdout, s.bau, s.salt)
        np.testing.assert_array_equal(rows["group"].to_numpy(), expected)


@pytest.mark.parametrize("policy,seed", RUNS)
def test_planned_users_respect_days_and_caps(run, policy, seed):
    inputs, result = run(policy, seed)
    assert_schedules_valid(inputs, result.decisions)


@pytest.mark.parametrize("policy,seed", RUNS)
def test_holdout_rows_carry_no_plan(run, policy, seed):
    _, result = run(policy, seed)
    h = result.decisions[result.decisions["group"] == "holdout"]
    assert len(h) > 0
    assert h[list(ACTION_FIELDS)].isna().all().all()
    assert (h["propensity"] == 1.0).all()
    assert (h["policy"] == "holdout").all()
    assert (h["expected_cost"] == 0).all()
    assert h["model_version"].isna().all()


@pytest.mark.parametrize("policy,seed", RUNS)
def test_bau_rows_send_the_bau_plan_with_propensity_one(run, policy, seed):
    inputs, result = run(policy, seed)
    weeks = user_weeks(inputs)
    b = result.decisions[result.decisions["group"] == "bau"]
    assert len(b) > 0
    assert (b["propensity"] == 1.0).all()
    assert (b["policy"] == "bau").all(), "a generous budget never leaves BAU without a push"
    assert b["model_version"].isna().all()
    for row in b.itertuples(index=False):
        c = inputs.catalog.get(row.campaign_id)
        assert row.template_id == c.bau.template and int(row.send_hour) == c.bau.hour
        assert float(row.coupon_value) == float(c.bau.coupon)
        assert (int(row.send_weekday), int(row.frequency)) == expected_bau_schedule(c, weeks[row.user_id], DATE)


@pytest.mark.parametrize("policy,seed", RUNS)
def test_bandit_propensity_is_the_policys_probability_of_the_plan(run, policy, seed):
    inputs, result = run(policy, seed)
    d = result.decisions
    bandit = d[d["group"] == "bandit"]
    assert assert_bandit_propensities(inputs, d) == len(planned(bandit)) > 100
    assert (bandit["policy"] == ("bandit" if policy == "model" else "cold_start")).all()
    if policy == "model":
        assert (bandit["model_name"] == inputs.policy.model_name).all()
        assert (bandit["model_version"] == inputs.policy.model_version).all()
        assert np.isfinite(planned(d[d["group"] != "holdout"])["expected_reward"].astype(float)).all()
    else:
        assert bandit["model_version"].isna().all()
        assert d["expected_reward"].isna().all()


def test_cold_start_centres_a_net_revenue_campaigns_coupon_on_its_cheapest(run):
    """Before a model, the bandit explores a net revenue campaign's coupon around its cheapest coupon (its cost is
    known, its gain is not) and every other campaign's around BAU's, and draws accordingly."""
    at_centre = {"net_revenue": [], "conversion": []}
    for seed in COLD_SEEDS:
        inputs, result = run("cold", seed)
        bandit = planned(result.decisions[result.decisions["group"] == "bandit"])
        for cid, rows in bandit.groupby("campaign_id"):
            c = inputs.catalog.get(cid)
            values = [float(v) for v in c.coupon.values]
            rows = rows[rows["coupons_allowed"].astype(bool)].reset_index(drop=True)
            if len(values) < 2 or not len(rows) or c.objective not in at_centre:
                continue
            dist, _ = policy_distribution(inputs, c, rows)
            centre = values.index(min(values)) if c.objective == "net_revenue" else Options.of_campaign(c).bau[0]
            assert (dist.coupon.argmax(axis=1) == centre).all(), cid
            at_centre[c.objective].extend(float(v) == values[centre] for v in rows["coupon_value"])
    for objective, hits in at_centre.items():
        assert len(hits) > 50 and np.mean(hits) > 0.7, (objective, len(hits), np.mean(hits))


def test_bandit_plans_are_draws_from_the_policy(run):
    """Goodness of fit across the runs: how often each block's drawn option is the row's most likely option
    matches the sum of those probabilities (a greedy or mis-indexed sampler would not)."""
    observed = {k: 0.0 for k in ("coupon", "template", "hour", "schedule")}
    mean = dict.fromkeys(observed, 0.0)
    var = dict.fromkeys(observed, 0.0)
    for policy, seed in RUNS:
        inputs, result = run(policy, seed)
        for cid, rows in planned(result.decisions[result.decisions["group"] == "bandit"]).groupby("campaign_id"):
            c = inputs.catalog.get(cid)
            rows = rows.reset_index(drop=True)
            dist, _ = policy_distribution(inputs, c, rows)
            idx = indices(c, rows)
            n = len(rows)
            flat = dist.schedule.reshape(n, -1)
            blocks = {"coupon": (dist.coupon, idx["coupon"]), "template": (dist.template, idx["template"]),
                      "hour": (dist.hour, idx["hour"]),
                      "schedule": (flat, idx["weekday"] * dist.schedule.shape[2] + idx["frequency"])}
            for name, (p, drawn) in blocks.items():
                mode = p.argmax(axis=1)
                pm = p[np.arange(n), mode]
                observed[name] += float((drawn == mode).sum())
                mean[name] += float(pm.sum())
                var[name] += float((pm * (1 - pm)).sum())
    for name in observed:
        assert abs(observed[name] - mean[name]) <= 5 * np.sqrt(var[name]) + 1, (name, observed[name], mean[name])


# --- determinism -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy,seed", [("cold", 1), ("cold", 2), ("model", 1)])
def test_rerunning_the_same_inputs_gives_identical_decisions(run, policy, seed):
    inputs, result = run(policy, seed)
    again = assign(inputs)
    pd.testing.assert_frame_equal(again.decisions, result.decisions)
    pd.testing.assert_frame_equal(again.pacing, result.pacing)


@pytest.mark.parametrize("policy,seed", [("cold", 3), ("model", 1)])
def test_decisions_do_not_depend_on_the_order_of_input_rows(run, policy, seed):
    inputs, result = run(policy, seed)
    again = assign(shuffled(inputs, seed))
    pd.testing.assert_frame_equal(again.decisions, result.decisions)


# --- budgets -----------------------------------------------------------------------------------------------------

def _budget_inputs(build_inputs, policies, policy: str, seed: int, budgets=None) -> DayInputs:
    return build_inputs(policies[policy], seed, users=1_200, per_user=1, campaign_ids=BUDGET_CAMPAIGNS,
                        budgets=budgets)


@pytest.fixture(scope="module")
def generous(catalog, build_inputs, policies):
    """Budget-test days with ten times the catalog's budgets (far more than a thousand users can spend)."""
    out = {}
    for policy in ("cold", "model"):
        inputs = _budget_inputs(build_inputs, policies, policy, 7, budgets=make_budgets(catalog, scale=10.0))
        out[policy] = (inputs, assign(inputs))
    return out


@pytest.mark.parametrize("policy", ["cold", "model"])
def test_generous_budget_prices_coupons_at_zero(generous, policy):
    inputs, result = generous[policy]
    d, pacing = result.decisions, result.pacing
    bandit = d[d["group"] == "bandit"]
    assert (bandit["cost_price"] == 0).all()
    assert d["coupons_allowed"].all()
    assert (d["policy"] != "budget_exhausted").all()
    assert (pacing["price"].fillna(-1) == 0).all()
    assert (pacing["projected_spend"] <= pacing["target"] + 1e-9).all()
    funded = pacing[pacing["target"] > 0]
    assert (funded["projected_spend"] < 0.5 * funded["target"]).all(), "the budgets of this test must be generous"
    coupons = planned(d)
    assert (coupons["coupon_value"].astype(float) > 0).mean() > 0.3, "coupons must be in play for this test"


@pytest.mark.parametrize("policy", ["cold", "model"])
@pytest.mark.parametrize("groups", [("bau", "bandit"), ("bandit",)])
def test_exhausted_budget_sends_nothing_that_costs_money(generous, policy, groups):
    base, _ = generous[policy]
    keys = [(cid, g) for cid in BUDGET_CAMPAIGNS for g in groups]
    inputs = DayInputs(base.date, base.country, base.catalog, base.audiences, base.context, base.scheduled,
                       exhaust(base.budgets, keys), base.policy)
    d = assign(inputs).decisions
    for group in groups:
        rows = d[d["group"] == group]
        assert len(rows) > 20
        assert (rows["coupon_value"].fillna(0).astype(float) == 0).all(), f"{group} sent coupons without budget"
        assert (rows["expected_cost"] == 0).all()
        for cid, part in rows.groupby("campaign_id"):
            c = inputs.catalog.get(cid)
            if 0 in c.coupon.values:
                assert part["frequency"].notna().all(), f"{cid}: a coupon-free plan should still be sent"
                assert (part["policy"] != "budget_exhausted").all()
            else:
                assert (part["policy"] == "budget_exhausted").all(), f"{cid}: {group} without a coupon-free option"
                assert part[list(ACTION_FIELDS)].isna().all().all()
                assert (part["propensity"] == 1.0).all()
    assert assert_bandit_propensities(inputs, d) > 0
    if groups == ("bandit",):  # BAU keeps its own budget: still sends its coupons
        bau = planned(d[d["group"] == "bau"])
        assert (bau["coupon_value"].astype(float) > 0).any()
        assert (bau["policy"] == "bau").all()
    holdout = d[d["group"] == "holdout"]
    assert (holdout["policy"] == "holdout").all() and holdout["frequency"].isna().all()


def _tight(inputs: DayInputs, result, share: float) -> DayInputs:
    """The same day with every coupon group's daily target at `share` of its unconstrained projected spend."""
    spend = result.pacing.set_index(["campaign_id", "group"])["projected_spend"]
    targets = {key: share * float(v) for key, v in spend.items() if v > 0}
    return DayInputs(inputs.date, inputs.country, inputs.catalog, inputs.audiences, inputs.context,
                     inputs.scheduled, with_targets(inputs.budgets, targets), inputs.policy)


@pytest.fixture(scope="module")
def tight(generous):
    """`tight(policy, share)`: the budget-test day with every coupon group's target at `share` of its spend."""
    cache: dict = {}

    def get(policy: str, share: float):
        if (policy, share) not in cache:
            inputs = _tight(*generous[policy], share)
            cache[(policy, share)] = (inputs, assign(inputs))
        return cache[(policy, share)]

    return get


@pytest.mark.parametrize("policy", ["cold", "model"])
@pytest.mark.parametrize("share", [0.6, 0.25])
def test_tight_budget_keeps_projected_spend_within_the_daily_target(tight, policy, share):
    inputs, result = tight(policy, share)
    d, pacing = result.decisions, result.pacing
    for p in pacing.itertuples(index=False):
        assert p.projected_spend <= p.target * (1 + 1e-9) + 1e-9, (p.campaign_id, p.group, p.projected_spend)
    tested = 0
    for (cid, group), rows in d[d["group"] != "holdout"].groupby(["campaign_id", "group"]):
        target = inputs.budgets[(cid, group)].target
        spent = float(rows["expected_cost"].sum())
        if group == "bau":  # deterministic: the kept coupons fit exactly
            assert spent <= target + 1e-9, (cid, spent, target)
            continue
        # the bandit draws: its realized expected cost is within noise of a projection that fits
        c = inputs.catalog.get(cid)
        sent = planned(rows).reset_index(drop=True)
        if not len(sent):
            continue
        dist, cost = policy_distribution(inputs, c, sent)
        mean = (dist.coupon * cost).sum(axis=1)
        sd = np.sqrt(((dist.coupon * cost**2).sum(axis=1) - mean**2).clip(0).sum())
        assert spent <= target + 4 * sd + 1e-9, (cid, spent, target, sd)
        tested += 1
    assert tested >= 3
    bandit = pacing[pacing["group"] == "bandit"]
    if policy == "model":
        assert (bandit["price"].fillna(np.inf) > 0).any(), "a tight budget must put a price on coupons"
        logged = d[d["group"] == "bandit"].groupby("campaign_id")["cost_price"].first()
        for p in bandit.itertuples(index=False):
            assert logged[p.campaign_id] == (MAX_PRICE if pd.isna(p.price) else p.price)


@pytest.mark.parametrize("policy", ["cold", "model"])
@pytest.mark.parametrize("share", [0.6, 0.25])
def test_tight_budget_logs_the_price_and_masks_its_propensities_came_from(tight, policy, share):
    """Pacing changes the bandit's distribution (a price on coupons, coupons switched off for some users): the
    logged `cost_price` and `coupons_allowed` must be the ones the propensity was computed under, so that the
    serving policy (and off-policy evaluation) reproduces it from the decision row alone."""
    inputs, result = tight(policy, share)
    assert assert_bandit_propensities(inputs, result.decisions) > 0


@pytest.mark.parametrize("policy", ["cold", "model"])
@pytest.mark.parametrize("share", [1.0, 0.6])
def test_on_the_last_day_of_the_month_drawn_plans_never_spend_more_than_is_left(generous, policy, share):
    """With one day left, the day's target is all that remains of the month: pacing holds the bandit's expected
    spend to it, and the cap holds what the drawn plans cost to it too, whatever the draws."""
    inputs, result = generous[policy]
    spend = result.pacing.set_index(["campaign_id", "group"])["projected_spend"]
    budgets = dict(inputs.budgets)
    for key, value in spend.items():
        if value > 0:
            budgets[key] = dataclasses.replace(budgets[key], budget=share * float(value), committed=0.0,
                                               outstanding=0.0, days_left=1)
    last = DayInputs(inputs.date, inputs.country, inputs.catalog, inputs.audiences, inputs.context,
                     inputs.scheduled, budgets, inputs.policy)
    d = assign(last).decisions
    drawn = d.groupby(["campaign_id", "group"])["expected_cost"].sum()
    close = 0
    for key, cost in drawn.items():
        if key not in budgets:
            continue
        left = budgets[key].remaining
        assert cost <= left + 1e-9, f"{key}: drawn plans cost {cost:.2f} with {left:.2f} left"
        close += bool(left > 0 and cost > 0.5 * left)
    assert close >= 3, "the budgets of this test must bind"
    assert assert_bandit_propensities(last, d) > 100


def test_tighter_budget_never_lowers_the_price(generous, tight):
    """For a campaign that gets the same users (a tighter budget can also move users to other campaigns, when a
    campaign without coupon-free plans can afford fewer of them), the bandit's price never falls."""
    prices, users = [], []
    for result in (generous["model"][1], tight("model", 0.6)[1], tight("model", 0.25)[1]):
        pacing = result.pacing
        prices.append(pacing[pacing["group"] == "bandit"].set_index("campaign_id")["price"].astype(float)
                      .fillna(np.inf))
        bandit = result.decisions[result.decisions["group"] == "bandit"]
        users.append({cid: frozenset(rows["user_id"]) for cid, rows in bandit.groupby("campaign_id")})
    assert (prices[0] == 0).all() and (prices[-1] > 0).any()
    for (looser, tighter), (before, after) in zip(zip(prices, prices[1:]), zip(users, users[1:])):
        same = [c for c in looser.index.intersection(tighter.index) if before.get(c) == after.get(c)]
        assert same
        assert (tighter[same] >= looser[same] - 1e-9).all(), pd.DataFrame({"looser": looser, "tighter": tighter})


@pytest.mark.parametrize("policy", ["cold", "model"])
@pytest.mark.parametrize("share", [0.6, 0.25])
def test_bau_keeps_its_coupon_for_a_stable_prefix_of_users(tight, policy, share):
    inputs, result = tight(policy, share)
    d = result.decisions
    thinned = 0
    for cid, rows in d[d["group"] == "bau"].groupby("campaign_id"):
        c = inputs.catalog.get(cid)
        if float(c.bau.coupon) == 0:
            continue
        order = unit_hash(rows["user_id"].to_numpy(), f"coupon-order|{DATE}|{cid}")
        kept = rows["coupons_allowed"].to_numpy(bool)[np.argsort(order, kind="stable")]
        assert not (~kept[:-1] & kept[1:]).any(), f"{cid}: kept coupons are not a prefix of the stable order"
        thinned += int((~kept).sum())
        dropped = rows[~rows["coupons_allowed"].astype(bool)]
        if 0 in c.coupon.values:
            assert (dropped["coupon_value"].astype(float) == 0).all() and (dropped["policy"] == "bau").all()
        else:
            assert (dropped["policy"] == "budget_exhausted").all() and dropped["frequency"].isna().all()
    assert thinned > 0, ("a tight budget thins some BAU coupons "
                         "(campaigns without coupon-free plans take fewer users instead)")


# --- schedules over several days and edge cases ------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["cold", "model"])
def test_a_week_of_days_never_double_books_a_user(catalog, population, policies, build_inputs, policy):
    """Chain days: each day's scheduled pushes come from the earlier days' decisions (`scheduled_pushes`)."""
    start = DATE - dt.timedelta(days=3)
    days = 5 if policy == "cold" else 3
    history: list[pd.DataFrame] = []
    for k in range(days):
        date = start + dt.timedelta(days=k)
        previous = pd.concat(history, ignore_index=True) if history else None
        sched = scheduled_pushes(previous, date)
        ids = [c.id for c in active_push(catalog, date)][: 12 if policy == "cold" else 6]
        inputs = build_inputs(policies[policy], 40, users=700, date=date, scheduled=sched, campaign_ids=ids)
        d = assign(inputs).decisions
        assert_schedules_valid(inputs, d)
        history.append(d)
    every = pd.concat(history, ignore_index=True)
    pushes = scheduled_pushes(every, start)
    per_day = pushes.groupby(["user_id", "send_date"]).size()
    assert (per_day == 1).all(), per_day[per_day > 1].head()
    cap = catalog.policies["MLB"].max_weekly_pushes
    for k in range(days):
        # the pushes of every plan decided up to day k that land in the week starting on day k fit the cap
        date = start + dt.timedelta(days=k)
        week = scheduled_pushes(pd.concat(history[: k + 1], ignore_index=True), date)
        week = week[week["send_date"] < pd.Timestamp(date + dt.timedelta(days=PLAN_DAYS))]
        assert (week.groupby("user_id").size() <= cap).all()
    assert len(pushes) > 500


def test_users_without_context_and_inactive_campaigns_are_skipped(catalog, population, policies, build_inputs):
    inputs = build_inputs(policies["cold"], 8, users=400)
    users = inputs.audiences["user_id"].unique()
    ghost = int(population.users["user_id"].max()) + 10_000
    inactive = ["mlb-black-friday", "mlb-desconto-autopecas", "mlb-desconto-livros", "mlb-in-app-parcelado",
                "mla-envio-gratis-reactivacion"]
    extra = pd.DataFrame({"user_id": [int(users[0])] * len(inactive) + [ghost],
                          "campaign_id": inactive + ["mlb-carrinho-abandonado"], "weekly_pushes_left": 6})
    assert "mla-envio-gratis-reactivacion" in catalog.ids
    audiences = pd.concat([inputs.audiences, extra], ignore_index=True)
    # a user whose only audience rows are inactive campaigns is not decided
    lonely = int(users[1])
    audiences = audiences[audiences["user_id"] != lonely]
    audiences = pd.concat([audiences, pd.DataFrame({"user_id": [lonely], "campaign_id": ["mlb-black-friday"],
                                                    "weekly_pushes_left": [6]})], ignore_index=True)
    d = assign(DayInputs(inputs.date, inputs.country, catalog, audiences, inputs.context, inputs.scheduled,
                         inputs.budgets, inputs.policy)).decisions
    assert not d["campaign_id"].isin(inactive).any()
    assert ghost not in set(d["user_id"]) and lonely not in set(d["user_id"])
    assert int(users[0]) in set(d["user_id"])


def test_no_eligible_user_gives_an_empty_contract_frame(catalog, population, policies, build_inputs):
    inputs = build_inputs(policies["cold"], 9, users=200)
    audiences = inputs.audiences.assign(weekly_pushes_left=0)
    result = assign(DayInputs(inputs.date, inputs.country, catalog, audiences, inputs.context, empty_scheduled(),
                              inputs.budgets, inputs.policy))
    assert len(result.decisions) == 0
    assert list(result.decisions.columns) == DECISION_COLUMNS
    assert to_table(result.decisions).schema.equals(SCHEMA)


def test_a_full_week_blocks_the_user(catalog, population, policies, build_inputs):
    inputs = build_inputs(policies["cold"], 10, users=300)
    users = np.sort(inputs.audiences["user_id"].unique())
    full, capped = users[:20], users[20:40]
    rows = [(int(u), DATE + dt.timedelta(days=k)) for u in full for k in range(PLAN_DAYS)]
    scheduled = pd.DataFrame(rows, columns=["user_id", "send_date"]).astype({"send_date": "datetime64[s]"})
    cap = catalog.policies["MLB"].max_weekly_pushes
    # `cap` pushes on the first days of the week: free days remain but the weekly cap is reached
    rows = [(int(u), DATE + dt.timedelta(days=k)) for u in capped for k in range(cap)]
    scheduled = pd.concat([scheduled, pd.DataFrame(rows, columns=["user_id", "send_date"])
                           .astype({"send_date": "datetime64[s]"})], ignore_index=True)
    d = assign(DayInputs(inputs.date, inputs.country, catalog, inputs.audiences, inputs.context, scheduled,
                         inputs.budgets, inputs.policy)).decisions
    assert not d["user_id"].isin(np.concatenate([full, capped])).any()
    assert len(d) > 100


def _with_bau(catalog, campaign_id: str, **bau):
    """The catalog with one campaign's BAU plan changed (a test-only variant; not re-validated)."""
    c = catalog.get(campaign_id)
    changed = c.model_copy(update={"bau": c.bau.model_copy(update=bau)})
    return catalog.model_copy(update={"campaigns": tuple(changed if x.id == campaign_id else x
                                                         for x in catalog.campaigns)}), changed


@pytest.mark.parametrize("policy", ["cold", "model"])
def test_bau_plan_moves_to_the_next_free_weekday_then_lower_frequencies(catalog, population, policies, policy):
    """mlb-lembrete-navegacao (every weekday, 1-3 a week, no coupon) with a BAU of twice a week from Thursday.

    DATE is a Wednesday: Thursday x2 lands on offsets 1 and 4 (Thu, Sun)."""
    cat, c = _with_bau(catalog, "mlb-lembrete-navegacao", weekday="thu", frequency=2)
    assert DATE.weekday() == WEEKDAYS.index("wed")
    s = c.shares
    pool = population.opted_in
    bau_users = pool[assign_groups(pool, c.id, s.holdout, s.bau) == "bau"][:6]
    assert len(bau_users) == 6
    a, b, e, f, g, h = (int(u) for u in bau_users)
    day = lambda k: DATE + dt.timedelta(days=k)  # noqa: E731
    scheduled = pd.DataFrame([(b, day(1)), (e, day(1)), (e, day(2)), (f, day(1)), (f, day(2)), (f, day(3)),
                              (f, day(4)), (f, day(5))], columns=["user_id", "send_date"])
    scheduled = scheduled.astype({"send_date": "datetime64[s]"})
    audiences = pd.DataFrame({"user_id": bau_users, "campaign_id": c.id, "weekly_pushes_left": [6, 6, 6, 6, 1, 0]})
    context = population.context[population.context["user_id"].isin(bau_users)]
    inputs = DayInputs(DATE, COUNTRY, cat, audiences, context, scheduled, make_budgets(cat), policies[policy])
    d = assign(inputs).decisions.set_index("user_id")
    plan = {u: (WEEKDAYS[int(r.send_weekday)], int(r.frequency)) for u, r in d.iterrows()}
    assert plan[a] == ("thu", 2)     # nothing in the way
    assert plan[b] == ("fri", 2)     # Thursday taken: next weekday, Fri + Mon (offsets 2, 5)
    assert plan[e] == ("sat", 2)     # Thu and Fri taken: Sat + Tue (offsets 3, 6)
    assert plan[f] == ("tue", 1)     # Thu-Mon taken (one push left): x1 on the next free weekday, Tuesday
    assert plan[g] == ("thu", 1)     # one push left this week: the lower frequency on the BAU weekday
    assert h not in plan             # no push left: not eligible
    weeks = user_weeks(inputs)
    for u, (wd, freq) in plan.items():
        assert (WEEKDAYS.index(wd), freq) == expected_bau_schedule(c, weeks[u], DATE)
    assert (d["propensity"] == 1).all() and (d["policy"] == "bau").all()


def test_budgets_are_read_per_campaign_group(catalog):
    budgets = make_budgets(catalog)
    active = active_push(catalog)
    assert set(budgets) == {(c.id, g) for c in active for g in ("bau", "bandit")}
    for (cid, group), state in budgets.items():
        assert isinstance(state, BudgetState) and state.group == group and state.campaign_id == cid


def test_scheduled_pushes_expand_earlier_plans_from_the_decision_date_on(run):
    """`scheduled_pushes`: the pushes of earlier non-holdout plans that land on the date or later."""
    _, result = run("cold", 1)
    earlier = DATE - dt.timedelta(days=2)
    previous = result.decisions.assign(date=earlier)
    got = scheduled_pushes(previous, DATE)
    expected = []
    for row in planned(previous[previous["group"] != "holdout"]).itertuples(index=False):
        for off in send_offsets(earlier, int(row.send_weekday), int(row.frequency)):
            if off >= 2:
                expected.append((int(row.user_id), pd.Timestamp(earlier + dt.timedelta(days=off))))
    got_pairs = sorted(zip(got["user_id"].astype(int), pd.to_datetime(got["send_date"])))
    assert got_pairs == sorted(expected)
    assert len(scheduled_pushes(None, DATE)) == 0
    assert len(scheduled_pushes(previous.iloc[0:0], DATE)) == 0


def test_weekly_cap_counts_pushes_not_days(catalog, population, policies, build_inputs):
    """Two pushes already scheduled on one day (e.g. an earlier partition re-materialized after later days were
    decided) still count as two against the country's weekly cap."""
    inputs = build_inputs(policies["cold"], 12, users=300)
    users = np.sort(inputs.audiences["user_id"].unique())[:30]
    cap = catalog.policies["MLB"].max_weekly_pushes
    # cap pushes on three days (two a day for the first cap - 3): the week is full
    rows = [(int(u), DATE + dt.timedelta(days=k)) for u in users for k in range(3)]
    rows += [(int(u), DATE + dt.timedelta(days=k)) for u in users for k in range(cap - 3)]
    scheduled = pd.DataFrame(rows, columns=["user_id", "send_date"]).astype({"send_date": "datetime64[s]"})
    assert (scheduled.groupby("user_id").size() == cap).all()
    d = assign(DayInputs(inputs.date, inputs.country, catalog, inputs.audiences, inputs.context, scheduled,
                         inputs.budgets, inputs.policy)).decisions
    over = planned(d[d["user_id"].isin(users) & (d["group"] != "holdout")])
    assert over.empty, f"{len(over)} users with {cap} pushes already in the week got a new plan: " \
                       f"{over[['user_id', 'campaign_id', 'frequency', 'capacity']].head().to_dict('records')}"
