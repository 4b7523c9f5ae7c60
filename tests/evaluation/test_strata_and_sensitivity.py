"""Comparisons within randomization strata (campaigns with different group shares), and what an experiment
can detect (minimum detectable effect, power, decisions needed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import norm

from pushgrowth.evaluation.stats import (
    STRATA,
    Interval,
    ate_vs_holdout,
    decisions_multiple,
    exaggeration_ratio,
    lift,
    minimum_detectable_effect,
    pooled_difference,
    power_above_zero,
    sensitivity,
)

SHARES = {"pilot": (0.1, 0.8, 0.1), "rollout": (0.1, 0.45, 0.45)}
"""(holdout, bau, bandit) shares of two campaigns: the pilot gives BAU most of its users."""
LEVELS = {"pilot": 40.0, "rollout": 5.0}
"""Net revenue per decision without any effect: the pilot's audience buys eight times more."""


def two_campaigns(seed: int, *, country: str = "MLB", users: int = 2000, effect: float = 0.0,
                  open_p: tuple[float, float] = (0.10, 0.04)) -> pd.DataFrame:
    """Each user in both campaigns, the group drawn per (user, campaign) with the campaign's shares; the
    bandit adds `effect` to net revenue in both campaigns. The pilot's users also open more (open_p)."""
    rng = np.random.default_rng(seed)
    frames = []
    for (campaign, shares), p_open in zip(SHARES.items(), open_p, strict=True):
        group = rng.choice(["holdout", "bau", "bandit"], users, p=shares)
        pushes = np.where(group == "holdout", 0, rng.integers(1, 4, users))
        frames.append(pd.DataFrame({
            "country": country, "user_id": np.arange(users), "campaign_id": f"{country}-{campaign}",
            "share_bandit": shares[2], "group": group, "pushes_delivered": pushes,
            "opens": rng.binomial(pushes, p_open), "converted": False,
            "net_revenue": LEVELS[campaign] + effect * (group == "bandit") + rng.normal(0, 10.0, users)}))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------------------------
# strata


def test_a_plain_difference_across_campaigns_of_different_shares_is_confounded_and_strata_remove_it():
    """No effect at all, yet BAU holds most of the pilot's big buyers: the plain difference is far below zero
    (Simpson's paradox); within campaigns it is zero within its interval."""
    decisions = two_campaigns(1)
    plain = lift(decisions, metric="net_revenue")
    within = lift(decisions, metric="net_revenue", strata=STRATA)
    assert plain.ci_high < -5.0  # the groups' campaign mix: about -10
    assert within.ci_low < 0.0 < within.ci_high
    for metric in ("net_revenue", "open_rate"):
        plain, within = (lift(decisions, metric=metric, strata=s) for s in (None, STRATA))
        assert abs(within.estimate) < abs(plain.estimate)


def test_strata_cover_a_true_effect_across_seeds():
    hits = sum(lift(two_campaigns(seed, effect=2.0), metric="net_revenue", strata=STRATA).ci_low <= 2.0
               <= lift(two_campaigns(seed, effect=2.0), metric="net_revenue", strata=STRATA).ci_high
               for seed in range(30))
    assert hits >= 25


def test_within_strata_is_the_regression_with_one_dummy_per_stratum():
    """Frisch-Waugh-Lovell: absorbing the strata gives the coefficient of the dummy regression, and its
    clustered standard error up to the small-sample factor of the absorbed dummies."""
    decisions = two_campaigns(2, effect=1.0)
    rows = decisions[decisions["group"].isin(["bandit", "bau"])]
    x = pd.get_dummies(rows["campaign_id"], dtype=float).assign(bandit=(rows["group"] == "bandit").astype(float))
    fit = sm.OLS(rows["net_revenue"].to_numpy(), x.to_numpy()).fit(
        cov_type="cluster", cov_kwds={"groups": rows["user_id"].to_numpy()}, use_t=True)
    within = lift(decisions, metric="net_revenue", strata=["campaign_id"])
    assert within.estimate == pytest.approx(fit.params[-1], rel=1e-9)
    n, k = len(rows), x.shape[1]
    assert within.std_error == pytest.approx(fit.bse[-1] * math.sqrt((n - k) / (n - 1)), rel=1e-9)

    sent = rows[rows["pushes_delivered"] > 0]
    rate = (sent["opens"] / sent["pushes_delivered"]).to_numpy()
    xs = x.loc[sent.index].to_numpy()
    weighted = sm.WLS(rate, xs, weights=sent["pushes_delivered"].to_numpy()).fit(
        cov_type="cluster", cov_kwds={"groups": sent["user_id"].to_numpy()}, use_t=True)
    assert lift(decisions, metric="open_rate", strata=["campaign_id"]).estimate == pytest.approx(
        weighted.params[-1], rel=1e-9)


