"""The evaluation report's statistics: exact summaries, honest (cluster-robust) intervals and currency pooling."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from pushgrowth.evaluation.stats import (
    Interval,
    ate_vs_holdout,
    group_summary,
    lift,
    pooled_difference,
)

SEEDS = range(40)
EFFECTS = {"holdout": 0.0, "bau": 0.5, "bandit": 2.0}


def simulate(seed: int, *, country: str = "MLB", n_users: int = 300, rows_per_user: int = 8,
             user_sd: float = 10.0, noise_sd: float = 10.0, base: float = 5.0,
             effects: dict[str, float] = EFFECTS, open_p: dict[str, float] | None = None) -> pd.DataFrame:
    """Decisions of users assigned to one group each, with a persistent per-user revenue level.

    The user effect (sd `user_sd`) makes a user's rows correlated: with rows_per_user = 8 and user_sd =
    noise_sd the design effect is 1 + 7 * 0.5 = 4.5, so a naive standard error is about half the right one.
    Per-push open probabilities vary by user (a Beta around `open_p[group]`), again correlating rows.
    """
    rng = np.random.default_rng(seed)
    open_p = open_p or {"holdout": 0.0, "bau": 0.06, "bandit": 0.08}
    groups = rng.choice(["holdout", "bau", "bandit"], size=n_users, p=[0.2, 0.4, 0.4])
    user_level = rng.normal(0.0, user_sd, n_users)
    concentration = 50.0
    user_open = np.array([rng.beta(open_p[g] * concentration, (1 - open_p[g]) * concentration)
                          if open_p[g] > 0 else 0.0 for g in groups])
    user_idx = np.repeat(np.arange(n_users), rows_per_user)
    group = groups[user_idx]
    n = user_idx.size
    pushes = np.where(group == "holdout", 0, rng.integers(1, 4, n))
    opens = rng.binomial(pushes, user_open[user_idx])
    effect = np.array([effects[g] for g in group])
    revenue = base + user_level[user_idx] + effect + rng.normal(0.0, noise_sd, n)
    return pd.DataFrame({
        "country": country,
        "user_id": user_idx + 1000,
        "campaign_id": [f"{country}-c{k % 4}" for k in range(n)],
        "group": group,
        "pushes_delivered": pushes,
        "opens": opens,
        "converted": rng.random(n) < 0.1 + 0.05 * (opens > 0),
        "net_revenue": revenue,
        "date": pd.Timestamp("2025-03-03") + pd.to_timedelta(np.tile(np.arange(rows_per_user) * 7, n_users), "D"),
    })


def covers(interval: Interval, truth: float) -> bool:
    return interval.ci_low <= truth <= interval.ci_high


def naive_difference_se(decisions: pd.DataFrame, treatment: str, control: str) -> float:
    """The textbook Welch standard error that treats every row as an independent observation."""
    a = decisions.loc[decisions["group"] == treatment, "net_revenue"]
    b = decisions.loc[decisions["group"] == control, "net_revenue"]
    return math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))


def tiny() -> pd.DataFrame:
    return pd.DataFrame({
        "country": ["MLA"] * 7,
        "user_id": [1, 1, 2, 3, 3, 4, 5],
        "campaign_id": ["a", "b", "a", "a", "b", "a", "a"],
        "group": ["holdout", "holdout", "holdout", "bandit", "bandit", "bandit", "bau"],
        "pushes_delivered": [0, 0, 0, 2, 1, 3, 2],
        "opens": [0, 0, 0, 1, 0, 2, 0],
        "converted": [False, True, False, True, False, True, False],
        "net_revenue": [0.0, 30.0, 0.0, 50.0, -5.0, 70.0, -10.0],
    })


# --------------------------------------------------------------------------------------------------------------
# group_summary


def test_group_summary_gives_exact_numbers_in_groups_order():
    summary = group_summary(tiny())
    assert list(summary["group"]) == ["holdout", "bau", "bandit"]
    rows = summary.set_index("group")
    assert rows.loc["holdout"].to_dict() == {
        "decisions": 3, "users": 2, "sends": 0, "opens": 0, "open_rate": 0.0, "conversions": 1,
        "net_revenue_per_user": 10.0, "net_revenue_total": 30.0}
    assert rows.loc["bau"].to_dict() == {
        "decisions": 1, "users": 1, "sends": 2, "opens": 0, "open_rate": 0.0, "conversions": 0,
        "net_revenue_per_user": -10.0, "net_revenue_total": -10.0}
    assert rows.loc["bandit"].to_dict() == {
        "decisions": 3, "users": 2, "sends": 6, "opens": 3, "open_rate": 0.5, "conversions": 2,
        "net_revenue_per_user": pytest.approx(115.0 / 3), "net_revenue_total": 115.0}


def test_group_summary_skips_absent_groups_and_handles_an_empty_frame():
    summary = group_summary(tiny().query("group != 'bau'"))
    assert list(summary["group"]) == ["holdout", "bandit"]
    empty = group_summary(tiny().iloc[:0])
    assert empty.empty and list(empty.columns)[:3] == ["group", "decisions", "users"]


def test_group_summary_refuses_to_add_up_two_currencies():
    mixed = tiny()
    mixed.loc[0, "country"] = "MLB"
    with pytest.raises(ValueError, match="MLA, MLB"):
        group_summary(mixed)


# --------------------------------------------------------------------------------------------------------------
# ate_vs_holdout and lift on net revenue


def test_ate_is_the_difference_in_means_with_the_cr1_cluster_standard_error():
    """Same numbers as a hand-written CR1 sandwich: estimate, SE and the t(G-1) interval."""
    decisions = simulate(7, n_users=120)
    interval = ate_vs_holdout(decisions, "bandit")
    rows = decisions[decisions["group"].isin(["bandit", "holdout"])]
    y = rows["net_revenue"].to_numpy()
    treated = (rows["group"] == "bandit").to_numpy()
    assert interval.estimate == pytest.approx(y[treated].mean() - y[~treated].mean(), rel=1e-12)
    # Users are assigned to one group, so the dummy's CR1 variance is the sum over each group of the squared
    # per-user residual sums over n_group^2, times G/(G-1) * (N-1)/(N-2).
    residual = np.where(treated, y - y[treated].mean(), y - y[~treated].mean())
    per_user = pd.Series(residual).groupby([rows["user_id"].to_numpy(), treated]).sum()
    variance = sum((per_user.xs(flag, level=1) ** 2).sum() / np.sum(treated == flag) ** 2
                   for flag in (True, False))
    n_users, n = rows["user_id"].nunique(), len(rows)
    variance *= n_users / (n_users - 1) * (n - 1) / (n - 2)
    assert interval.std_error == pytest.approx(math.sqrt(variance), rel=1e-9)
    half = student_t.ppf(0.975, n_users - 1) * interval.std_error
    expected = (interval.estimate - half, interval.estimate + half)
    assert (interval.ci_low, interval.ci_high) == pytest.approx(expected)
    assert interval.n == n
    assert interval.to_dict() == {"estimate": interval.estimate, "ci_low": interval.ci_low,
                                  "ci_high": interval.ci_high, "std_error": interval.std_error, "n": n}


def test_clustered_intervals_cover_the_true_effect_where_naive_ones_do_not():
    ate_hits = lift_hits = naive_hits = 0
    ratios = []
    for seed in SEEDS:
        decisions = simulate(seed)
        ate = ate_vs_holdout(decisions, "bandit")
        diff = lift(decisions, "bandit", "bau", metric="net_revenue")
        ate_hits += covers(ate, EFFECTS["bandit"])
        lift_hits += covers(diff, EFFECTS["bandit"] - EFFECTS["bau"])
        naive_se = naive_difference_se(decisions, "bandit", "bau")
        naive_hits += abs(diff.estimate - 1.5) <= 1.96 * naive_se
        ratios.append(diff.std_error / naive_se)
    assert 0.85 <= ate_hits / len(SEEDS) <= 1.0
    assert 0.85 <= lift_hits / len(SEEDS) <= 1.0
    # Design effect 4.5: the naive SE is ~sqrt(4.5) = 2.1 times too small and its "95%" interval covers ~65%.
    assert 1.8 < np.median(ratios) < 2.5
    assert naive_hits / len(SEEDS) < 0.8 < lift_hits / len(SEEDS)


def test_a_smaller_alpha_widens_the_interval_around_the_same_estimate():
    decisions = simulate(3)
    ninety, ninety_nine = lift(decisions, metric="net_revenue", alpha=0.10), lift(decisions, metric="net_revenue",
                                                                                  alpha=0.01)
    assert ninety.estimate == ninety_nine.estimate and ninety.std_error == ninety_nine.std_error
    assert ninety_nine.ci_low < ninety.ci_low < ninety.estimate < ninety.ci_high < ninety_nine.ci_high
    assert lift(decisions, metric="net_revenue_per_user") == lift(decisions, metric="net_revenue")


# --------------------------------------------------------------------------------------------------------------
# Open-rate lift


def test_open_rate_lift_recovers_known_per_push_probabilities():
    hits = 0
    for seed in SEEDS:
        estimate = lift(simulate(seed, n_users=600), metric="open_rate")
        hits += covers(estimate, 0.02)
    assert 0.85 <= hits / len(SEEDS) <= 1.0
    one = lift(simulate(0, n_users=3000, rows_per_user=4), metric="open_rate")
    assert one.estimate == pytest.approx(0.02, abs=0.006) and covers(one, 0.02)


def test_open_rate_lift_is_the_difference_of_ratios_with_the_delta_method_se():
    decisions = simulate(11, n_users=200)
    result = lift(decisions, metric="open_rate")
    pushed = decisions[decisions["pushes_delivered"] > 0]
    rate = {g: pushed.loc[pushed["group"] == g, "opens"].sum() / pushed.loc[pushed["group"] == g,
                                                                            "pushes_delivered"].sum()
            for g in ("bandit", "bau")}
    assert result.estimate == pytest.approx(rate["bandit"] - rate["bau"], rel=1e-10)
    # Linearization: user u of group g contributes sum_i (opens_i - rate_g * pushes_i) / sum_g(pushes).
    variance = 0.0
    for g in ("bandit", "bau"):
        part = pushed[pushed["group"] == g]
        influence = (part["opens"] - rate[g] * part["pushes_delivered"]).groupby(part["user_id"]).sum()
        variance += (influence ** 2).sum() / part["pushes_delivered"].sum() ** 2
    users = pushed.query("group in ['bandit', 'bau']")["user_id"].nunique()
    n = int((pushed["group"] != "holdout").sum())
    variance *= users / (users - 1) * (n - 1) / (n - 2)
    assert result.std_error == pytest.approx(math.sqrt(variance), rel=1e-9)
    assert result.n == n


def test_open_rate_ignores_rows_without_a_delivered_push():
    decisions = simulate(5, n_users=100)
    padded = pd.concat([decisions, decisions.query("group != 'holdout'").assign(pushes_delivered=0, opens=0)])
    assert lift(padded, metric="open_rate") == lift(decisions, metric="open_rate")


# --------------------------------------------------------------------------------------------------------------
# pooled_difference


def two_countries(seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Argentina in pesos and Brazil in reais, built from USD amounts with the same true effects."""
    fx = {"MLA": 0.001, "MLB": 0.2}
    mla = simulate(seed, country="MLA", n_users=250, base=20.0)
    mlb = simulate(seed + 1000, country="MLB", n_users=250, base=3.0)
    mla["net_revenue"] /= fx["MLA"]
    mlb["net_revenue"] /= fx["MLB"]
    return pd.concat([mla, mlb], ignore_index=True), fx


