"""Sizing an experiment before running it: how many users for how many days a comparison of two groups needs.

The report compares groups per decision, with standard errors clustered by user: a user decided on many times
counts as one independent unit, not as many. The variance of a group's mean per decision therefore depends on
both the decisions and the users. With an exchangeable model of a group's outcomes (each decision's outcome
varies with variance sigma^2 around its campaign's mean, and two decisions of the same user are correlated by
rho, the intra-user correlation), a group of U users decided on n times each over the experiment has

    Var(mean) = sigma^2 * (1 + (n - 1) * rho) / (U * n)          (Kish's design effect 1 + (n - 1) rho)

and n grows with the days: n = r * days, r being the decisions per user and day. sigma^2, rho and r are
estimated from what the decision log has observed so far, per group:

- sigma^2: the mean squared residual of the outcome around its (campaign) mean, the strata the report compares
  within;
- rho, the moment estimator: the residuals' sum R_u over a user's n_u decisions has E[R_u^2] =
  sigma^2 (n_u + rho n_u (n_u - 1)), so rho = sum(R_u^2 - sigma^2 n_u) / (sigma^2 sum n_u (n_u - 1)), clipped
  to [0, 1] (a negative correlation would promise more than independent decisions give);
- r: decisions / (users x observed days).

Users are decided on unevenly (n varies), and those with more decisions weigh more: the design effect uses
E[n^2] / E[n]^2 (`spread`) as observed. Groups are drawn per user and campaign, so most users are in both
groups (for different campaigns): a user's own level then enters both means and cancels in their difference.
Their covariance is Cov = U_both kappa sigma_t sigma_c / (U_t U_c) (times how much more than average the users
in both are decided on), kappa being the correlation of a user's decisions across the groups, estimated like
rho. The difference of two groups (bandit minus BAU, the ATE difference against a holdout both share) then has
Var = Var_treatment + Var_control - 2 Cov, each group's users a share of the experiment's, and the minimum
detectable effect at a significance level alpha and power 1 - beta is (z_{1 - alpha/2} + z_{1 - beta}) * SE.
At the observed users and days this is exactly the user-clustered variance of the difference of the groups'
means per decision within campaigns. Since Var falls as 1 / U for given days, the users a given effect needs
follow in closed form.

What this leaves out, and says: decisions per user assumed to grow in proportion to the days (caps and
campaign calendars make them grow more slowly, which makes the estimate optimistic for long runs), outcomes
whose level drifts over the weeks (a learning bandit's does), and the strata's fixed effects (they take out a
little more variance than the per-campaign means here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from pushgrowth.evaluation import stats

METRICS = ("net_revenue", "converted", "opens")
"""Per-decision outcomes a plan can be sized on (the open rate is a ratio of two of them: size on `opens`)."""


@dataclass(frozen=True)
class GroupVariance:
    """What one group's observed decisions say about the variance of its mean per decision."""

    group: str
    users: int
    decisions: int
    days: int
    mean: float
    sigma2: float
    """Variance of one decision's outcome around its campaign's mean."""
    rho: float
    """Correlation of two decisions of the same user (0: independent; 1: a user always gets the same outcome)."""
    spread: float = 1.0
    """E[n^2] / E[n]^2 of the decisions per user: 1 when every user has as many; users with more decisions weigh
    more in a mean per decision, and their correlated decisions with them."""

    @property
    def rate(self) -> float:
        """Decisions per user and day."""
        return self.decisions / (self.users * self.days) if self.users and self.days else math.nan

    def mean_variance(self, users: float, days: float, rate: float | None = None) -> float:
        """Var of the group's mean per decision with `users` users over `days` days (at `rate` decisions per
        user and day, default the observed rate)."""
        n = max((self.rate if rate is None else rate) * days, 1.0)
        return self.sigma2 * (1.0 + (self.spread * n - 1.0) * self.rho) / (users * n)


