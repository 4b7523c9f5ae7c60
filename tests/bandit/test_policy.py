"""The factored exploration policy: exact propensities, eligibility, exploration floors, BAU and schedules."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from pushgrowth.bandit.features import DIMENSIONS, FeatureSpec, expected_discount, habits, tone_affinity
from pushgrowth.bandit.model import fit
from pushgrowth.bandit.policy import (
    Distribution,
    Options,
    PolicyConfig,
    Scores,
    bau_plan,
    cold_start,
    eligible,
    free_days_from_schedule,
    habit_priors,
    model_policy,
    schedule_mask,
)
from pushgrowth.bandit.serving import (
    PROXY_DIMENSIONS,
    REDEMPTION_PRIOR,
    TAKE_RATE,
    ServingPolicy,
    bau_distribution,
)
from pushgrowth.domain import TONES, ActionSpace, plan_send_offsets
from tests.bandit.conftest import COUPON_CAMPAIGN, FAST, campaign, synthetic_context, synthetic_frame

DATE = dt.date(2026, 9, 2)  # a Wednesday
TINY = ActionSpace(value_proposition="free_shipping", coupon_kind="amount", coupon_values=(0.0, 10.0, 25.0),
                   templates=(("a", "urgency"), ("b", "benefit")), hours=(9, 20), weekdays=(1, 4, 6),
                   frequencies=(1, 2))
TINY_OPTIONS = Options.of(TINY, 10.0, "b", 20, "fri", 1)
KINDS = ("cold_start", "model_policy", "model_policy_habits", "bau")


def random_scores(n: int, options: Options, seed: int, is_probability: bool = True, scale: float = 1.0,
                  spread: float = 1.0) -> Scores:
    """Scores with random deltas (zero on the BAU option, as `Scores.compute` makes them)."""
    rng = np.random.default_rng(seed)
    deltas = {}
    for k, d in enumerate(DIMENSIONS):
        delta = rng.normal(0, spread, (n, options.sizes[k]))
        deltas[d] = delta - delta[:, [options.bau[k]]]
    return Scores("open", rng.normal(-3 if is_probability else 10, 1, n), deltas, scale, is_probability)


def situation(n: int, options: Options, seed: int, busy: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A schedule mask (some users with nothing allowed) and coupon eligibility (some users coupon-free only)."""
    rng = np.random.default_rng([seed, 11])
    free = rng.random((n, 7)) >= busy
    capacity = rng.integers(0, 4, n)
    mask = schedule_mask(free, capacity, options.space, DATE)
    values = np.asarray(options.space.coupon_values)
    allowed = np.where((rng.random(n) < 0.3)[:, None], values[None, :] == 0, True)
    return mask, allowed


def build(kind: str, options: Options, mask: np.ndarray, allowed: np.ndarray | None, seed: int = 0,
          config: PolicyConfig = PolicyConfig()) -> Distribution:
    if kind == "cold_start":
        return cold_start(options, mask, config, allowed)
    if kind == "model_policy":
        return model_policy(random_scores(len(mask), options, seed), options, mask, config, coupon_allowed=allowed)
    if kind == "model_policy_habits":
        return model_policy(random_scores(len(mask), options, seed), options, mask, config, coupon_allowed=allowed,
                            context=weekend_context(len(mask), seed))
    return bau_distribution(options, mask, allowed)


def weekend_context(n: int, seed: int) -> pd.DataFrame:
    """Users' weekend activity shares from 0 to 1, a tenth without any (no habits), and a push history per tone
    (a third without one)."""
    rng = np.random.default_rng([seed, 12])
    share = rng.uniform(0, 1, n)
    frame = pd.DataFrame({"weekend_activity_share": np.where(rng.random(n) < 0.1, np.nan, share),
                          "share_sessions_weekend": np.nan})
    history = rng.random(n) >= 1 / 3
    for tone in TONES:
        pushes = np.where(history, rng.integers(0, 6, n), 0)
        frame[f"tone_pushes_{tone}"] = pushes
        frame[f"tone_opens_{tone}"] = rng.binomial(pushes, 0.15)
    return frame


def softmax_with_prior(scores: Scores, options: Options, config: PolicyConfig, dimension: str,
                       prior: np.ndarray) -> np.ndarray:
    """A model policy block by its definition: softmax of (score + BAU bonus + prior) / temperature, with the
    epsilon floor spread evenly."""
    k = DIMENSIONS.index(dimension)
    score = scores.deltas[dimension].copy()
    score[:, options.bau[k]] += config.bau_prior
    e = np.exp((score + prior) / config.temperature)
    return (1 - config.epsilon) * e / e.sum(1, keepdims=True) + config.epsilon / options.sizes[k]


def joint(dist: Distribution) -> np.ndarray:
    """(users x joint actions), the last dimension (frequency) varying fastest."""
    return np.einsum("nc,nt,nh,nwf->ncthwf", dist.coupon, dist.template, dist.hour, dist.schedule).reshape(
        len(dist), -1)


def joint_indices(options: Options) -> list[dict[str, int]]:
    return [dict(zip(DIMENSIONS, combo)) for combo in itertools.product(*(range(s) for s in options.sizes))]


@pytest.fixture(scope="module")
def options() -> Options:
    return Options.of_campaign(campaign(COUPON_CAMPAIGN))


