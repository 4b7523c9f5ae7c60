"""Builders shared by the bandit tests: user contexts and decision logs drawn from a small World.

The World's hidden traits stand in for what the `user_features` mart would show after a few weeks of data: the
part-of-day shares of a user's sessions follow the same distribution the World draws session hours from, and the
weekend share follows its weekday activity. Columns the tests do not need stay NaN (LightGBM handles them).
Rewards are drawn from the World's oracle, so the true value of any policy is known exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pushgrowth.bandit.features import CONTEXT_NUMERIC, PARTS_OF_DAY, FeatureSpec, hour_affinity, weekday_affinity
from pushgrowth.bandit.model import DEFAULT_PARAMS, RewardModel, TrainConfig, fit, user_fold
from pushgrowth.bandit.policy import (
    Distribution,
    Options,
    PolicyConfig,
    bau_plan,
    cold_start,
    eligible,
    schedule_mask,
)
from pushgrowth.bandit.training import TrainingResult, data_checks
from pushgrowth.campaigns import Campaign, load_catalog
from pushgrowth.domain import CATEGORIES, LIFECYCLE_SEGMENTS, PLAN_DAYS, PLATFORMS
from pushgrowth.sim import World, WorldConfig
from pushgrowth.sim.population import NO_DAY, day_index

COUNTRY = "MLB"
OPEN_CAMPAIGN = "mlb-fidelidade-meli-mais"
"""Objective `open`, no coupon, 5 templates x 7 hours x 4 weekdays x 1 frequency = 140 joint actions."""
FAST = TrainConfig(min_rows=50, min_positives=10, max_rounds=40, early_stopping=10,
                   params={**DEFAULT_PARAMS, "num_threads": 1})
"""Small models for tests; one thread, as OpenMP threads only spin against each other on data this small."""
DELIVERY_P = 0.97

_CATALOG = None


def catalog():
    """The repository's catalog, read once per test session (it is immutable)."""
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = load_catalog()
    return _CATALOG


def campaign(campaign_id: str = OPEN_CAMPAIGN) -> Campaign:
    return catalog().get(campaign_id)


def small_world(seed: int, users: int = 3000) -> World:
    """A one-country World stepped once, so that `today` is the decision date of the logs below."""
    world = World(WorldConfig.build((COUNTRY,), users=users, seed=seed, start_date=dt.date(2026, 9, 1)))
    world.step()
    return world