def _residuals(decisions: pd.DataFrame, group: str, metric: str, strata: Sequence[str]
               ) -> tuple[pd.DataFrame, pd.Series, float]:
    """The group's rows, each decision's residual around its stratum's mean, and the group's days."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} to size an experiment on; known: {', '.join(METRICS)}")
    missing = [c for c in ("group", "user_id", "date", metric, *strata) if c not in decisions.columns]
    if missing:
        raise ValueError(f"the decisions lack the column(s) {', '.join(missing)}")
    rows = decisions[decisions["group"] == group]
    y = pd.to_numeric(rows[metric], errors="coerce").astype(np.float64)
    if y.isna().any():
        raise ValueError(f"{metric}: {int(y.isna().sum())} decisions of {group} have no value")
    keys = list(strata)
    residual = y - (y.groupby([rows[k] for k in keys]).transform("mean") if keys else y.mean())
    return rows, residual, float(y.mean()) if len(y) else math.nan


def _per_user(rows: pd.DataFrame, residual: pd.Series) -> pd.DataFrame:
    """Per user: the sum of the residuals (`r`) and the decisions (`n`)."""
    return pd.DataFrame({"user": rows["user_id"].to_numpy(), "r": residual.to_numpy()}).groupby("user")["r"].agg(
        r="sum", n="size")


def group_variance(decisions: pd.DataFrame, group: str, metric: str = "net_revenue",
                   strata: Sequence[str] = ("campaign_id",)) -> GroupVariance:
    """sigma^2, rho and the decision rate of `group` on `metric` (see the module docstring)."""
    rows, residual, mean = _residuals(decisions, group, metric, strata)
    days = int(pd.Series(decisions["date"]).nunique())
    if len(rows) < 2:
        return GroupVariance(group, int(rows["user_id"].nunique()), len(rows), days, math.nan, math.nan, math.nan)
    sigma2 = float(np.mean(residual.to_numpy() ** 2))
    users = _per_user(rows, residual)
    sums, counts = users["r"].to_numpy(), users["n"].to_numpy(np.float64)
    pairs = float(np.sum(counts * (counts - 1.0)))
    rho = 0.0
    if sigma2 > 0 and pairs > 0:
        rho = float(np.clip(np.sum(sums ** 2 - sigma2 * counts) / (sigma2 * pairs), 0.0, 1.0))
    spread = float(np.mean(counts ** 2) / np.mean(counts) ** 2)
    return GroupVariance(group, len(counts), len(rows), days, mean, sigma2, rho, spread)


@dataclass(frozen=True)
class Overlap:
    """Users decided on in both groups (for different campaigns: groups are drawn per user and campaign)."""

    users: int
    share: float
    """Of the smaller group's users."""
    kappa: float
    """Correlation of a user's decision in one group with the same user's decision in the other: a user's own
    level is in both groups' means, and cancels in their difference."""
    product: float = 1.0
    """E[n_t n_c] / (mean n_t x mean n_c) over the users in both: how much more than average they are decided
    on."""


def overlap(decisions: pd.DataFrame, treatment: GroupVariance, control: GroupVariance, metric: str = "net_revenue",
            strata: Sequence[str] = ("campaign_id",)) -> Overlap:
    """The users in both groups and the cross-group correlation kappa: the moment estimator of
    E[R_t R_c] = kappa sigma_t sigma_c n_t n_c over the users in both (R: a user's residual sum in a group),
    clipped to [-1, 1]."""
    per = [_per_user(*_residuals(decisions, g.group, metric, strata)[:2]) for g in (treatment, control)]
    both = per[0].merge(per[1], left_index=True, right_index=True, suffixes=("_t", "_c"))
    smaller = min(treatment.users, control.users)
    kappa, product = 0.0, 1.0
    scale = math.sqrt(treatment.sigma2 * control.sigma2) * float(np.sum(both["n_t"] * both["n_c"]))
    if len(both) and scale > 0:
        kappa = float(np.clip(np.sum(both["r_t"] * both["r_c"]) / scale, -1.0, 1.0))
        mean_t, mean_c = treatment.decisions / treatment.users, control.decisions / control.users
        product = float(np.mean(both["n_t"] * both["n_c"]) / (mean_t * mean_c))
    return Overlap(len(both), len(both) / smaller if smaller else 0.0, kappa, product)


@dataclass(frozen=True)
class PlanRow:
    """One planned duration: the MDE with the planned users, and the users a given effect needs."""

    days: int
    users: int
    decisions: float
    std_error: float
    mde: float
    effect: float | None
    users_needed: int | None
    """Users for the effect to be detected with the power (None without an effect, or for one not positive)."""
    power: float | None
    """The power to show `effect` above zero with the planned users."""