# --- every distribution ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_sum_to_one_or_zero_and_masked_options_have_probability_zero(kind, options):
    n = 500
    mask, allowed = situation(n, options, seed=1)
    dist = build(kind, options, mask, allowed)
    ok = eligible(mask)
    assert 0 < ok.sum() < n                      # both kinds of users are in the test
    assert dist.coupon.shape == (n, options.sizes[0]) and dist.schedule.shape == (n, *options.sizes[3:])
    np.testing.assert_allclose(dist.coupon.sum(1), 1.0, atol=1e-12)     # a zero coupon is always allowed here
    np.testing.assert_allclose(dist.template.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(dist.hour.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(dist.schedule.sum((1, 2)), ok.astype(float), atol=1e-12)
    assert (dist.schedule[~mask] == 0).all()
    assert (dist.coupon[~allowed] == 0).all()
    for block in (dist.coupon, dist.template, dist.hour, dist.schedule):
        assert (block >= 0).all() and (block <= 1 + 1e-12).all()


@pytest.mark.parametrize("kind", ["cold_start", "model_policy", "model_policy_habits"])
def test_a_block_with_nothing_allowed_is_all_zero(kind):
    no_zero = Options.of(ActionSpace("free_shipping", "amount", (10.0, 20.0), (("a", "urgency"),), (9,), (4,),
                                     (1,)), 10.0, "a", 9, 4, 1)
    mask = np.ones((3, 1, 1), bool)
    allowed = np.array([[True, True], [False, True], [False, False]])
    dist = build(kind, no_zero, mask, allowed)
    np.testing.assert_allclose(dist.coupon.sum(1), [1.0, 1.0, 0.0])
    assert dist.coupon[1, 0] == 0 and dist.coupon[1, 1] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_propensity_of_a_sampled_action_is_the_product_of_its_blocks(kind, options):
    n = 2000
    mask, allowed = situation(n, options, seed=2)
    dist = build(kind, options, mask, allowed, seed=3)
    idx, propensity = dist.sample(np.random.default_rng(4))
    rows = np.arange(n)
    product = (dist.coupon[rows, idx["coupon"]] * dist.template[rows, idx["template"]]
               * dist.hour[rows, idx["hour"]] * dist.schedule[rows, idx["weekday"], idx["frequency"]])
    np.testing.assert_array_equal(propensity, product)
    np.testing.assert_array_equal(dist.probability(idx), product)
    ok = eligible(mask)
    assert ((propensity[ok] > 0) & (propensity[ok] <= 1)).all()   # every sendable user's propensity is in (0, 1]
    for k, d in enumerate(DIMENSIONS):                           # indices are within the options
        assert ((idx[d] >= 0) & (idx[d] < options.sizes[k])).all()
    assert mask[rows[ok], idx["weekday"][ok], idx["frequency"][ok]].all()
    assert allowed[rows, idx["coupon"]].all()
    if kind == "bau":
        np.testing.assert_array_equal(propensity[ok], 1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_sampled_joint_actions_follow_the_distribution(kind):
    """Empirical frequencies of joint actions over many draws match `probability` (chi-square)."""
    draws = 30_000
    free = np.ones((1, 7), bool)
    free[0, 4] = False                              # Sunday (offset 4) is taken: schedules through it are out
    mask = np.repeat(schedule_mask(free, np.array([2]), TINY, DATE), draws, axis=0)
    allowed = np.repeat([[True, True, False]], draws, axis=0)
    base = build(kind, TINY_OPTIONS, mask[:1], allowed[:1], seed=5)
    dist = Distribution(*(np.repeat(b, draws, axis=0) for b in (base.coupon, base.template, base.hour,
                                                                base.schedule)), base.policy)
    idx, propensity = dist.sample(np.random.default_rng(6))
    combos = joint_indices(TINY_OPTIONS)
    code = np.ravel_multi_index(tuple(idx[d] for d in DIMENSIONS), TINY_OPTIONS.sizes)
    counts = np.bincount(code, minlength=len(combos))
    expected = np.array([base.probability({d: np.array([c[d]]) for d in DIMENSIONS})[0] for c in combos])
    np.testing.assert_allclose(expected, joint(base)[0], rtol=1e-12)
    assert expected.sum() == pytest.approx(1.0)
    assert counts[expected == 0].sum() == 0         # never an impossible action
    np.testing.assert_allclose(propensity, expected[code], rtol=1e-12)
    support = expected > 0
    if support.sum() == 1:
        assert counts[support][0] == draws
        return
    assert chisquare(counts[support], draws * expected[support]).pvalue > 1e-3


# --- cold start, the model policy and BAU ----------------------------------------------------------------------


@pytest.mark.parametrize("cold_epsilon", [0.0, 0.3, 0.5, 1.0])
def test_cold_start_keeps_bau_with_one_minus_epsilon(options, cold_epsilon):
    n = 400
    mask, _ = situation(n, options, seed=7, busy=0.15)
    dist = cold_start(options, mask, PolicyConfig(cold_epsilon=cold_epsilon, cold_hour_habit=0.0))
    b = options.bau
    for k, block in enumerate((dist.coupon, dist.template, dist.hour)):
        size = options.sizes[k]
        np.testing.assert_allclose(block[:, b[k]], 1 - cold_epsilon + cold_epsilon / size)
        others = np.delete(block, b[k], axis=1)
        np.testing.assert_allclose(others, cold_epsilon / size)
    # the schedule: the marginals of the BAU weekday and frequency when all their schedules are allowed
    weekday_open = mask[:, b[3], :].all(axis=1)
    frequency_open = mask[:, :, b[4]].all(axis=1)
    assert weekday_open.sum() > 20 and frequency_open.sum() > 20
    assert (dist.schedule[weekday_open, b[3], :].sum(axis=1) >= 1 - cold_epsilon - 1e-12).all()
    assert (dist.schedule[frequency_open, :, b[4]].sum(axis=1) >= 1 - cold_epsilon - 1e-12).all()
    everything = mask.all(axis=(1, 2))
    w, f = options.sizes[3], options.sizes[4]
    expected = (1 - cold_epsilon + cold_epsilon / w) * (1 - cold_epsilon + cold_epsilon / f)
    np.testing.assert_allclose(dist.schedule[everything, b[3], b[4]], expected)
    assert dist.policy == "cold_start"


def test_cold_start_renormalizes_the_coupons_left():
    n = 2
    allowed = np.array([[True, False, True], [True, True, True]])
    dist = cold_start(TINY_OPTIONS, np.ones((n, 3, 2), bool), PolicyConfig(cold_epsilon=0.6), allowed)
    # BAU coupon (10) is not allowed for user 0: the uniform shares of 0 and 25 are renormalized
    np.testing.assert_allclose(dist.coupon[0], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(dist.coupon[1], [0.2, 0.6, 0.2])


@pytest.mark.parametrize("epsilon", [0.05, 0.1, 0.5])
def test_model_policy_keeps_an_epsilon_floor(options, epsilon):
    """However extreme the scores, each allowed option keeps at least epsilon / |options|."""
    n = 300
    scores = random_scores(n, options, seed=8, spread=50.0)
    mask = np.ones((n, *options.sizes[3:]), bool)
    dist = model_policy(scores, options, mask, PolicyConfig(epsilon=epsilon))
    for k, block in enumerate((dist.coupon, dist.template, dist.hour)):
        assert block.min() >= epsilon / options.sizes[k] - 1e-15
        assert block.max() <= 1 - epsilon + epsilon / options.sizes[k] + 1e-12
    floor = (epsilon / options.sizes[3]) * (epsilon / options.sizes[4])
    assert dist.schedule.min() >= floor - 1e-15
    # restricting coupons only raises the allowed ones
    allowed = np.ones((n, options.sizes[0]), bool)
    allowed[:, -2:] = False
    restricted = model_policy(scores, options, mask, PolicyConfig(epsilon=epsilon), coupon_allowed=allowed)
    assert (restricted.coupon[:, :-2] >= dist.coupon[:, :-2] - 1e-15).all()
    assert restricted.policy == "bandit"


def test_model_policy_is_the_epsilon_mixed_softmax_of_each_block(options):
    n = 50
    config = PolicyConfig(temperature=0.4, epsilon=0.2, bau_prior=0.3)
    scores = random_scores(n, options, seed=9, is_probability=False, scale=3.0)
    mask = np.ones((n, *options.sizes[3:]), bool)
    dist = model_policy(scores, options, mask, config)

    def expected(d):
        k = DIMENSIONS.index(d)
        score = scores.deltas[d].copy()
        score[:, options.bau[k]] += config.bau_prior * scores.scale      # the BAU option's head start
        e = np.exp(score / (config.temperature * scores.scale))
        return 0.8 * e / e.sum(1, keepdims=True) + 0.2 / score.shape[1]

    np.testing.assert_allclose(dist.coupon, expected("coupon"), rtol=1e-12)
    np.testing.assert_allclose(dist.template, expected("template"), rtol=1e-12)
    np.testing.assert_allclose(dist.hour, expected("hour"), rtol=1e-12)
    outer = expected("weekday")[:, :, None] * expected("frequency")[:, None, :]
    np.testing.assert_allclose(dist.schedule, outer, rtol=1e-12)


def test_a_dimension_the_model_ignores_keeps_the_cold_start_block(options):
    n = 20
    scores = random_scores(n, options, seed=26)
    scores.deltas["hour"][:10] = 0.0                     # no tree uses the hour for the first ten users
    mask = np.ones((n, *options.sizes[3:]), bool)
    config = PolicyConfig(cold_epsilon=0.4)
    dist = model_policy(scores, options, mask, config)
    cold = cold_start(options, mask, config)
    np.testing.assert_allclose(dist.hour[:10], cold.hour[:10], rtol=1e-12)
    assert not np.allclose(dist.hour[10:], cold.hour[10:])
    np.testing.assert_allclose(dist.template, model_policy(random_scores(n, options, seed=26), options, mask,
                                                           config).template)
    silent = random_scores(n, options, seed=27, spread=0.0)
    everything = model_policy(silent, options, mask, config)
    for block in ("coupon", "template", "hour", "schedule"):
        np.testing.assert_allclose(getattr(everything, block), getattr(cold, block), rtol=1e-12)


def test_without_epsilon_the_factored_policy_is_the_softmax_over_joint_actions():
    """Additive scores make the product of per-block softmaxes the softmax of the summed score over the
    allowed joint actions: the policy is exact, not an approximation."""
    n = 40
    config = PolicyConfig(temperature=0.5, epsilon=0.0, bau_prior=0.2)
    scores = random_scores(n, TINY_OPTIONS, seed=10)
    mask, allowed = situation(n, TINY_OPTIONS, seed=11, busy=0.2)
    dist = model_policy(scores, TINY_OPTIONS, mask, config, coupon_allowed=allowed)
    combos = joint_indices(TINY_OPTIONS)
    bau = TINY_OPTIONS.bau
    raw = np.column_stack([
        scores.raw({d: np.full(n, c[d]) for d in DIMENSIONS})
        + config.bau_prior * sum(c[d] == bau[k] for k, d in enumerate(DIMENSIONS)) for c in combos])
    ok = np.column_stack([mask[:, c["weekday"], c["frequency"]] & allowed[:, c["coupon"]] for c in combos])
    z = np.where(ok, np.exp((raw - raw.max(1, keepdims=True)) / config.temperature), 0.0)
    softmax = np.divide(z, z.sum(1, keepdims=True), out=np.zeros_like(z), where=z.sum(1, keepdims=True) > 0)
    np.testing.assert_allclose(joint(dist), softmax, atol=1e-12)


def _priced(options: Options, scores: Scores, prices, config: PolicyConfig = PolicyConfig()) -> list[np.ndarray]:
    n = len(scores.base)
    values = np.asarray(options.space.coupon_values)
    cost = np.tile(values * 0.02, (n, 1))                             # expected cost grows with the coupon
    mask = np.ones((n, *options.sizes[3:]), bool)
    return [model_policy(scores, options, mask, config, cost_price=p, expected_cost=cost).coupon for p in prices]


PRICES = (0.0, 0.5, 1.0, 2.0, 5.0, 50.0)


def test_a_price_on_coupon_cost_lowers_expensive_coupons_monotonically(options):
    scores = random_scores(20, options, seed=12, spread=0.05)         # the model barely cares about coupons
    coupons = _priced(options, scores, PRICES)
    eps = PolicyConfig().epsilon / options.sizes[0]
    for previous, current in zip(coupons, coupons[1:]):
        assert (current[:, -1] <= previous[:, -1]).all()             # the most expensive coupon loses ...
        above_floor = previous[:, -1] > eps + 1e-12
        assert (current[above_floor, -1] < previous[above_floor, -1]).all()
        assert (current[:, 0] >= previous[:, 0]).all()               # ... the free one gains
    assert (coupons[-1][:, 0] > coupons[0][:, 0] + 0.5).all()
    np.testing.assert_allclose(coupons[-1][:, 1:], eps, rtol=1e-6)   # only the floor is left at a huge price
    # without a BAU head start, pricier coupons are never more likely than cheaper ones under a price
    flat = _priced(options, scores, (5.0,), PolicyConfig(bau_prior=0.0))[0]
    plain = _priced(options, scores, (0.0,), PolicyConfig(bau_prior=0.0))[0]
    assert (flat[:, -1] < plain[:, -1]).all() and (flat[:, 0] > plain[:, 0]).all()
    # a price without costs, or costs without a price, change nothing
    mask = np.ones((20, *options.sizes[3:]), bool)
    base = model_policy(scores, options, mask).coupon
    np.testing.assert_array_equal(model_policy(scores, options, mask, cost_price=3.0).coupon, base)
    np.testing.assert_array_equal(model_policy(scores, options, mask, expected_cost=np.ones((20, 6))).coupon, base)
    np.testing.assert_array_equal(coupons[0], base)


def test_a_price_on_coupon_cost_applies_when_the_model_has_no_coupon_opinion_yet(options):
    """Budget pacing prices coupons before the model has learned anything about them (all coupon deltas equal):
    a positive price must still move probability away from expensive coupons."""
    scores = random_scores(20, options, seed=12, spread=0.05)
    for d in scores.deltas["coupon"]:
        d[:] = 0.0
    coupons = _priced(options, scores, PRICES[:3])
    for previous, current in zip(coupons, coupons[1:]):
        assert (current[:, -1] < previous[:, -1]).all(), "a higher price left the most expensive coupon as likely"


def test_temperature_is_in_units_of_the_heads_scale(options):
    n = 10
    mask = np.ones((n, *options.sizes[3:]), bool)
    one = random_scores(n, options, seed=13, scale=1.0)
    two = Scores(one.head, 2 * one.base, {d: 2 * v for d, v in one.deltas.items()}, 2.0, one.is_probability)
    a, b = model_policy(one, options, mask), model_policy(two, options, mask)
    for block in ("coupon", "template", "hour", "schedule"):
        np.testing.assert_allclose(getattr(a, block), getattr(b, block), rtol=1e-10)


def test_bau_distribution_is_the_bau_plan_with_probability_one(options):
    n = 300
    mask, allowed = situation(n, options, seed=14)
    dist = bau_distribution(options, mask, allowed)
    plan = bau_plan(options, mask, allowed)
    ok = eligible(mask)
    np.testing.assert_array_equal(dist.greedy()["coupon"], plan["coupon"])
    np.testing.assert_array_equal(dist.probability(plan)[ok], 1.0)
    np.testing.assert_array_equal(dist.schedule.sum((1, 2)), ok.astype(float))
    assert dist.policy == "bau"


def test_greedy_picks_the_most_likely_option_of_each_block(options):
    n = 30
    dist = model_policy(random_scores(n, options, seed=15), options, np.ones((n, *options.sizes[3:]), bool))
    g = dist.greedy()
    rows = np.arange(n)
    assert (dist.hour[rows, g["hour"]] == dist.hour.max(1)).all()
    assert (dist.schedule[rows, g["weekday"], g["frequency"]] == dist.schedule.reshape(n, -1).max(1)).all()


# --- schedules ------------------------------------------------------------------------------------------------


def test_schedule_mask_allows_only_free_days_within_capacity(options):
    rng = np.random.default_rng(16)
    n = 200
    free = rng.random((n, 7)) >= 0.35
    capacity = rng.integers(0, 4, n)
    mask = schedule_mask(free, capacity, options.space, DATE)
    assert mask.shape == (n, *options.sizes[3:])
    for i in range(n):
        for w, wd in enumerate(options.space.weekdays):
            for f, freq in enumerate(options.space.frequencies):
                days = plan_send_offsets(DATE, wd, freq)
                assert mask[i, w, f] == (all(free[i, d] for d in days) and capacity[i] >= freq)
    assert 0 < mask.mean() < 1


def test_schedule_mask_never_lands_a_push_on_a_used_day():
    space = ActionSpace("loyalty", "none", (0.0,), (("a", "benefit"),), (9,), tuple(range(7)), (1, 2, 3))
    for used in range(7):
        free = np.ones((1, 7), bool)
        free[0, used] = False
        mask = schedule_mask(free, np.array([3]), space, DATE)
        for w in range(7):
            for f, freq in enumerate((1, 2, 3)):
                assert mask[0, w, f] == (used not in plan_send_offsets(DATE, w, freq))
    # capacity: nothing for 0, only single pushes for 1
    free = np.ones((2, 7), bool)
    mask = schedule_mask(free, np.array([0, 1]), space, DATE)
    assert not mask[0].any()
    assert mask[1, :, 0].all() and not mask[1, :, 1:].any()
    np.testing.assert_array_equal(eligible(mask), [False, True])


def test_bau_plan_moves_a_colliding_schedule_to_the_next_allowed_weekday():
    # TINY's weekdays are Tue, Fri, Sun; BAU is Fri x1. On Wednesday 2026-09-02 Fri is offset 2, Sun 4, Tue 6.
    assert [plan_send_offsets(DATE, wd, 1) for wd in TINY.weekdays] == [(6,), (2,), (4,)]
    free = np.ones((5, 7), bool)
    free[1, 2] = False                      # Friday taken -> Sunday
    free[2, [2, 4]] = False                 # Friday and Sunday taken -> wraps to Tuesday
    free[3, [2, 4, 6]] = False              # every weekday taken, and every two-push plan uses one of them
    capacity = np.array([3, 3, 3, 3, 0])    # no capacity left -> nothing fits
    plan = bau_plan(TINY_OPTIONS, schedule_mask(free, capacity, TINY, DATE))
    np.testing.assert_array_equal(plan["weekday"], [1, 2, 0, -1, -1])
    np.testing.assert_array_equal(plan["frequency"], [0, 0, 0, -1, -1])
    for d in ("coupon", "template", "hour"):
        np.testing.assert_array_equal(plan[d], TINY_OPTIONS.bau[DIMENSIONS.index(d)])


def test_exploring_policies_centre_on_the_schedule_bau_would_send_when_its_day_is_taken():
    """Cold start, and a model policy with no opinion on the schedule, explore around BAU's *moved* schedule: a
    user whose Friday is taken gets BAU's Sunday most of the time, not an even spread over the free days."""
    free = np.ones((3, 7), bool)
    free[1, 2] = False                      # Friday taken -> BAU moves to Sunday
    free[2, [2, 4]] = False                 # Friday and Sunday taken -> BAU wraps to Tuesday
    mask = schedule_mask(free, np.full(3, 3), TINY, DATE)
    plan = bau_plan(TINY_OPTIONS, mask)
    config = PolicyConfig()
    silent = random_scores(3, TINY_OPTIONS, seed=31)
    for d in ("weekday", "frequency"):
        silent.deltas[d][:] = 0.0
    for dist in (cold_start(TINY_OPTIONS, mask, config), model_policy(silent, TINY_OPTIONS, mask, config)):
        at_bau = dist.schedule[np.arange(3), plan["weekday"], plan["frequency"]]
        assert (at_bau > 0.75).all(), at_bau
        np.testing.assert_array_equal(dist.schedule.reshape(3, -1).argmax(1), plan["weekday"] * 2 + plan["frequency"])
    # where the model does score the weekdays, its scores choose among the free days: the moved day gets no prior
    scored = random_scores(3, TINY_OPTIONS, seed=32, spread=0.0)
    scored.deltas["weekday"][:] = np.array([0.05, 0.0, 0.0])         # Tuesday a little better than Sunday
    dist = model_policy(scored, TINY_OPTIONS, mask, config)
    assert dist.schedule[1, 0, 0] > dist.schedule[1, 2, 0]           # Friday taken: Tuesday over BAU's Sunday
    assert dist.schedule[0].argmax() == 1 * 2 + 0                     # Friday free: BAU's prior still wins


def test_cold_start_explores_the_hours_each_user_is_usually_active(options):
    """Given the context, cold start keeps the BAU hour with 1 - cold_epsilon - cold_hour_habit, sends
    cold_hour_habit and half of cold_epsilon by closeness to the user's usual active hour and the other half of
    cold_epsilon evenly; users without habits, and callers without context, keep the BAU hour with
    1 - cold_epsilon and get an even spread."""
    hours = np.asarray(options.space.hours)
    context = synthetic_context(4, seed=41)
    context["usual_active_hour"] = [float(hours[0]), float(hours[-1]), np.nan, float(hours[3])]
    context["session_hour_mean"] = [np.nan, np.nan, np.nan, np.nan]      # user 2: no habits at all
    mask = np.ones((4, *options.sizes[3:]), bool)
    config = PolicyConfig()
    k, e, a = DIMENSIONS.index("hour"), config.cold_epsilon, config.cold_hour_habit
    assert a > 0
    bau_hour = np.eye(options.sizes[k])[options.bau[k]]
    dist = cold_start(options, mask, config, context=context)
    np.testing.assert_allclose(dist.hour.sum(axis=1), 1.0)
    with_habits = [0, 1, 3]
    explored = (dist.hour[with_habits] - (1 - e - a) * bau_hour) / (e + a)
    assert (explored >= -1e-12).all()
    assert explored[0].argmax() == 0 and explored[1].argmax() == len(hours) - 1 and explored[2].argmax() == 3
    assert explored[0, 0] > explored[0, -1] + 0.3                         # far hours are explored less ...
    assert dist.hour[with_habits].min() >= 0.5 * e / len(hours) - 1e-12  # ... but at least half as before
    np.testing.assert_allclose(dist.hour[2], (1 - e) * bau_hour + e / len(hours))   # no habits: BAU and even
    # without the habit share, the exploration alone leans half to the usual hours
    lean = cold_start(options, mask, PolicyConfig(cold_hour_habit=0.0), context=context)
    half = (lean.hour[with_habits] - (1 - e) * bau_hour) / e
    assert half.min() >= 0.5 / len(hours) - 1e-12 and half[0].argmax() == 0
    np.testing.assert_allclose(dist.hour[with_habits] - lean.hour[with_habits],
                               a * (2 * half - 1 / len(hours) - bau_hour), atol=1e-12)
    even = cold_start(options, mask, config)                             # no context: even for everyone
    np.testing.assert_allclose(even.hour, cold_start(options, mask, PolicyConfig(cold_hour_width=None),
                                                     context=context).hour)
    np.testing.assert_allclose(even.hour[0], (1 - e) * bau_hour + e / len(hours))
    # the serving policy passes the context, so logged and recomputed propensities agree
    served, _ = ServingPolicy().distribution("open", context, options, mask)
    np.testing.assert_array_equal(served.hour, dist.hour)


def test_the_weekday_habit_prior_leans_each_user_to_the_kind_of_day_they_use_the_app(options):
    """The model policy's weekday block adds weekday_habit * log(weekday affinity) to the model's scores: a
    weekend user's schedules move to weekend anchors, a weekday user's away from them, a user without habits
    keeps what the model alone gives, and so do heads not in log-odds and a prior of 0."""
    weekdays = np.asarray(options.space.weekdays)
    weekend = weekdays >= 5
    assert weekend.any() and (~weekend).any()
    n = 3
    context = pd.DataFrame({"weekend_activity_share": [0.8, 0.05, np.nan], "share_sessions_weekend": np.nan})
    mask = np.ones((n, *options.sizes[3:]), bool)
    scores = random_scores(n, options, seed=30, spread=0.3)
    config = PolicyConfig()
    prior = habit_priors(scores, options, config, context)["weekday"]
    np.testing.assert_allclose(prior[0], np.where(weekend, np.log(0.8 / (2 / 7)), np.log(0.2 / (5 / 7))))
    np.testing.assert_allclose(prior[1], np.where(weekend, np.log(0.05 / (2 / 7)), np.log(0.95 / (5 / 7))))
    np.testing.assert_array_equal(prior[2], 0.0)
    plain = model_policy(scores, options, mask, config)
    leaning = model_policy(scores, options, mask, config, context=context)
    weekend_mass = lambda d: d.schedule.sum(axis=2)[:, weekend].sum(axis=1)  # noqa: E731
    assert weekend_mass(leaning)[0] > weekend_mass(plain)[0] + 0.2
    assert weekend_mass(leaning)[1] < weekend_mass(plain)[1] - 0.05
    np.testing.assert_allclose(leaning.schedule[2], plain.schedule[2], rtol=1e-12)
    for block in ("coupon", "template", "hour"):                    # only the weekday block moves
        np.testing.assert_array_equal(getattr(leaning, block), getattr(plain, block))
    q = softmax_with_prior(scores, options, config, "weekday", prior)   # exactly the softmax of score + prior
    q_f = model_policy(scores, options, mask, config).schedule.sum(axis=1)   # the frequency block is untouched
    outer = q[:, :, None] * q_f[:, None, :]
    np.testing.assert_allclose(leaning.schedule, outer / outer.sum((1, 2), keepdims=True), rtol=1e-10)
    # off: a prior of 0, a money head, or no context
    off = model_policy(scores, options, mask, PolicyConfig(weekday_habit=0.0), context=context)
    np.testing.assert_array_equal(off.schedule, model_policy(scores, options, mask, PolicyConfig(weekday_habit=0.0)
                                                             ).schedule)
    money = random_scores(n, options, seed=30, is_probability=False)
    assert habit_priors(money, options, config, context) == {}
    assert habit_priors(scores, options, config, None) == {}


def test_a_model_silent_on_the_weekday_follows_the_habit_prior_where_there_is_one(options):
    """A user whose weekday scores are flat keeps the cold-start block only without habits: with them, the
    prior alone chooses (a weekday affinity is something to go on, as a model's score is)."""
    n = 2
    scores = random_scores(n, options, seed=31)
    scores.deltas["weekday"][:] = 0.0
    context = pd.DataFrame({"weekend_activity_share": [0.9, np.nan], "share_sessions_weekend": np.nan})
    mask = np.ones((n, *options.sizes[3:]), bool)
    config = PolicyConfig()
    dist = model_policy(scores, options, mask, config, context=context)
    cold = cold_start(options, mask, config)
    np.testing.assert_allclose(dist.schedule[1], model_policy(scores, options, mask, config).schedule[1])
    weekend = np.asarray(options.space.weekdays) >= 5
    assert dist.schedule[0].sum(axis=1)[weekend].sum() > cold.schedule[0].sum(axis=1)[weekend].sum() + 0.3


def test_the_serving_policy_and_assignments_apply_the_same_weekday_prior(conversion_model, options):
    """The serving policy passes the users' context, so the weekday prior is in the propensities that off-policy
    evaluation and `pushgrowth trace` recompute, as in the ones assignments log."""
    context = synthetic_context(40, seed=42).assign(value_proposition=options.space.value_proposition)
    context["weekend_activity_share"] = np.linspace(0, 1, 40)
    mask = np.ones((40, *options.sizes[3:]), bool)
    policy = ServingPolicy(model=conversion_model)
    served, scores = policy.distribution("conversion", context, options, mask)
    assert scores is not None and scores.is_probability
    np.testing.assert_allclose(served.schedule, model_policy(scores, options, mask, policy.config,
                                                             context=context).schedule, rtol=1e-12)
    assert not np.allclose(served.schedule, model_policy(scores, options, mask, policy.config).schedule)


def test_the_tone_prior_leans_each_user_to_the_wording_they_open(options):
    """The template block adds the posterior mean of the user's affinity for each template's tone: a user who
    opened urgency pushes gets urgency templates more often, one who ignored them less, a user without a
    history keeps what the model alone gives; exactly the softmax of score + prior."""
    templates = [tone for _, tone in options.space.templates]
    assert "urgency" in templates and len(set(templates)) > 1
    n = 3
    context = pd.DataFrame({f"tone_{kind}_{tone}": 0 for tone in TONES for kind in ("pushes", "opens")},
                           index=range(n))
    context.loc[0, ["tone_pushes_urgency", "tone_opens_urgency", "tone_pushes_benefit"]] = [3, 2, 3]
    context.loc[1, ["tone_pushes_urgency", "tone_pushes_benefit", "tone_opens_benefit"]] = [6, 3, 1]
    mask = np.ones((n, *options.sizes[3:]), bool)
    scores = random_scores(n, options, seed=32, spread=0.3)
    config = PolicyConfig(weekday_habit=0.0)
    prior = habit_priors(scores, options, config, context)["template"]
    np.testing.assert_allclose(prior, tone_affinity(context, config.tone_habit)[:, [TONES.index(t) for t in templates]])
    np.testing.assert_array_equal(prior[2], 0.0)
    urgency = np.asarray(templates) == "urgency"
    plain = model_policy(scores, options, mask, config)
    leaning = model_policy(scores, options, mask, config, context=context)
    assert leaning.template[0, urgency].sum() > 3 * plain.template[0, urgency].sum()
    assert leaning.template[1, urgency].sum() < 0.9 * plain.template[1, urgency].sum()
    np.testing.assert_allclose(leaning.template[2], plain.template[2], rtol=1e-12)
    for block in ("coupon", "hour", "schedule"):
        np.testing.assert_array_equal(getattr(leaning, block), getattr(plain, block))
    np.testing.assert_allclose(leaning.template, softmax_with_prior(scores, options, config, "template", prior),
                               rtol=1e-10)
    # the habits mapping scoring uses gives the same prior as the frame
    np.testing.assert_allclose(habit_priors(scores, options, config, habits(context))["template"], prior)
    assert "template" not in habit_priors(scores, options, PolicyConfig(tone_habit=0.0), context)
    assert habit_priors(random_scores(n, options, seed=32, is_probability=False), options, config, context) == {}


def test_a_model_silent_on_the_template_follows_the_tone_prior_where_there_is_one(options):
    n = 2
    scores = random_scores(n, options, seed=33)
    scores.deltas["template"][:] = 0.0
    context = pd.DataFrame({f"tone_{kind}_{tone}": 0 for tone in TONES for kind in ("pushes", "opens")},
                           index=range(n))
    context.loc[0, ["tone_pushes_personal", "tone_opens_personal"]] = [2, 2]
    mask = np.ones((n, *options.sizes[3:]), bool)
    config = PolicyConfig()
    dist = model_policy(scores, options, mask, config, context=context)
    cold = cold_start(options, mask, config)
    np.testing.assert_allclose(dist.template[1], cold.template[1])     # nothing to go on: cold start's block
    personal = np.asarray([tone for _, tone in options.space.templates]) == "personal"
    assert dist.template[0, personal].sum() > cold.template[0, personal].sum() + 0.05


def test_the_serving_policy_applies_the_tone_prior_it_logs(conversion_model, options):
    """The serving policy passes the users' context, so the tone prior is in the propensities that off-policy
    evaluation and `pushgrowth trace` recompute."""
    context = synthetic_context(40, seed=43).assign(value_proposition=options.space.value_proposition)
    history = weekend_context(40, seed=44)
    for column in history.columns:
        if column.startswith("tone_"):
            context[column] = history[column].to_numpy()
    mask = np.ones((40, *options.sizes[3:]), bool)
    policy = ServingPolicy(model=conversion_model)
    served, scores = policy.distribution("conversion", context, options, mask)
    np.testing.assert_allclose(served.template, model_policy(scores, options, mask, policy.config,
                                                             context=context).template, rtol=1e-12)
    assert not np.allclose(served.template, model_policy(scores, options, mask, policy.config).template)


@pytest.mark.parametrize("variance", [-0.1, float("nan"), float("inf"), True])
def test_a_tone_habit_that_is_not_a_non_negative_variance_is_refused(variance):
    with pytest.raises(ValueError, match="tone_habit must be a non-negative prior variance"):
        PolicyConfig(tone_habit=variance)


@pytest.mark.parametrize("kappa", [-0.5, float("nan"), float("inf"), True])
def test_a_weekday_habit_that_is_not_a_non_negative_number_is_refused(kappa):
    with pytest.raises(ValueError, match="weekday_habit must be a non-negative number"):
        PolicyConfig(weekday_habit=kappa)


@pytest.mark.parametrize("habit", [-0.1, 0.81, float("nan"), True])
def test_a_cold_hour_habit_share_outside_what_cold_epsilon_leaves_is_refused(habit):
    with pytest.raises(ValueError, match="cold_hour_habit must be a share between 0 and 1 - cold_epsilon"):
        PolicyConfig(cold_hour_habit=habit)
    assert PolicyConfig(cold_epsilon=0.1, cold_hour_habit=0.9).cold_hour_habit == 0.9


def test_bau_plan_lowers_the_frequency_before_raising_it():
    twice = Options.of(TINY, 10.0, "b", 20, "fri", 2)      # BAU: Fri x2 = offsets 2 and 5
    free = np.ones((3, 7), bool)
    free[2, 2] = False
    free[2, 4] = False
    free[2, 6] = False                                     # no single push fits; Fri x2 = (2, 5) neither
    capacity = np.array([3, 1, 3])
    plan = bau_plan(twice, schedule_mask(free, capacity, TINY, DATE))
    np.testing.assert_array_equal(plan["weekday"], [1, 1, -1])
    np.testing.assert_array_equal(plan["frequency"], [1, 0, -1])


def test_bau_plan_drops_a_coupon_the_budget_no_longer_allows():
    mask = np.ones((2, 3, 2), bool)
    allowed = np.array([[True, True, True], [True, False, False]])
    plan = bau_plan(TINY_OPTIONS, mask, allowed)
    np.testing.assert_array_equal(plan["coupon"], [1, 0])     # 10 -> the zero coupon
    no_zero = Options.of(ActionSpace("loyalty", "amount", (10.0, 20.0), (("a", "benefit"),), (9,), (4,), (1,)),
                         20.0, "a", 9, 4, 1)
    plan = bau_plan(no_zero, np.ones((2, 1, 1), bool), np.array([[True, True], [True, False]]))
    np.testing.assert_array_equal(plan["coupon"], [1, -1])


def test_free_days_from_schedule_marks_exactly_the_scheduled_offsets():
    users = np.array([10, 20, 30])
    scheduled = pd.DataFrame({
        "user_id": [10, 10, 10, 10, 20, 99, 30],
        "send_date": pd.to_datetime(["2026-09-02", "2026-09-08", "2026-09-09", "2026-09-01", "2026-09-05 20:00",
                                     "2026-09-03", "2026-09-02"], format="ISO8601"),
    })
    free = free_days_from_schedule(users, scheduled.iloc[:6], DATE)
    expected = np.ones((3, 7), bool)
    expected[0, [0, 6]] = False           # today and the plan's last day; the day after and the day before not
    expected[1, 3] = False                # a push at 20:00 still takes the day
    np.testing.assert_array_equal(free, expected)
    free = free_days_from_schedule(users, scheduled, DATE)
    expected[2, 0] = False
    np.testing.assert_array_equal(free, expected)
    np.testing.assert_array_equal(free_days_from_schedule(users, scheduled.iloc[:0], DATE), np.ones((3, 7), bool))


# --- expected values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cold_start", "model_policy", "bau"])
def test_expected_value_is_exact_for_money_heads(kind):
    n = 60
    scores = random_scores(n, TINY_OPTIONS, seed=17, is_probability=False, scale=4.0, spread=3.0)
    mask, allowed = situation(n, TINY_OPTIONS, seed=18, busy=0.2)
    ok = eligible(mask)
    dist = cold_start(TINY_OPTIONS, mask, coupon_allowed=allowed) if kind == "cold_start" else \
        model_policy(scores, TINY_OPTIONS, mask, coupon_allowed=allowed) if kind == "model_policy" else \
        bau_distribution(TINY_OPTIONS, mask, allowed)
    combos = joint_indices(TINY_OPTIONS)
    raw = np.column_stack([scores.raw({d: np.full(n, c[d]) for d in DIMENSIONS}) for c in combos])
    brute = (joint(dist) * raw).sum(1)
    value = dist.expected_value(scores, np.random.default_rng(0))
    np.testing.assert_allclose(value[ok], brute[ok], rtol=1e-10)


def test_expected_value_of_probability_heads_is_a_monte_carlo_mean():
    n = 40
    scores = random_scores(n, TINY_OPTIONS, seed=19, spread=2.0)
    mask = np.ones((n, 3, 2), bool)
    dist = model_policy(scores, TINY_OPTIONS, mask)
    combos = joint_indices(TINY_OPTIONS)
    values = np.column_stack([scores.value({d: np.full(n, c[d]) for d in DIMENSIONS}) for c in combos])
    p = joint(dist)
    brute = (p * values).sum(1)
    sd = np.sqrt((p * (values - brute[:, None]) ** 2).sum(1))
    samples = 4000
    mc = dist.expected_value(scores, np.random.default_rng(1), samples=samples)
    assert (np.abs(mc - brute) <= 4.5 * sd / np.sqrt(samples) + 1e-12).all()
    z = (mc - brute) / (sd / np.sqrt(samples))
    assert abs(z.mean()) < 4.5 / np.sqrt(n)
    # reproducible with the same generator, and within the range of the values
    again = dist.expected_value(scores, np.random.default_rng(1), samples=samples)
    np.testing.assert_array_equal(mc, again)
    assert ((mc >= values.min(1) - 1e-12) & (mc <= values.max(1) + 1e-12)).all()


# --- options --------------------------------------------------------------------------------------------------


def test_options_of_a_campaign(options):
    c = campaign(COUPON_CAMPAIGN)
    space = c.action_space()
    assert options.sizes == (len(space.coupon_values), len(space.templates), len(space.hours),
                             len(space.weekdays), len(space.frequencies))
    b = options.bau
    assert space.coupon_values[b[0]] == c.bau.coupon and space.templates[b[1]][0] == c.bau.template
    assert space.hours[b[2]] == c.bau.hour and space.weekdays[b[3]] == 3 and space.frequencies[b[4]] == 1
    bau = options.actions(options.reference(2))
    assert bau.iloc[0].to_dict() == {"coupon_kind": "amount", "coupon_value": 30.0, "coupon_cap": 0.0,
                                     "template_id": "beneficio", "tone": space.templates[b[1]][1], "send_hour": 19,
                                     "send_weekday": 3, "frequency": 1, "value_proposition": "free_shipping"}
    zero = options.actions({d: np.zeros(1, dtype=int) for d in DIMENSIONS})
    assert zero["coupon_kind"].iloc[0] == "none" and zero["coupon_value"].iloc[0] == 0.0


def test_options_refuse_a_bau_plan_outside_the_options():
    with pytest.raises(ValueError, match="BAU plan .* is not among the campaign's options"):
        Options.of(TINY, 10.0, "b", 20, "thu", 1)
    with pytest.raises(ValueError, match="not among"):
        Options.of(TINY, 15.0, "b", 20, "fri", 1)


# --- the serving policy ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conversion_model():
    return fit(synthetic_frame(1500, seed=20), FeatureSpec(reference_order_value=165.0), FAST,
               heads=("conversion", "redemption"))


def test_serving_policy_falls_back_to_cold_start_without_a_head(conversion_model, options):
    context = synthetic_context(30, seed=21)
    mask = np.ones((30, *options.sizes[3:]), bool)
    none = ServingPolicy()
    assert none.label == "cold start (no champion)" and none.head("conversion") is None
    dist, scores = none.distribution("conversion", context, options, mask)
    assert dist.policy == "cold_start" and scores is None
    policy = ServingPolicy(model=conversion_model, model_name="pushgrowth-bandit-MLB", model_version="3")
    assert policy.label == "pushgrowth-bandit-MLB v3"
    assert policy.head("open") is None and policy.head("conversion") == "conversion"
    dist, _ = policy.distribution("open", context, options, mask)
    assert dist.policy == "cold_start"
    dist, scores = policy.distribution("conversion", context, options, mask)
    assert dist.policy == "bandit" and scores.head == "conversion"
    bau, _ = ServingPolicy(model=conversion_model, bau=True).distribution("conversion", context, options, mask)
    assert bau.policy == "bau"


def test_an_objective_without_its_head_is_served_by_the_open_head(options):
    spec = FeatureSpec(reference_order_value=165.0)
    frame = synthetic_frame(3000, seed=24)
    # opens that a coupon raises a lot: an open head serving a net revenue campaign would hand coupons out
    p = np.minimum(frame["p_open"] * np.where(frame["coupon_value"] > 0, 3.0, 1.0), 0.95)
    opened = np.random.default_rng(24).random(len(frame)) < p
    frame["reward_open"] = np.where(frame["pushes_delivered"] > 0, opened, 0.0).astype(float)
    open_only = fit(frame, spec, FAST, heads=("open",))
    policy = ServingPolicy(model=open_only)
    assert [policy.head(o) for o in ("open", "conversion", "net_revenue")] == ["open", "open", "open"]
    context = synthetic_context(20, seed=25)
    mask = np.ones((20, *options.sizes[3:]), bool)
    dist, scores = policy.distribution("net_revenue", context, options, mask)
    assert dist.policy == "bandit" and scores.head == "open" and scores.is_probability
    # standing in, the open head chooses when and how to speak; the frequency explores around BAU's and a net
    # revenue campaign's coupon around its cheapest (a coupon is pure cost before a conversion head exists)
    cheapest = np.full(20, int(np.argmin(options.space.coupon_values)))
    assert cheapest[0] != options.bau[0]
    cold = cold_start(options, mask, policy.config, coupon_reference=cheapest)
    np.testing.assert_allclose(dist.coupon, cold.coupon)
    np.testing.assert_allclose(dist.schedule.sum(axis=1), cold.schedule.sum(axis=1))
    at_bau = cold_start(options, mask, policy.config)
    for objective, config in (("conversion", policy.config), ("net_revenue", PolicyConfig(cold_coupon_at_margin=False))):
        other, _ = ServingPolicy(model=open_only, config=config).distribution(objective, context, options, mask)
        np.testing.assert_allclose(other.coupon, at_bau.coupon, err_msg=objective)
    for d in ("coupon", "frequency"):
        assert not scores.deltas[d].any(), d
    assert np.abs(scores.deltas["hour"]).max() > 0.05
    # serving its own objective, the open head chooses every dimension
    _, own = policy.distribution("open", context, options, mask)
    full = Scores.compute(open_only, "open", context, options)
    for d in full.deltas:
        np.testing.assert_array_equal(own.deltas[d], full.deltas[d])
        if d not in ("coupon", "frequency"):
            np.testing.assert_array_equal(scores.deltas[d], full.deltas[d])
    assert np.abs(full.deltas["coupon"]).max() > 0.3  # the open head alone would pick coupons


def test_a_conversion_campaign_speaks_when_the_open_head_says_and_pays_as_its_own_head_says(conversion_model, options):
    spec = FeatureSpec(reference_order_value=165.0)
    model = fit(synthetic_frame(3000, seed=26), spec, FAST, heads=("open", "conversion", "net_revenue"))
    assert set(model.heads) == {"open", "conversion", "net_revenue"}
    policy = ServingPolicy(model=model)
    context = synthetic_context(20, seed=27)
    mask = np.ones((20, *options.sizes[3:]), bool)
    own = {h: Scores.compute(model, h, context, options) for h in model.heads}
    _, scores = policy.distribution("conversion", context, options, mask)
    assert scores.head == "conversion" and policy.heads_used("conversion") == ("conversion", "open")
    np.testing.assert_array_equal(scores.base, own["conversion"].base)
    for d in DIMENSIONS:
        lead = "open" if d in PROXY_DIMENSIONS else "conversion"
        np.testing.assert_array_equal(scores.deltas[d], own[lead].deltas[d], err_msg=d)
    assert not np.allclose(own["open"].deltas["hour"], own["conversion"].deltas["hour"])  # the swap is visible
    # net revenue keeps its own head for when and how (opens also redeem coupons on orders that would have
    # happened); its coupons are priced by what they earn and cost
    _, money = policy.distribution("net_revenue", context, options, mask)
    assert policy.heads_used("net_revenue") == ("net_revenue", "conversion")
    for d in DIMENSIONS:
        expected = policy.coupon_margin(context, options) if d == "coupon" else own["net_revenue"].deltas[d]
        np.testing.assert_array_equal(money.deltas[d], expected, err_msg=d)
    # without an open head, the conversion head chooses every dimension
    alone = ServingPolicy(model=conversion_model)
    assert alone.heads_used("conversion") == ("conversion",) and alone.heads_used("open") == ()
    _, solo = alone.distribution("conversion", context, options, mask)
    full = Scores.compute(conversion_model, "conversion", context, options)
    for d in DIMENSIONS:
        np.testing.assert_array_equal(solo.deltas[d], full.deltas[d], err_msg=d)


def test_net_revenue_coupons_are_priced_by_what_they_earn_minus_what_they_cost(options):
    """A net revenue campaign's coupon block is TAKE_RATE x the user's typical order x the conversion head's rise
    in P(conversion), minus the expected cost at the campaign's cost share, relative to the BAU coupon: computed
    here from the heads' plain predictions of whole plans."""
    spec = FeatureSpec(reference_order_value=165.0)
    model = fit(synthetic_frame(3000, seed=28), spec, FAST, heads=("conversion", "net_revenue", "redemption"))
    assert set(model.heads) == {"conversion", "net_revenue", "redemption"}
    n = 30
    context = synthetic_context(n, seed=29).assign(value_proposition=options.space.value_proposition)
    policy = ServingPolicy(model=model)
    assert options.cost_share == campaign(COUPON_CAMPAIGN).coupon.cost_share
    values = np.asarray(options.space.coupon_values)
    plan = {}
    for k in range(len(values)):
        idx = options.reference(n)
        idx["coupon"] = np.full(n, k)
        actions = options.actions(idx)
        pred = model.predict(context, actions)
        discount = expected_discount(actions["coupon_kind"].to_numpy(object), actions["coupon_value"].to_numpy(),
                                     actions["coupon_cap"].to_numpy(), model.spec.order_value(context))
        plan[k] = (TAKE_RATE * model.spec.order_value(context) * pred["conversion"].to_numpy()
                   - pred["redemption"].to_numpy() * discount * options.cost_share)
    value = np.column_stack([plan[k] for k in range(len(values))])
    expected = value - value[:, [options.bau[0]]]
    np.testing.assert_allclose(policy.coupon_margin(context, options), expected, rtol=1e-6, atol=1e-9)
    mask = np.ones((n, *options.sizes[3:]), bool)
    _, scores = policy.distribution("net_revenue", context, options, mask)
    np.testing.assert_array_equal(scores.deltas["coupon"], policy.coupon_margin(context, options))
    # the marketplace pays its share only: a campaign whose partner pays half costs it half
    half = replace(options, cost_share=options.cost_share / 2)
    np.testing.assert_allclose(policy.expected_cost(context, half, half.cost_share),
                               policy.expected_cost(context, options, options.cost_share) / 2)
    # before the conversion head, a coupon is all cost: the cheapest coupon is the best
    no_conversion = ServingPolicy(model=fit(synthetic_frame(3000, seed=28), spec, FAST,
                                            heads=("net_revenue", "redemption")))
    margin = no_conversion.coupon_margin(context, options)
    cost = no_conversion.expected_cost(context, options, options.cost_share)
    np.testing.assert_allclose(margin, -(cost - cost[:, [options.bau[0]]]))
    assert (margin.argmax(axis=1) == int(np.argmin(values))).all()
    assert no_conversion.heads_used("net_revenue") == ("net_revenue",)
    assert policy.heads_used("net_revenue") == ("net_revenue", "conversion")
    # other objectives' coupons stay their own head's
    _, conv = policy.distribution("conversion", context, options, mask)
    np.testing.assert_array_equal(conv.deltas["coupon"],
                                  Scores.compute(model, "conversion", context, options).deltas["coupon"])


def test_a_net_revenue_campaign_explores_coupons_around_the_best_margin_until_its_own_head_serves(
        conversion_model, options):
    """Before the net revenue head serves, a net revenue campaign's cold coupon block centres on the coupon with the
    best `coupon_margin` (the cheapest while no conversion head says what a coupon earns), not on BAU's; other
    objectives, BAU, the net revenue head itself and the switched-off setting keep their behaviour."""
    n = 40
    context = synthetic_context(n, seed=30)
    mask = np.ones((n, *options.sizes[3:]), bool)
    values = np.asarray(options.space.coupon_values)
    cheapest = int(np.argmin(values))
    assert cheapest != options.bau[0]
    # no model at all: a coupon is pure cost, so the cheapest one
    none = ServingPolicy(reference_order_value=165.0)
    np.testing.assert_array_equal(none.coupon_reference("net_revenue", context, options), np.full(n, cheapest))
    dist, _ = none.distribution("net_revenue", context, options, mask)
    expected = cold_start(options, mask, none.config, context=context, coupon_reference=np.full(n, cheapest))
    np.testing.assert_allclose(dist.coupon, expected.coupon)
    e = none.config.cold_epsilon
    np.testing.assert_allclose(dist.coupon[:, cheapest], 1 - e + e / len(values))
    for objective in ("open", "conversion"):
        assert none.coupon_reference(objective, context, options) is None
        other, _ = none.distribution(objective, context, options, mask)
        np.testing.assert_allclose(other.coupon[:, options.bau[0]], 1 - e + e / len(values))
    # a conversion head prices the coupon by what it earns too: the centre is the margin's best, user by user
    priced = ServingPolicy(model=conversion_model)
    assert priced.head("net_revenue") is None
    margin = priced.coupon_margin(context, options)
    reference = priced.coupon_reference("net_revenue", context, options)
    np.testing.assert_array_equal(reference, margin.argmax(axis=1))
    dist, _ = priced.distribution("net_revenue", context, options, mask)
    np.testing.assert_allclose(dist.coupon, cold_start(options, mask, priced.config, context=context,
                                                       coupon_reference=reference).coupon)
    # the net revenue head's own block prices coupons itself; BAU is BAU; the setting turns it off
    spec = FeatureSpec(reference_order_value=165.0)
    own = ServingPolicy(model=fit(synthetic_frame(3000, seed=28), spec, FAST, heads=("net_revenue", "redemption")))
    assert own.coupon_reference("net_revenue", context, options) is None
    assert ServingPolicy(bau=True).coupon_reference("net_revenue", context, options) is None
    off = ServingPolicy(config=PolicyConfig(cold_coupon_at_margin=False))
    assert off.coupon_reference("net_revenue", context, options) is None


def test_expected_cost_uses_the_prior_before_a_redemption_head(options):
    context = synthetic_context(25, seed=22)
    policy = ServingPolicy(reference_order_value=165.0)
    cost = policy.expected_cost(context, options, cost_share=0.5)
    values = np.asarray(options.space.coupon_values)
    order_value = FeatureSpec(reference_order_value=165.0).order_value(context)
    discount = np.column_stack([expected_discount(np.full(25, "amount"), np.full(25, v), np.zeros(25), order_value)
                                for v in values])
    np.testing.assert_allclose(cost, REDEMPTION_PRIOR * discount * 0.5)
    assert (cost[:, values == 0] == 0).all() and (cost[:, values > 0] > 0).all()


def test_expected_cost_uses_the_redemption_head(conversion_model, options):
    context = synthetic_context(25, seed=23)
    policy = ServingPolicy(model=conversion_model)
    cost = policy.expected_cost(context, options, cost_share=1.0)
    values = np.asarray(options.space.coupon_values)
    ctx = context.assign(value_proposition=options.space.value_proposition)
    for k, v in enumerate(values):
        idx = options.reference(25)
        idx["coupon"] = np.full(25, k)
        actions = options.actions(idx)
        predicted = conversion_model.predict(ctx, actions)["redemption"].to_numpy()
        discount = expected_discount(actions["coupon_kind"].to_numpy(object), actions["coupon_value"].to_numpy(),
                                     actions["coupon_cap"].to_numpy(), conversion_model.spec.order_value(ctx))
        np.testing.assert_allclose(cost[:, k], predicted * discount if v > 0 else 0.0, rtol=1e-9, atol=1e-12)



@pytest.mark.parametrize("width", [0.0, -2.0, float("nan"), float("inf")])
def test_a_cold_hour_width_that_is_not_a_positive_number_of_hours_is_refused(width):
    with pytest.raises(ValueError, match="cold_hour_width must be a positive number of hours"):
        PolicyConfig(cold_hour_width=width)