def test_pooled_difference_covers_the_usd_effects_and_uses_their_covariance():
    hits = {"treatment_ate": 0, "control_ate": 0, "difference": 0}
    truth = {"treatment_ate": 2.0, "control_ate": 0.5, "difference": 1.5}
    for seed in SEEDS:
        decisions, fx = two_countries(seed)
        result = pooled_difference(decisions, fx)
        for key in hits:
            hits[key] += covers(result[key], truth[key])
    for key, count in hits.items():
        assert 0.85 <= count / len(SEEDS) <= 1.0, key
    decisions, fx = two_countries(0)
    result = pooled_difference(decisions, fx)
    assert result["difference"].estimate == pytest.approx(
        result["treatment_ate"].estimate - result["control_ate"].estimate, rel=1e-10)
    # Both ATEs share the holdout rows: positively correlated, so the difference is tighter than independence says.
    independent = math.hypot(result["treatment_ate"].std_error, result["control_ate"].std_error)
    assert result["difference"].std_error < independent
    assert all(interval.n == len(decisions) for interval in result.values())


def test_pooled_difference_is_invariant_to_the_currency_unit():
    decisions, fx = two_countries(4)
    rescaled = decisions.copy()
    rescaled.loc[rescaled["country"] == "MLB", "net_revenue"] *= 1000.0
    result = pooled_difference(decisions, fx)
    again = pooled_difference(rescaled, {**fx, "MLB": fx["MLB"] / 1000.0})
    for key in result:
        assert again[key].to_dict() == pytest.approx(result[key].to_dict(), rel=1e-9)