@dataclass(frozen=True)
class PowerPlan:
    metric: str
    treatment: GroupVariance
    control: GroupVariance
    overlap: Overlap
    shares: dict[str, float]
    """Each compared group's share of the experiment's users: the users with a decision in the group. Groups are
    drawn per (user, campaign), so a user eligible for several campaigns can be in both and the shares can add up
    to more than 1 (see `Overlap`)."""
    alpha: float
    power: float
    rows: list[PlanRow]

    def to_dict(self) -> dict:
        return {"metric": self.metric, "alpha": self.alpha, "power": self.power, "shares": self.shares,
                "treatment": {**asdict(self.treatment), "rate": self.treatment.rate},
                "control": {**asdict(self.control), "rate": self.control.rate},
                "overlap": asdict(self.overlap),
                "plans": [asdict(r) for r in self.rows]}


def plan(decisions: pd.DataFrame, days: Sequence[int], metric: str = "net_revenue", effect: float | None = None,
         users: int | None = None, bandit_share: float | None = None, treatment: str = "bandit",
         control: str = "bau", alpha: float = 0.05, power: float = stats.POWER) -> PowerPlan:
    """Size a `treatment` - `control` comparison for each of `days` from the observed `decisions`.

    `users`: the experiment's users (all groups, holdout included; default: the users the decisions reached).
    Each group keeps its observed share of them, unless `bandit_share` says which share of the pushed (not held
    out) decisions the bandit gets, as in a pilot: each group's decisions then scale by its new share over its
    observed one. `effect`: the difference to detect, in the metric's unit per decision; with it, each row says
    the users it needs and the power the planned users have.
    """
    if not len(decisions):
        raise ValueError("no decisions observed yet: run the loop for a few days first")
    if not days or any(int(d) < 1 for d in days):
        raise ValueError(f"days must be whole days of at least 1, got {list(days)}")
    if users is not None and users < 2:
        raise ValueError(f"users must be at least 2, got {users}")
    if bandit_share is not None and not 0.0 < bandit_share < 1.0:
        raise ValueError(f"bandit_share must be strictly between 0 and 1, got {bandit_share}")
    t, c = group_variance(decisions, treatment, metric), group_variance(decisions, control, metric)
    for g in (t, c):
        if not math.isfinite(g.sigma2):
            raise ValueError(f"group {g.group!r} has {g.decisions} decisions: too few to estimate a variance")
    both = overlap(decisions, t, c, metric)
    reached = int(decisions["user_id"].nunique())
    users = users or reached
    scale = {t.group: 1.0, c.group: 1.0}
    if bandit_share is not None:  # each group's decisions scale by its new share of the pushed decisions
        observed = t.decisions / (t.decisions + c.decisions)
        scale = {t.group: bandit_share / observed, c.group: (1.0 - bandit_share) / (1.0 - observed)}
    # a group's decisions are its users' (as many users as the share of them it reaches, at most all of them)
    # times their decisions per day: what a larger share adds beyond every user goes to decisions per user
    wanted = {g.group: users * g.users / reached * scale[g.group] for g in (t, c)}
    members = {g: min(n, float(users)) for g, n in wanted.items()}
    rates = {g.group: g.rate * wanted[g.group] / members[g.group] for g in (t, c)}
    shares = {g: n / users for g, n in members.items()}
    # Cov(mean_t, mean_c) = U_both kappa product sigma_t sigma_c / (U_t U_c), whatever the days (see `Overlap`)
    in_both = both.share * min(members.values())
    covariance = (in_both * both.kappa * both.product * math.sqrt(t.sigma2 * c.sigma2)
                  / (members[t.group] * members[c.group]))
    rows = []
    for d in days:
        d = int(d)
        variance = (t.mean_variance(members[t.group], d, rates[t.group])
                    + c.mean_variance(members[c.group], d, rates[c.group]) - 2.0 * covariance)
        se = math.sqrt(max(variance, 0.0))
        mde = stats.minimum_detectable_effect(se, alpha, power)
        needed = chance = None
        if effect is not None:
            chance = stats.power_above_zero(effect, se, alpha)
            if effect > 0:
                needed = int(math.ceil(users * (mde / effect) ** 2))
        n = (members[t.group] * rates[t.group] + members[c.group] * rates[c.group]) * d
        rows.append(PlanRow(d, users, n, se, mde, effect, needed, chance))
    return PowerPlan(metric, t, c, both, shares, alpha, power, rows)