def test_a_stratum_with_one_group_only_adds_nothing():
    decisions = two_campaigns(3, effect=1.0)
    only_bau = decisions[decisions["campaign_id"].str.endswith("pilot")].assign(campaign_id="MLB-bau-only",
                                                                                group="bau")
    alone = lift(decisions, metric="net_revenue", strata=STRATA)
    more = lift(pd.concat([decisions, only_bau.assign(user_id=only_bau["user_id"] + 10_000)]),
                metric="net_revenue", strata=STRATA)
    assert more.estimate == pytest.approx(alone.estimate, rel=1e-9)
    single = decisions[decisions["campaign_id"].str.endswith("pilot") & (decisions["group"] != "bandit")]
    assert not lift(single.assign(group=np.where(single["group"] == "holdout", "bandit", "bau")).assign(
        campaign_id=np.where(single["group"] == "holdout", "a", "b")), metric="net_revenue",
        strata=["campaign_id"]).available  # no stratum holds both groups: not identified


def test_ate_vs_holdout_and_pooled_difference_take_strata_too():
    decisions = pd.concat([two_campaigns(4, effect=2.0),
                           two_campaigns(5, country="MLM", effect=2.0).assign(
                               net_revenue=lambda f: f["net_revenue"] / 0.055)], ignore_index=True)
    fx = {"MLB": 1.0, "MLM": 0.055}
    plain = pooled_difference(decisions, fx)
    within = pooled_difference(decisions, fx, strata=STRATA)
    assert plain["difference"].ci_high < 0  # the campaign mix again
    assert within["difference"].ci_low < 2.0 < within["difference"].ci_high
    assert within["treatment_ate"].ci_low < 2.0 < within["treatment_ate"].ci_high
    mlb = decisions[decisions["country"] == "MLB"]
    assert ate_vs_holdout(mlb, "bandit", strata=STRATA).ci_low < 2.0 < ate_vs_holdout(
        mlb, "bandit", strata=STRATA).ci_high
    rollout = mlb[mlb["campaign_id"].str.endswith("rollout")]  # one stratum: the saturated difference
    one = pooled_difference(rollout, {"MLB": 1.0}, strata=STRATA)["difference"]
    assert one.estimate == pytest.approx(lift(rollout, metric="net_revenue").estimate, rel=1e-9)


def test_strata_arguments_are_checked():
    decisions = two_campaigns(6)
    with pytest.raises(ValueError, match="sequence of column names"):
        lift(decisions, strata="campaign_id")
    with pytest.raises(ValueError, match="share_of_holdout"):
        ate_vs_holdout(decisions, "bandit", strata=["share_of_holdout"])
    with pytest.raises(ValueError, match="share_bandit"):
        pooled_difference(decisions.drop(columns="share_bandit"), {"MLB": 1.0}, strata=STRATA)


# --------------------------------------------------------------------------------------------------------------
# sensitivity


def test_the_mde_is_2_8_standard_errors_and_found_with_the_power_asked():
    assert minimum_detectable_effect(1.0) == pytest.approx(norm.ppf(0.975) + norm.ppf(0.8))
    assert minimum_detectable_effect(0.5, alpha=0.01, power=0.9) == pytest.approx(
        0.5 * (norm.ppf(0.995) + norm.ppf(0.9)))
    assert power_above_zero(minimum_detectable_effect(0.3), 0.3) == pytest.approx(0.8)
    assert power_above_zero(0.0, 1.0) == pytest.approx(0.025)
    assert decisions_multiple(minimum_detectable_effect(2.0) / 2, 2.0) == pytest.approx(4.0)
    assert decisions_multiple(-1.0, 2.0) == math.inf and decisions_multiple(0.0, 2.0) == math.inf
    assert math.isnan(minimum_detectable_effect(float("nan")))
    assert math.isnan(power_above_zero(1.0, float("nan")))
    assert power_above_zero(1.0, 0.0) == 1.0 and power_above_zero(-1.0, 0.0) == 0.0


