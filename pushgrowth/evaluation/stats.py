"""The statistics of the evaluation report: per-group summaries and treatment effects with honest intervals.

The experiment splits every campaign's eligible users into three groups (`domain.GROUPS`): ``holdout`` gets no
push, ``bau`` gets the plan the CRM team sent before the bandit, ``bandit`` gets the bandit's plan. The report
asks three questions, each answered here by a difference of means with a confidence interval:

- what does a group earn over not pushing at all (`ate_vs_holdout`);
- does the bandit beat business-as-usual, on open rate or on net revenue (`lift`);
- the same across countries, in USD (`pooled_difference`);
- and, for a comparison that is not (yet) above zero, whether it could have been: the smallest true difference
  the experiment detects with 80% power (`minimum_detectable_effect`), the power at an expected difference
  (`power_above_zero`), and the multiple of today's decisions that would detect it (`decisions_multiple`).

Why every standard error is clustered by user
    The input has one row per (user, campaign) decision, and one user appears in many rows (several campaigns,
    several weeks). Those rows are not independent: a user who buys a lot buys a lot in every row. Treating the
    rows as independent understates the variance roughly by the factor 1 + (m - 1) * rho (m rows per user, rho
    the within-user correlation), so naive intervals are too narrow and "significant" lifts appear from noise.
    We therefore fit the difference of means as an OLS (or WLS) regression on group dummies and use the
    cluster-robust sandwich covariance of statsmodels (``cov_type="cluster"``, clusters = users), with its
    default small-sample correction G/(G-1) * (N-1)/(N-K) and Student-t quantiles with G - 1 degrees of freedom
    (G = number of clusters), as Stata does. The tests show the naive interval under-covering where this one
    does not.

Why a ratio estimator for the open rate
    The open rate the CRM team reports is sum(opens) / sum(pushes), i.e. per push, not the mean of per-decision
    rates (which would give a one-push decision the same weight as a three-push one). Its linearization
    (delta method) is exactly a WLS of opens/pushes on the group dummy with weights = pushes: the WLS score of a
    row is opens - pushes * rate, the ratio's influence function. So the clustered WLS standard error is the
    delta-method standard error with clustering by user.

Why comparisons are made within randomization strata
    Groups are drawn within each campaign with the campaign's own shares: a pilot campaign gives the bandit
    10% of its users and BAU 80%, a campaign further in its rollout 45% and 45%. Pooling decisions over
    campaigns then compares groups of different campaign mix, and campaigns differ a lot in what their users
    buy (a loyalty programme's audience buys far more than an abandoned-cart one): BAU holds more of the
    pilots' users, so a plain difference of means mixes the groups' effect with the campaigns' levels
    (Simpson's paradox). Every comparison therefore takes `strata` (the summary passes `STRATA`: campaign
    and bandit share, the cells within which the shares are fixed) and absorbs them as fixed effects:
    y and the group dummies are demeaned within each stratum (weighted for the open rate) before the
    clustered fit, which by Frisch-Waugh-Lovell gives the coefficients of the regression with one dummy per
    stratum. The effect is then a precision-weighted average of within-campaign differences; a stratum
    holding only one of the compared groups adds nothing. The small-sample factor counts the group dummies,
    not the absorbed strata (a difference of (N - 1) / (N - K) in the variance: 0.02% with 80 strata and
    500,000 decisions).

Why currencies are guarded
    ``net_revenue`` is in local currency. Adding pesos to reais is meaningless, so any function that averages a
    monetary metric refuses a frame that holds several countries (ValueError) unless it converts to USD itself
    (`pooled_difference`).

Degenerate inputs never raise: a comparison whose group has no rows, that has fewer than two clusters, or
whose effect is not identified returns an `Interval` of NaNs (with the number of rows that were available),
so a report over many campaigns can show "n/a" for a thin one instead of failing. Wrong *arguments* (an
unknown group or metric, a missing column, a missing exchange rate) are caller bugs and raise ValueError
naming the offending value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pushgrowth.domain import GROUPS

FloatArray = NDArray[np.float64]
NAN = float("nan")

BASELINE = "holdout"
"""The group every average treatment effect (ATE) is measured against: it received no push."""

ROW_METRICS = ("net_revenue", "converted", "opens", "pushes_delivered")
"""Per-decision columns whose difference of means the functions estimate."""

METRIC_ALIASES = {"net_revenue_per_user": "net_revenue"}
"""Names the report uses for a metric, mapped to the column that holds it."""

MONETARY_METRICS = ("net_revenue",)
"""Metrics in local currency: never averaged across countries without converting them."""

RATIO_METRICS = {"open_rate": ("opens", "pushes_delivered")}
"""Metric name -> (numerator, denominator) columns of a ratio estimator sum(num) / sum(den)."""

STRATA = ("campaign_id", "share_bandit")
"""The decision log's randomization cells: within a campaign at one bandit share every user had the same
chance of each group (the holdout share stays fixed through a rollout)."""

SUMMARY_COLUMNS = ("group", "decisions", "users", "sends", "opens", "open_rate", "conversions",
                   "net_revenue_per_user", "net_revenue_total")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided confidence interval and cluster-robust standard error.

    `n` is the number of decision rows the estimate used (for a comparison, the rows of both groups; for
    `pooled_difference`, the rows of all three groups). All floats are NaN when the estimate is not available
    (an empty group, fewer than two users, an effect the data cannot identify); `n` is then the rows there were.
    """

    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    n: int

    @classmethod
    def unavailable(cls, n: int = 0) -> Interval:
        """The NaN interval of a comparison that cannot be estimated from `n` rows."""
        return cls(NAN, NAN, NAN, NAN, int(n))

    @property
    def available(self) -> bool:
        """False for the NaN interval of a comparison that could not be estimated."""
        return math.isfinite(self.estimate)

    def to_dict(self) -> dict[str, float | int]:
        """A plain dict ({"estimate", "ci_low", "ci_high", "std_error", "n"}), e.g. for a JSON report."""
        return asdict(self)