def test_pooled_difference_in_one_country_matches_the_single_country_lift():
    decisions = simulate(9)
    pooled = pooled_difference(decisions, {"MLB": 0.2})["difference"]
    local = lift(decisions, metric="net_revenue")
    assert pooled.estimate == pytest.approx(0.2 * local.estimate, rel=1e-10)
    assert pooled.std_error == pytest.approx(0.2 * local.std_error, rel=0.02)  # only small-sample factors differ


def test_pooled_difference_clusters_by_country_and_user():
    """The same user_id in two countries is two people: clustering on user_id alone would merge them."""
    decisions, fx = two_countries(2)
    ids = {code: set(decisions.loc[decisions["country"] == code, "user_id"]) for code in ("MLA", "MLB")}
    assert ids["MLA"] & ids["MLB"]
    result = pooled_difference(decisions, fx)
    renamed = decisions.assign(user_id=decisions["user_id"] + np.where(decisions["country"] == "MLB", 10**6, 0))
    assert pooled_difference(renamed, fx)["difference"].std_error == pytest.approx(
        result["difference"].std_error, rel=1e-10)


def test_pooled_difference_names_the_country_without_a_rate():
    decisions, fx = two_countries(0)
    with pytest.raises(ValueError, match="MLB"):
        pooled_difference(decisions, {"MLA": fx["MLA"]})
    with pytest.raises(ValueError, match="MLA"):
        pooled_difference(decisions, {**fx, "MLA": 0.0})
    with pytest.raises(ValueError, match="opens"):
        pooled_difference(decisions, fx, metric="opens")