def test_a_true_effect_at_the_mde_is_shown_above_zero_about_four_times_in_five():
    """Monte Carlo with the clustered estimator itself: experiments whose true effect is the MDE computed
    from one of them."""
    se = lift(two_campaigns(0, effect=0.0), metric="net_revenue", strata=STRATA).std_error
    mde = minimum_detectable_effect(se)
    shown = [lift(two_campaigns(seed, effect=mde), metric="net_revenue", strata=STRATA).ci_low > 0
             for seed in range(1, 121)]
    assert 0.68 <= np.mean(shown) <= 0.92


def test_sensitivity_of_a_comparison():
    interval = Interval(0.004, -0.006, 0.014, 0.005, 500_000)
    out = sensitivity(interval, expected=0.007)
    assert out["mde"] == pytest.approx(0.005 * 2.8016, rel=1e-4)
    assert out["power"] == pytest.approx(norm.cdf(0.007 / 0.005 - norm.ppf(0.975)))
    assert out["decisions_multiple"] == pytest.approx((out["mde"] / 0.007) ** 2)
    assert out["decisions_needed"] == math.ceil(out["decisions_multiple"] * 500_000)
    assert sensitivity(interval)["expected"] is None and sensitivity(interval)["power"] is None
    negative = sensitivity(interval, expected=-0.001)
    assert negative["decisions_multiple"] is None and negative["decisions_needed"] is None
    assert negative["power"] < 0.025
    assert sensitivity(Interval.unavailable(10), expected=0.007)["mde"] is None


@pytest.mark.parametrize("effect", [0.3, 1.0, 1.5, 2.8])
def test_the_exaggeration_ratio_is_the_mean_of_the_estimates_shown_above_zero(effect):
    """Type M error: simulated normal estimates of a true `effect` (SE 1), kept when their 95% interval clears
    zero, average `exaggeration_ratio` times the effect."""
    draws = np.random.default_rng(int(effect * 10)).normal(effect, 1.0, 2_000_000)
    shown = draws[draws - norm.ppf(0.975) > 0]
    assert exaggeration_ratio(effect, 1.0) == pytest.approx(shown.mean() / effect, rel=0.01)
    assert len(shown) / len(draws) == pytest.approx(power_above_zero(effect, 1.0), abs=0.002)


def test_the_exaggeration_ratio_falls_to_one_with_power_and_is_undefined_without_a_positive_effect():
    assert exaggeration_ratio(minimum_detectable_effect(1.0), 1.0) == pytest.approx(1.12, abs=0.01)
    assert exaggeration_ratio(0.0073, 0.0051) == pytest.approx(1.81, abs=0.01)  # the demo's pooled difference
    assert exaggeration_ratio(10.0, 1.0) == pytest.approx(1.0, abs=1e-6)
    assert exaggeration_ratio(1e-6, 1.0) > 1e5  # a near-null effect is only ever shown by luck
    assert exaggeration_ratio(1.0, 0.0) == 1.0
    for effect in (0.0, -1.0, float("nan")):
        assert math.isnan(exaggeration_ratio(effect, 1.0))
    assert math.isnan(exaggeration_ratio(1.0, float("nan")))
    assert sensitivity(Interval(0.004, -0.006, 0.014, 0.005, 500_000), expected=0.007)["exaggeration"] == (
        pytest.approx(exaggeration_ratio(0.007, 0.005)))
    assert sensitivity(Interval(0.004, -0.006, 0.014, 0.005, 500_000), expected=-0.001)["exaggeration"] is None


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, True])
def test_a_power_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match="power"):
        minimum_detectable_effect(1.0, power=bad)


def test_a_negative_standard_error_is_refused():
    with pytest.raises(ValueError, match="std_error"):
        minimum_detectable_effect(-1.0)