# --------------------------------------------------------------------------------------------------------------
# Argument and frame validation


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _check_group(name: str, role: str = "group") -> None:
    if name not in GROUPS:
        raise ValueError(f"unknown {role} {name!r}; known groups: {', '.join(GROUPS)}")


def _row_metric(metric: str) -> str:
    """The column that holds a per-decision metric, or a ValueError naming the unknown metric."""
    column = METRIC_ALIASES.get(metric, metric)
    if column not in ROW_METRICS:
        known = (*ROW_METRICS, *METRIC_ALIASES)
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(known)}")
    return column


def _validate(decisions: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise ValueError unless the frame has these columns, no nulls in them and only known group labels.

    Nulls are refused rather than dropped: a null outcome usually means an immature decision, and silently
    dropping it would bias the comparison towards whichever group matured first.
    """
    if not isinstance(decisions, pd.DataFrame):
        raise TypeError(f"decisions must be a pandas DataFrame, got {type(decisions).__name__}")
    columns = list(dict.fromkeys(["group", "user_id", *columns]))
    missing = [c for c in columns if c not in decisions.columns]
    if missing:
        raise ValueError(f"decisions lacks required column(s): {', '.join(missing)}")
    for column in columns:
        nulls = int(decisions[column].isna().sum())
        if nulls:
            raise ValueError(f"column {column!r} has {nulls} null value(s); drop or fill them first")
    unknown = sorted(set(decisions["group"].astype(str).unique()) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown group label(s) in decisions: {', '.join(unknown)}; known: {', '.join(GROUPS)}")


def _single_currency(decisions: pd.DataFrame, column: str) -> None:
    """Refuse to average a local-currency column over rows of several countries."""
    if column in MONETARY_METRICS and "country" in decisions.columns:
        countries = sorted(decisions["country"].dropna().astype(str).unique())
        if len(countries) > 1:
            raise ValueError(
                f"{column} is in local currency and decisions hold several countries ({', '.join(countries)}); "
                "pass one country at a time or use pooled_difference with exchange rates")


def _numeric(decisions: pd.DataFrame, column: str) -> FloatArray:
    try:
        values = np.asarray(decisions[column], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"column {column!r} must be numeric") from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {column!r} has infinite values")
    return values


# --------------------------------------------------------------------------------------------------------------
# Cluster-robust regression


@dataclass(frozen=True)
class _Fit:
    params: FloatArray   # coefficients of the independent columns kept
    cov: FloatArray      # their cluster-robust covariance
    basis: FloatArray    # B with x = x[:, kept] @ B: maps a contrast on all columns to one on the kept columns
    df: int              # degrees of freedom of the t quantile: clusters - 1


def _cluster_fit(y: FloatArray, x: FloatArray, clusters: NDArray[np.int64],
                 weights: FloatArray | None = None) -> _Fit | None:
    """OLS (WLS with `weights`) of y on x with a cluster-robust covariance; None when it cannot be estimated.

    A rank-deficient x (a group with no rows, a baseline absent so that the two dummies add up to the
    intercept) is fitted on a maximal set of independent columns, so that the small-sample factor counts the
    parameters actually estimated; `_contrast` then maps a contrast on the full x onto them, and reports NaN
    for a contrast the data do not identify.
    """
    n = x.shape[0]
    n_clusters = int(np.unique(clusters).size)
    if n_clusters < 2 or n == 0:
        return None
    import scipy.linalg  # scipy loads on first use: the definitions import without it

    _, r, pivots = scipy.linalg.qr(x, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    rank = int(np.sum(diagonal > diagonal.max(initial=0.0) * max(x.shape) * np.finfo(float).eps))
    if rank == 0 or n <= rank:
        return None  # no residual degrees of freedom: the sandwich's small-sample factor is undefined
    kept = np.sort(pivots[:rank])
    x_kept = x[:, kept]
    basis = np.linalg.lstsq(x_kept, x, rcond=None)[0]
    from statsmodels.regression.linear_model import OLS, WLS  # on first use: statsmodels.api costs ~1.4 s

    model = OLS(y, x_kept) if weights is None else WLS(y, x_kept, weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = model.fit(cov_type="cluster", cov_kwds={"groups": clusters}, use_t=True)
    return _Fit(np.asarray(result.params, dtype=np.float64), np.asarray(result.cov_params(), dtype=np.float64),
                basis, n_clusters - 1)


def _contrast(fit: _Fit | None, contrast: FloatArray, alpha: float, n: int) -> Interval:
    """The interval of contrast @ beta; NaN when the fit failed or the data do not identify the contrast.

    c @ beta is identified iff c = B.T @ c_kept for some c_kept (c lies in the row space of x); it then
    equals c_kept @ params, whatever the redundant columns' coefficients.
    """
    if fit is None:
        return Interval.unavailable(n)
    kept_contrast = np.linalg.lstsq(fit.basis.T, contrast, rcond=None)[0]
    if np.linalg.norm(fit.basis.T @ kept_contrast - contrast) > 1e-8 * max(np.linalg.norm(contrast), 1.0):
        return Interval.unavailable(n)
    estimate = float(kept_contrast @ fit.params)
    variance = float(kept_contrast @ fit.cov @ kept_contrast)
    if not (math.isfinite(estimate) and math.isfinite(variance)):
        return Interval.unavailable(n)
    std_error = math.sqrt(max(variance, 0.0))
    from scipy.stats import t as student_t

    half = float(student_t.ppf(1.0 - alpha / 2.0, fit.df)) * std_error
    return Interval(estimate, estimate - half, estimate + half, std_error, n)


def _clusters(decisions: pd.DataFrame, keys: list[str]) -> NDArray[np.int64]:
    return decisions.groupby(keys, sort=False).ngroup().to_numpy(dtype=np.int64)


def _strata(strata: Iterable[str] | None) -> list[str]:
    """The strata columns as a list; ValueError for a bare string (a column name split into letters)."""
    if strata is None:
        return []
    if isinstance(strata, str):
        raise ValueError(f"strata must be a sequence of column names, got the string {strata!r}")
    return list(strata)


def _absorb(y: FloatArray, dummies: list[FloatArray], codes: NDArray[np.int64],
            weights: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """y and the group dummies minus their (weighted) means within each stratum: the strata's fixed effects
    absorbed (Frisch-Waugh-Lovell). A dummy constant within its stratum becomes exactly 0, so a stratum
    holding one group only drops out and a contrast no stratum identifies stays unidentified."""
    w = np.ones(len(codes)) if weights is None else weights
    total = np.bincount(codes, weights=w)
    total = np.where(total > 0, total, 1.0)

    def within(column: FloatArray) -> FloatArray:
        return column - (np.bincount(codes, weights=w * column) / total)[codes]

    x = np.column_stack([within(d) for d in dummies])
    return within(y), np.where(np.abs(x) < 1e-9, 0.0, x)


def _two_group_difference(rows: pd.DataFrame, treatment: str, control: str, y: FloatArray, alpha: float,
                          weights: FloatArray | None = None, strata: list[str] | None = None) -> Interval:
    """(Weighted) mean of y in `treatment` minus that in `control`, clustered by user, from the rows given;
    within `strata` (fixed effects) when given."""
    n = len(rows)
    is_treatment = (rows["group"] == treatment).to_numpy()
    if not is_treatment.any() or is_treatment.all():
        return Interval.unavailable(n)
    if strata:
        y_within, x = _absorb(y, [is_treatment.astype(np.float64)], _clusters(rows, strata), weights)
        fit = _cluster_fit(y_within, x, _clusters(rows, ["user_id"]), weights)
        return _contrast(fit, np.array([1.0]), alpha, n)
    x = np.column_stack([np.ones(n), is_treatment.astype(np.float64)])
    fit = _cluster_fit(y, x, _clusters(rows, ["user_id"]), weights)
    return _contrast(fit, np.array([0.0, 1.0]), alpha, n)


def _difference_in_means(decisions: pd.DataFrame, treatment: str, control: str, column: str,
                         alpha: float, strata: list[str] | None = None) -> Interval:
    rows = decisions[decisions["group"].isin([treatment, control])]
    return _two_group_difference(rows, treatment, control, _numeric(rows, column), alpha, strata=strata)


# --------------------------------------------------------------------------------------------------------------
# Public API


def group_summary(decisions: pd.DataFrame) -> pd.DataFrame:
    """One row per group present, in `GROUPS` order, with the report's descriptive numbers.

    Columns: ``group``, ``decisions`` (rows), ``users`` (distinct user_id), ``sends`` (sum of pushes_delivered),
    ``opens``, ``open_rate`` (opens / sends, the per-push rate; 0 when nothing was sent, as for the holdout),
    ``conversions`` (decisions with converted true), ``net_revenue_per_user`` (mean net_revenue per decision
    row; the name is the report's), ``net_revenue_total``. Net revenue is in local currency, so a frame with
    several countries raises ValueError.
    """
    needed = ("pushes_delivered", "opens", "converted", "net_revenue")
    _validate(decisions, needed)
    _single_currency(decisions, "net_revenue")
    rows = []
    for group in GROUPS:
        part = decisions[decisions["group"] == group]
        if part.empty:
            continue
        sends = int(_numeric(part, "pushes_delivered").sum())
        opens = int(_numeric(part, "opens").sum())
        revenue = _numeric(part, "net_revenue")
        rows.append({
            "group": group,
            "decisions": len(part),
            "users": int(part["user_id"].nunique()),
            "sends": sends,
            "opens": opens,
            "open_rate": opens / sends if sends > 0 else 0.0,
            "conversions": int(_numeric(part, "converted").sum()),
            "net_revenue_per_user": float(revenue.mean()),
            "net_revenue_total": float(revenue.sum()),
        })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def ate_vs_holdout(decisions: pd.DataFrame, group: str, metric: str = "net_revenue",
                   alpha: float = 0.05, strata: Iterable[str] | None = None) -> Interval:
    """Average treatment effect of `group` over the holdout: mean `metric` per decision, group minus holdout.

    Because the holdout got no push, this is what the group's pushes (and coupons, whose cost net_revenue
    already subtracts) add per decision. The standard error is clustered by user. With `strata` (columns, e.g.
    `STRATA`) the difference is taken within them (see the module docstring). NaN interval when either group
    has no rows (in a common stratum) or there are fewer than two users.
    """
    _check_alpha(alpha)
    _check_group(group)
    if group == BASELINE:
        raise ValueError(f"group must differ from the baseline {BASELINE!r}")
    column = _row_metric(metric)
    keys = _strata(strata)
    _validate(decisions, [column, *keys])
    _single_currency(decisions, column)
    return _difference_in_means(decisions, group, BASELINE, column, alpha, keys)


def lift(decisions: pd.DataFrame, treatment: str = "bandit", control: str = "bau", metric: str = "open_rate",
         alpha: float = 0.05, strata: Iterable[str] | None = None) -> Interval:
    """Treatment minus control on `metric`, with a standard error clustered by user.

    ``open_rate``: difference of the per-push rates sum(opens) / sum(pushes_delivered), over rows with at least
    one push delivered; its standard error is the delta method's, computed as a WLS of opens/pushes on the
    group dummy weighted by pushes (see the module docstring). Any per-decision metric (``net_revenue``, alias
    ``net_revenue_per_user``, ``converted``, ``opens``, ``pushes_delivered``): difference of means per decision.
    NaN interval when a group has no usable rows (e.g. the holdout for open_rate) or fewer than two users.
    With `strata` the difference is taken within them (for the open rate, per-push weighted within each
    stratum), see the module docstring.
    """
    _check_alpha(alpha)
    _check_group(treatment, "treatment")
    _check_group(control, "control")
    if treatment == control:
        raise ValueError(f"treatment and control are the same group {treatment!r}")
    keys = _strata(strata)
    if metric in RATIO_METRICS:
        numerator, denominator = RATIO_METRICS[metric]
        _validate(decisions, [numerator, denominator, *keys])
        rows = decisions[decisions["group"].isin([treatment, control])]
        rows = rows[_numeric(rows, denominator) > 0]
        pushes = _numeric(rows, denominator)
        return _two_group_difference(rows, treatment, control, _numeric(rows, numerator) / pushes, alpha,
                                     weights=pushes, strata=keys)
    try:
        column = _row_metric(metric)
    except ValueError:
        known = (*RATIO_METRICS, *ROW_METRICS, *METRIC_ALIASES)
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(known)}") from None
    _validate(decisions, [column, *keys])
    _single_currency(decisions, column)
    return _difference_in_means(decisions, treatment, control, column, alpha, keys)


def pooled_difference(decisions: pd.DataFrame, fx_to_usd: Mapping[str, float], treatment: str = "bandit",
                      control: str = "bau", baseline: str = BASELINE, metric: str = "net_revenue",
                      alpha: float = 0.05, strata: Iterable[str] | None = None) -> dict[str, Interval]:
    """Both groups' effects over the baseline, and their difference, pooled over countries in USD.

    One regression of metric x fx_to_usd[country] on a treatment dummy, a control dummy and country fixed
    effects, clustered by (country, user_id). Returns ``{"treatment_ate", "control_ate", "difference"}``.

    - One regression rather than two separate ATEs: both ATEs share the baseline rows, so their estimates are
      positively correlated; the difference's standard error sqrt(V_t + V_c - 2 C_tc) uses that covariance and
      is narrower (and right) where subtracting two independent intervals would be wrong.
    - Country fixed effects: countries differ a lot in revenue per user and may allocate different shares to
      each group; without them the pooled contrast would partly compare countries. With them, each effect is a
      precision-weighted average of within-country effects (the plain pooled mean when shares are equal).
    - Clusters are (country, user_id) because user ids are only unique within a country.
    - With `strata`, the fixed effects are (country, *strata) instead of country: within campaigns (see the
      module docstring).

    The difference needs only treatment and control rows, so it stays available without a baseline; an ATE
    whose group (or baseline) has no rows is a NaN interval. ValueError when fx_to_usd lacks a country present
    in the compared rows (naming it) or holds a non-positive rate, or when `metric` is not monetary.
    """
    _check_alpha(alpha)
    for name, role in ((treatment, "treatment"), (control, "control"), (baseline, "baseline")):
        _check_group(name, role)
    if len({treatment, control, baseline}) < 3:
        raise ValueError(f"treatment, control and baseline must be three different groups, got "
                         f"{treatment!r}, {control!r}, {baseline!r}")
    column = METRIC_ALIASES.get(metric, metric)
    if column not in MONETARY_METRICS:
        raise ValueError(f"unknown metric {metric!r} for a USD pooled difference; known: "
                         f"{', '.join((*MONETARY_METRICS, *METRIC_ALIASES))}")
    keys = _strata(strata)
    _validate(decisions, ["country", column, *keys])
    rows = decisions[decisions["group"].isin([treatment, control, baseline])]
    countries = rows["country"].astype(str)
    present = sorted(countries.unique())
    missing = [c for c in present if c not in fx_to_usd]
    if missing:
        raise ValueError(f"fx_to_usd has no rate for country {', '.join(missing)}")
    for code in present:
        rate = float(fx_to_usd[code])
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"fx_to_usd rate for country {code} must be positive and finite, got {rate}")

    n = len(rows)
    result = {key: Interval.unavailable(n) for key in ("treatment_ate", "control_ate", "difference")}
    if n == 0:
        return result
    y = _numeric(rows, column) * countries.map({c: float(fx_to_usd[c]) for c in present}).to_numpy(np.float64)
    group = rows["group"].to_numpy()
    dummies = [(group == treatment).astype(np.float64), (group == control).astype(np.float64)]
    clusters = _clusters(rows.assign(country=countries), ["country", "user_id"])
    if keys:
        y_within, x = _absorb(y, dummies, _clusters(rows.assign(country=countries), ["country", *keys]))
        fit = _cluster_fit(y_within, x, clusters)
        unit = np.eye(2)
        contrasts = {"treatment_ate": unit[0], "control_ate": unit[1], "difference": unit[0] - unit[1]}
    else:
        country_dummies = [(countries == c).to_numpy(np.float64) for c in present[1:]]
        x = np.column_stack([np.ones(n), *dummies, *country_dummies])
        fit = _cluster_fit(y, x, clusters)
        unit = np.eye(x.shape[1])
        contrasts = {"treatment_ate": unit[1], "control_ate": unit[2], "difference": unit[1] - unit[2]}
    return {key: _contrast(fit, c, alpha, n) for key, c in contrasts.items()}


# --------------------------------------------------------------------------------------------------------------
# Sensitivity: what the experiment can detect

POWER = 0.8
"""The conventional power of a sample-size calculation: a true difference at the MDE is found 4 times in 5."""


def _check_power(power: float) -> None:
    if isinstance(power, bool) or not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power!r}")


def _check_std_error(std_error: float) -> bool:
    """False for an unavailable (NaN) standard error; ValueError for a negative or infinite one."""
    if math.isnan(std_error):
        return False
    if not math.isfinite(std_error) or std_error < 0:
        raise ValueError(f"std_error must be a non-negative finite number (or NaN when unavailable), got "
                         f"{std_error!r}")
    return True


def minimum_detectable_effect(std_error: float, alpha: float = 0.05, power: float = POWER) -> float:
    """The smallest true difference whose `1 - alpha` interval lies above zero with probability `power`.

    With the estimate normal around the truth with this standard error, the interval's lower bound is above zero
    when the estimate exceeds z(1 - alpha/2) x SE, which a true difference of (z(1 - alpha/2) + z(power)) x SE
    does with probability `power`: 2.80 standard errors at alpha 0.05 and power 0.8. Read a comparison whose
    interval includes zero against it: "no difference larger than the MDE" is what the data say, not "no
    difference". NaN when the standard error is. The clustered standard error of the comparison is the one to
    pass, so the MDE accounts for users appearing in many decisions.
    """
    _check_alpha(alpha)
    _check_power(power)
    if not _check_std_error(std_error):
        return NAN
    from scipy.stats import norm

    return float((norm.ppf(1.0 - alpha / 2.0) + norm.ppf(power)) * std_error)


def power_above_zero(effect: float, std_error: float, alpha: float = 0.05) -> float:
    """Probability that the `1 - alpha` interval of an estimate lies above zero when the true difference is
    `effect`: Phi(effect / SE - z(1 - alpha/2)). NaN when the standard error or the effect is unavailable; a zero
    standard error gives 1 or 0."""
    _check_alpha(alpha)
    if not _check_std_error(std_error) or not math.isfinite(effect):
        return NAN
    from scipy.stats import norm

    z = norm.ppf(1.0 - alpha / 2.0)
    if std_error == 0:
        return 1.0 if effect > 0 else 0.0
    return float(norm.cdf(effect / std_error - z))


def exaggeration_ratio(effect: float, std_error: float, alpha: float = 0.05) -> float:
    """How much an estimate shown above zero overstates a true `effect` on average: E[estimate | its `1 - alpha`
    interval lies above zero] / effect, the type M error of Gelman and Carlin (2014, "Beyond power
    calculations"), for a normal estimate: 1 + (SE / effect) x phi(a) / (1 - Phi(a)) with a = z(1 - alpha/2) -
    effect / SE. Close to 1 for a well-powered comparison, about 1.8 at 30% power: a lucky draw is what gets a
    weak design above zero. NaN for an effect that is not positive or an unavailable standard error; 1 for a zero
    standard error."""
    _check_alpha(alpha)
    if not _check_std_error(std_error) or not math.isfinite(effect) or effect <= 0:
        return NAN
    if std_error == 0:
        return 1.0
    from scipy.stats import norm

    a = norm.ppf(1.0 - alpha / 2.0) - effect / std_error
    return float(1.0 + std_error / effect * math.exp(norm.logpdf(a) - norm.logsf(a)))


def decisions_multiple(effect: float, std_error: float, alpha: float = 0.05, power: float = POWER) -> float:
    """How many times today's decisions a comparison needs to detect a true `effect` with `power`.

    The standard error of a difference of means falls as one over the square root of the sample when the design
    stays the same (the same groups' shares, the same decisions per user), so the multiple is
    (MDE / effect)^2; below 1 the experiment already has the power. Inf for an effect that is not positive (no
    sample shows it above zero), NaN when the standard error or the effect is unavailable.
    """
    mde = minimum_detectable_effect(std_error, alpha, power)
    if math.isnan(mde) or not math.isfinite(effect):
        return NAN
    if effect <= 0:
        return math.inf
    return float((mde / effect) ** 2)


def sensitivity(interval: Interval, expected: float | None = None, alpha: float = 0.05,
                power_target: float = POWER) -> dict[str, float | None]:
    """The report's sensitivity of one comparison: its MDE at `power_target`, and, given the difference the
    comparison is expected to show (in simulation, the oracle's), the power to show it above zero and the
    multiple of today's decisions (and the decisions) it would take.

    Keys: ``mde``, ``power_target``, ``expected``, ``power``, ``exaggeration`` (`exaggeration_ratio`: how much
    an estimate shown above zero overstates the expected difference on average), ``decisions_multiple``,
    ``decisions_needed``; None where unavailable (no expectation, an unavailable interval, an expected difference
    that is not positive, a multiple that is infinite).
    """
    se = interval.std_error
    out: dict[str, float | None] = {"mde": minimum_detectable_effect(se, alpha, power_target),
                                    "power_target": power_target, "expected": None, "power": None,
                                    "exaggeration": None, "decisions_multiple": None, "decisions_needed": None}
    if expected is not None and math.isfinite(expected):
        multiple = decisions_multiple(expected, se, alpha, power_target)
        out.update(expected=float(expected), power=power_above_zero(expected, se, alpha),
                   exaggeration=exaggeration_ratio(expected, se, alpha),
                   decisions_multiple=multiple if math.isfinite(multiple) else None,
                   decisions_needed=math.ceil(multiple * interval.n) if math.isfinite(multiple) else None)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}