def population_context(world: World, user_ids: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """A `user_features`-like frame (the day before `world.today`) for users of the World's population."""
    pop = world.population(COUNTRY)
    idx = pop.user_id.searchsorted(np.asarray(user_ids, dtype=np.int64))
    n = len(idx)
    rng = np.random.default_rng([seed, 99])
    t = day_index(world.today) - 1
    orders = pop.lifetime_orders[idx].astype(float)
    gmv = pop.lifetime_gmv[idx].astype(float)
    since = lambda day: np.where(day == NO_DAY, np.nan, t - day.astype(float))  # noqa: E731
    signup, session, order = since(pop.signup_day[idx]), since(pop.last_session_day[idx]), since(
        pop.last_order_day[idx])
    segment = np.select(
        [signup <= 30, (order <= 30) | (session <= 14), (order <= 90) | (session <= 45),
         (order <= 180) | (session <= 180)],
        ["new", "active", "at_risk", "dormant"], "churned")
    # session hours as the World draws them: 60% near the preferred hour, the rest over the waking day
    draws = 24
    near = np.mod(pop.pref_hour[idx][:, None] + rng.normal(0, 1.5, (n, draws)), 24.0)
    hours = np.floor(np.where(rng.random((n, draws)) < 0.6, near, rng.uniform(7, 24, (n, draws))))
    shares = {}
    for part, start, end in PARTS_OF_DAY:
        shares[part] = ((hours >= start) & (hours <= end)).mean(axis=1)
    shares["night"] = 1 - sum(shares.values())
    angle = 2 * np.pi * (hours + 0.5) / 24
    sin, cos = np.sin(angle).mean(axis=1), np.cos(angle).mean(axis=1)
    activity = np.exp(0.5 * pop.weekday_aff[idx].astype(float))
    frame = pd.DataFrame({c: np.full(n, np.nan) for c in CONTEXT_NUMERIC})
    frame.insert(0, "user_id", pop.user_id[idx])
    frame["segment"] = segment
    frame["platform"] = np.asarray(PLATFORMS, dtype=object)[pop.platform[idx]]
    frame["category_interest"] = np.asarray(CATEGORIES, dtype=object)[pop.category[idx]]
    frame["mp_user"] = pop.mp_user[idx]
    frame["days_since_signup"] = signup
    frame["days_since_last_session"] = session
    frame["days_since_last_order"] = order
    frame["lifetime_orders"] = orders
    frame["lifetime_gmv"] = gmv
    frame["avg_order_value"] = np.where(orders > 0, gmv / np.maximum(orders, 1), np.nan)
    frame["sessions_28d"] = rng.poisson(28 * pop.session_rate[idx] * np.exp(pop.engagement[idx]))
    for part, share in shares.items():
        frame[f"share_sessions_{part}"] = share
    frame["share_sessions_weekend"] = activity[:, 5:].sum(axis=1) / activity.sum(axis=1)
    frame["session_hour_mean"] = np.mod(np.arctan2(sin, cos) * 24 / (2 * np.pi), 24)
    frame["session_hour_concentration"] = np.hypot(sin, cos)
    frame["pushes_7d"] = 0.0
    frame["pushes_28d"] = 0.0
    return frame


def draw_situation(n: int, seed: int, busy_share: float = 0.1, capacity: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Free days (n x 7, a few already taken by other campaigns) and weekly capacities."""
    rng = np.random.default_rng([seed, 7])
    free = rng.random((n, PLAN_DAYS)) >= busy_share
    return free, np.full(n, capacity)


def decision_log(world: World, c: Campaign, user_ids: np.ndarray, seed: int, *, bau_share: float = 0.2,
                 busy_share: float = 0.1, policy_config: PolicyConfig = PolicyConfig(),
                 logging: Distribution | None = None, expected_rewards: bool = False) -> pd.DataFrame:
    """Mature decisions of `c` for the users (those opted in to pushes with an allowed schedule, as audiences
    and eligibility keep them) in the columns `training.prepare` produces: the bandit group draws from the
    cold-start policy (or `logging`), the BAU group gets the BAU plan, and rewards are drawn from the World's
    oracle: opens ~ Binomial(frequency, open_rate), conversion ~ Bernoulli(p_conversion), net revenue = its
    expectation plus noise. With `expected_rewards`, `reward_open` (the campaign's objective) is the oracle's
    open rate itself (no outcome noise). `open_rate_truth` keeps the oracle's open rate of each plan.
    """
    rng = np.random.default_rng([seed, 1])
    options = Options.of_campaign(c)
    date = world.today
    pop = world.population(COUNTRY)
    user_ids = np.asarray(user_ids, dtype=np.int64)
    user_ids = user_ids[pop.push_opt_in[pop.user_id.searchsorted(user_ids)]]  # audiences keep opted-in users
    free, capacity = draw_situation(len(user_ids), seed, busy_share)
    mask = schedule_mask(free, capacity, options.space, date)
    ok = eligible(mask)
    user_ids, free, capacity, mask = np.asarray(user_ids)[ok], free[ok], capacity[ok], mask[ok]
    n = len(user_ids)
    bau = rng.random(n) < bau_share
    idx = {d: np.zeros(n, dtype=np.int64) for d in ("coupon", "template", "hour", "weekday", "frequency")}
    propensity = np.ones(n)
    context = population_context(world, user_ids, seed)
    dist = logging if logging is not None else cold_start(options, mask, policy_config, context=context)
    drawn, p = dist.sample(rng)
    plan = bau_plan(options, mask)
    for d in idx:
        idx[d] = np.where(bau, plan[d], drawn[d])
    propensity = np.where(bau, 1.0, p)
    actions = options.actions(idx)
    truth = world.oracle(COUNTRY, user_ids, actions)
    frame = pd.concat([context.reset_index(drop=True), actions.drop(columns="value_proposition")], axis=1)
    delivered = actions["frequency"].to_numpy()  # every push reaches the (opted-in) user: E[reward_open] is exact
    opens = rng.binomial(delivered, truth["open_rate"].to_numpy())
    converted = rng.random(n) < truth["p_conversion"].to_numpy()
    frame = frame.assign(
        country=COUNTRY, date=date, campaign_id=c.id, objective=c.objective, value_proposition=c.value_proposition,
        trace_id=[f"{date}:{c.id}:{u}" for u in user_ids],
        assignment_group=np.where(bau, "bau", "bandit"), policy=np.where(bau, "bau", dist.policy),
        propensity=propensity, is_mature=True, open_is_mature=True,
        free_days=(free * (1 << np.arange(PLAN_DAYS))).sum(axis=1).astype(np.int32),
        capacity=capacity.astype(np.int32), coupons_allowed=True,
        pushes_delivered=delivered.astype(float), opens=opens,
        reward_open=truth["open_rate"].to_numpy() if expected_rewards else opens / delivered,
        converted=converted, reward_conversion=converted.astype(float),
        reward_net_revenue=truth["net_revenue"].to_numpy() + rng.normal(0, 1.0, n),
        redemptions=0, redeemed=0.0,
    )
    frame["open_rate_truth"] = truth["open_rate"].to_numpy()
    return frame


def joint_probabilities(dist: Distribution) -> np.ndarray:
    """(users x joint actions) in the order of `ActionSpace.joint_actions` (coupon, template, hour, weekday,
    frequency, the last varying fastest)."""
    joint = np.einsum("nc,nt,nh,nwf->ncthwf", dist.coupon, dist.template, dist.hour, dist.schedule)
    return joint.reshape(len(dist), -1)


def oracle_table(world: World, c: Campaign, user_ids: np.ndarray, metric: str = "open_rate") -> np.ndarray:
    """(users x joint actions): the World's expected `metric` of every plan of the campaign for every user."""
    actions = c.action_space().joint_actions()
    grid = pd.concat([actions] * len(user_ids), ignore_index=True)
    values = world.oracle(COUNTRY, np.repeat(np.asarray(user_ids), len(actions)), grid)[metric].to_numpy()
    return values.reshape(len(user_ids), len(actions))


COUPON_CAMPAIGN = "mlb-frete-gratis-reativacao"
"""Objective `conversion`, amount coupons 0-50, 5 templates x 8 hours x 5 weekdays x 2 frequencies (2,400
plans)."""


def synthetic_context(n: int, seed: int, value_proposition: str = "free_shipping") -> pd.DataFrame:
    """Random but plausible `user_features` rows (no World): habits, order values and categorical profiles."""
    rng = np.random.default_rng([seed, 3])
    frame = pd.DataFrame({c: rng.gamma(2.0, 3.0, n) for c in CONTEXT_NUMERIC})
    shares = rng.dirichlet(np.ones(5), n)
    for k, part in enumerate(("morning", "midday", "afternoon", "evening", "night")):
        frame[f"share_sessions_{part}"] = shares[:, k]
    frame["share_sessions_weekend"] = rng.uniform(0.05, 0.7, n)
    frame["session_hour_mean"] = rng.uniform(0, 24, n)
    frame["session_hour_concentration"] = rng.uniform(0, 1, n)
    # the CRM's 90-day summary agrees with the recent sessions (a quarter of users have none)
    no_crm = rng.random(n) < 0.25
    frame["usual_active_hour"] = np.where(no_crm, np.nan, frame["session_hour_mean"])
    frame["weekend_activity_share"] = np.where(no_crm, np.nan, frame["share_sessions_weekend"])
    frame["avg_order_value"] = np.where(rng.random(n) < 0.2, np.nan, 165 * rng.lognormal(-0.2, 0.6, n))
    frame["mp_user"] = rng.random(n) < 0.5
    frame.insert(0, "user_id", 2_000_000_000 + rng.permutation(10 * n)[:n])
    frame["segment"] = rng.choice(LIFECYCLE_SEGMENTS, n)
    frame["platform"] = rng.choice(PLATFORMS, n)
    frame["category_interest"] = rng.choice(CATEGORIES, n)
    frame["value_proposition"] = value_proposition
    return frame


def synthetic_frame(n: int, seed: int, campaign_id: str = COUPON_CAMPAIGN, coupons: bool = True) -> pd.DataFrame:
    """A training frame (context, a uniformly random plan of the campaign, every head's label) whose rewards
    depend on the user and on every action dimension, so that each head has something to learn."""
    rng = np.random.default_rng([seed, 4])
    c = campaign(campaign_id)
    options = Options.of_campaign(c)
    context = synthetic_context(n, seed, c.value_proposition)
    idx = {d: rng.integers(0, size, n) for d, size in zip(("coupon", "template", "hour", "weekday", "frequency"),
                                                           options.sizes)}
    if not coupons:
        idx["coupon"] = np.zeros(n, dtype=np.int64)
    actions = options.actions(idx)
    if not coupons:
        actions["coupon_value"] = 0.0
        actions["coupon_kind"] = "none"
    hour = actions["send_hour"].to_numpy()
    weekday = actions["send_weekday"].to_numpy()
    tone = actions["tone"].map({"urgency": 0.4, "benefit": 0.0, "personal": -0.3, "social_proof": 0.2,
                                "curiosity": -0.5}).to_numpy()
    order_value = FeatureSpec(reference_order_value=165.0).order_value(context)
    ratio = actions["coupon_value"].to_numpy() / order_value
    habit = 3.0 * hour_affinity(context, hour) + 0.8 * weekday_affinity(context, weekday)
    mp = context["mp_user"].to_numpy(float)
    logit_open = -3.2 + habit + tone - 0.4 * (actions["frequency"].to_numpy() - 1) + 0.5 * mp
    logit_conv = -2.8 + 2.5 * np.minimum(ratio, 1.0) + 0.5 * habit + 0.6 * mp
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    delivered = actions["frequency"].to_numpy().copy()
    delivered[rng.random(n) < 0.05] = 0
    opens = rng.binomial(delivered, sigmoid(logit_open))
    has_coupon = actions["coupon_value"].to_numpy() > 0
    redeemed = has_coupon & (rng.random(n) < sigmoid(-1.0 + 2.0 * np.minimum(ratio, 1.0) + 0.5 * mp))
    frame = pd.concat([context, actions.drop(columns="value_proposition")], axis=1)
    return frame.assign(
        pushes_delivered=delivered.astype(float),
        reward_open=np.divide(opens, delivered, out=np.zeros(n), where=delivered > 0),
        reward_conversion=(rng.random(n) < sigmoid(logit_conv)).astype(float),
        reward_net_revenue=4.0 + 6.0 * habit - 0.2 * actions["coupon_value"].to_numpy() + 3 * tone
        + rng.normal(0, 2.0, n),
        redeemed=redeemed.astype(float),
        p_open=sigmoid(logit_open),
    )


def shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same rows with every reward permuted across rows: a model trained on it learns nothing true."""
    perm = np.random.default_rng(seed).permutation(len(frame))
    return frame.assign(**{c: frame[c].to_numpy()[perm]
                           for c in ("reward_open", "reward_conversion", "reward_net_revenue")})


@dataclass
class GateCase:
    expected_rewards: bool
    frame: pd.DataFrame
    result: TrainingResult
    real: RewardModel
    fake: RewardModel


def gate_case(seed: int, expected_rewards: bool, users: int = 6000,
              heads: tuple[str, ...] = ("open", "conversion", "net_revenue", "redemption")) -> GateCase:
    """A decision-log frame as `training.prepare` gives it (BAU and bandit groups), a champion trained on its
    real rewards and a challenger trained on the same rows with shuffled rewards, both on the training fold."""
    world = small_world(seed, users)
    frame = decision_log(world, campaign(), world.population(COUNTRY).user_id[:users], seed,
                         expected_rewards=expected_rewards)
    held_out = user_fold(frame["user_id"].to_numpy(), 0.2, TrainConfig().seed + 1)
    train = frame[~held_out].reset_index(drop=True)
    spec = FeatureSpec(reference_order_value=165.0)
    real = fit(train, spec, FAST, heads=heads)
    fake = fit(shuffled(train, seed), spec, FAST, heads=heads)
    result = TrainingResult(COUNTRY, world.today, real, len(frame), len(train), {}, data_checks(frame, len(frame)),
                            frame)
    return GateCase(expected_rewards, frame, result, real, fake)