def test_pooled_difference_with_an_empty_group():
    decisions, fx = two_countries(1)
    no_bandit = pooled_difference(decisions.query("group != 'bandit'"), fx)
    assert not no_bandit["treatment_ate"].available and not no_bandit["difference"].available
    assert no_bandit["control_ate"].available
    no_holdout = pooled_difference(decisions.query("group != 'holdout'"), fx)
    assert not no_holdout["treatment_ate"].available and not no_holdout["control_ate"].available
    # Without the holdout the fixed effects are estimated from fewer rows; the contrast barely moves.
    full = pooled_difference(decisions, fx)["difference"]
    assert no_holdout["difference"].estimate == pytest.approx(full.estimate, abs=0.1 * full.std_error)
    nothing = pooled_difference(decisions.iloc[:0], fx)
    assert all(not interval.available and interval.n == 0 for interval in nothing.values())


# --------------------------------------------------------------------------------------------------------------
# Degenerate inputs and argument errors


def test_an_empty_group_gives_a_nan_interval_not_an_exception():
    decisions = simulate(0, n_users=60)
    interval = ate_vs_holdout(decisions.query("group != 'bandit'"), "bandit")
    assert not interval.available and all(math.isnan(v) for v in (interval.ci_low, interval.ci_high,
                                                                 interval.std_error))
    assert interval.n == int((decisions["group"] == "holdout").sum())
    assert not lift(decisions.query("group != 'bau'")).available
    assert not lift(decisions, "bandit", "holdout", metric="open_rate").available  # the holdout sends nothing
    assert not ate_vs_holdout(decisions.iloc[:0], "bau").available


def test_fewer_than_two_users_gives_a_nan_interval():
    one_user = tiny().assign(user_id=1)
    interval = ate_vs_holdout(one_user, "bandit")
    assert not interval.available and interval.n == 6
    assert ate_vs_holdout(tiny(), "bandit").available  # four users: estimable


@pytest.mark.parametrize("call, name", [
    (lambda d: ate_vs_holdout(d, "control"), "control"),
    (lambda d: lift(d, treatment="bandits"), "bandits"),
    (lambda d: lift(d, metric="click_rate"), "click_rate"),
    (lambda d: ate_vs_holdout(d, "bandit", metric="gmv"), "gmv"),
    (lambda d: ate_vs_holdout(d, "holdout"), "holdout"),
    (lambda d: lift(d, "bau", "bau"), "bau"),
])
def test_unknown_groups_and_metrics_are_named(call, name):
    with pytest.raises(ValueError, match=name):
        call(tiny())


@pytest.mark.parametrize("column", ["user_id", "group", "net_revenue", "opens", "pushes_delivered"])
def test_a_missing_column_is_named(column):
    decisions = tiny().drop(columns=column)
    with pytest.raises(ValueError, match=column):
        group_summary(decisions)


def test_other_input_errors_are_named():
    with pytest.raises(ValueError, match="opens"):
        lift(tiny().drop(columns="opens"), metric="open_rate")
    with pytest.raises(ValueError, match="country"):
        pooled_difference(tiny().drop(columns="country"), {"MLA": 1.0})
    with pytest.raises(ValueError, match="control_group"):
        group_summary(tiny().replace({"group": {"bau": "control_group"}}))
    with pytest.raises(ValueError, match="net_revenue"):
        ate_vs_holdout(tiny().assign(net_revenue=[None, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), "bandit")
    with pytest.raises(ValueError, match="MLA, MLB"):
        ate_vs_holdout(tiny().assign(country=["MLA"] * 6 + ["MLB"]), "bandit")
    # Non-monetary metrics may be pooled over countries: opens are opens everywhere.
    assert ate_vs_holdout(tiny().assign(country=["MLA"] * 6 + ["MLB"]), "bandit", metric="opens").available
    with pytest.raises(ValueError, match="alpha"):
        lift(tiny(), alpha=1.5)
