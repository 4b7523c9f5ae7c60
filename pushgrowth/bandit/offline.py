"""Off-policy evaluation of serving policies on the bandit group's logged decisions.

For each logged row we rebuild the situation the logging policy faced (the campaign's options, the free days,
the capacity and whether coupons were allowed) and ask a candidate policy how likely it was to choose the logged
plan. With a reward model `q` (trained on *other* users, so it never saw these rows) the doubly robust estimate
follows. Each row is judged on its campaign objective's reward once that is mature, and on its open rate before
(`data.reward_kind`); rewards are normalized by their mean per kind, so rows judged on open rate, conversion
and net revenue add up to one value: 1.0 is "as good as the average logged plan", 1.2 is 20% better.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pushgrowth.bandit import ope
from pushgrowth.bandit.data import LABELS, reward_kind, reward_of
from pushgrowth.bandit.model import RewardModel
from pushgrowth.bandit.policy import Options, Scores, logged_room, schedule_mask
from pushgrowth.bandit.serving import ServingPolicy
from pushgrowth.campaigns import Catalog
from pushgrowth.domain import PLAN_DAYS



@dataclass
class LoggedTerms:
    """Per-row quantities for OPE, aligned: normalized reward, logging propensity, and per policy its terms."""

    rows: pd.DataFrame
    reward: np.ndarray
    propensity: np.ndarray
    q_logged: np.ndarray
    target: dict[str, np.ndarray]
    value: dict[str, np.ndarray]


def evaluation_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Bandit-group rows (the only ones with a stochastic logging policy) with a known reward, and its kind."""
    if not len(frame):
        return frame
    bandit = frame[(frame["assignment_group"] == "bandit") & frame["propensity"].between(0, 1, inclusive="right")
                   & frame["policy"].isin(["bandit", "cold_start"])]
    bandit = bandit.assign(reward_kind=reward_kind(bandit))
    return bandit[bandit["reward_kind"] != ""].reset_index(drop=True)


def _logged_indices(rows: pd.DataFrame, options: Options) -> tuple[dict[str, np.ndarray], np.ndarray]:
    s = options.space
    lookups = {
        "coupon": (rows["coupon_value"].astype(float), list(s.coupon_values)),
        "template": (rows["template_id"], [t for t, _ in s.templates]),
        "hour": (rows["send_hour"].astype(int), list(s.hours)),
        "weekday": (rows["send_weekday"].astype(int), list(s.weekdays)),
        "frequency": (rows["frequency"].astype(int), list(s.frequencies)),
    }
    idx, ok = {}, np.ones(len(rows), bool)
    for d, (values, options_d) in lookups.items():
        position = pd.Index(options_d).get_indexer(values.to_numpy())
        ok &= position >= 0
        idx[d] = np.where(position >= 0, position, 0)
    return idx, ok


def logged_terms(rows: pd.DataFrame, catalog: Catalog, policies: dict[str, ServingPolicy], q_model: RewardModel,
                 scale: dict[str, float] | None = None, rng_seed: int = 0) -> LoggedTerms:
    """The OPE terms of every policy in `policies` on `rows` (see `evaluation_rows`), with `q_model` as q.

    Rows of campaigns no longer in the catalog, plans no longer among the campaign's options, and objectives the
    q model has no head for are left out (their count is in `rows`' length against the input's).
    """
    rng = np.random.default_rng(rng_seed)
    keep_rows, reward, propensity, q_logged = [], [], [], []
    target = {name: [] for name in policies}
    value = {name: [] for name in policies}
    known = set(catalog.ids)
    for cid, campaign_rows in rows.groupby("campaign_id", sort=True):
        if cid not in known:
            continue
        c = catalog.get(cid)
        # every policy scores the same rows day by day: score each campaign's rows once (same numbers)
        with Scores.shared(campaign_rows.assign(value_proposition=c.value_proposition)):
            _campaign_terms(campaign_rows, c, policies, q_model, rng, keep_rows, reward, propensity, q_logged,
                            target, value)
    if not keep_rows:
        empty = np.zeros(0)
        return LoggedTerms(rows.iloc[:0], empty, empty, empty, {n: empty for n in policies},
                           {n: empty for n in policies})
    kept = pd.concat(keep_rows, ignore_index=True)
    per_row = row_scale(kept, scale or objective_scale(kept))
    return LoggedTerms(kept, np.concatenate(reward) / per_row, np.concatenate(propensity),
                       np.concatenate(q_logged) / per_row,
                       {n: np.concatenate(v) for n, v in target.items()},
                       {n: np.concatenate(v) / per_row for n, v in value.items()})


def _campaign_terms(rows: pd.DataFrame, c, policies: dict[str, ServingPolicy], q_model: RewardModel,
                    rng: np.random.Generator, keep_rows: list, reward: list, propensity: list, q_logged: list,
                    target: dict[str, list], value: dict[str, list]) -> None:
    """`logged_terms` of one campaign's rows, a (date, reward kind) group at a time, appended to the lists."""
    for (date, head), group in rows.groupby(["date", "reward_kind"], sort=True):
        if not q_model.has(head):
            continue
        options = Options.of_campaign(c)
        idx, ok = _logged_indices(group, options)
        if not ok.any():
            continue
        group = group[ok].reset_index(drop=True)
        idx = {d: v[ok] for d, v in idx.items()}
        day = pd.Timestamp(date).date() if not isinstance(date, dt.date) else date
        bits = group["free_days"].astype(int).to_numpy()
        free = ((bits[:, None] >> np.arange(PLAN_DAYS)) & 1).astype(bool)
        mask = schedule_mask(free, logged_room(group), options.space, day)
        zero = np.asarray(options.space.coupon_values) == 0
        allowed = np.where(group["coupons_allowed"].fillna(True).astype(bool).to_numpy()[:, None], True,
                           zero[None, :])
        context = group.assign(value_proposition=c.value_proposition)
        q_scores = Scores.compute(q_model, head, context, options)
        for name, policy in policies.items():
            dist, _ = policy.distribution(c.objective, context, options, mask, allowed)
            target[name].append(dist.probability(idx))
            value[name].append(dist.expected_value(q_scores, rng))
        reward.append(reward_of(group, np.full(len(group), head)))
        propensity.append(group["propensity"].astype(float).to_numpy())
        q_logged.append(q_scores.value(idx))
        keep_rows.append(group)


def objective_scale(rows: pd.DataFrame) -> dict[str, float]:
    """The mean logged reward of each kind: the unit that makes rewards of different kinds comparable."""
    kind = rows["reward_kind"].to_numpy() if "reward_kind" in rows else reward_kind(rows)
    values = reward_of(rows, kind)
    scale = {}
    for objective in LABELS:
        sel = kind == objective
        mean = float(np.nanmean(values[sel])) if sel.any() else 1.0
        scale[objective] = mean if abs(mean) > 1e-12 and np.isfinite(mean) else 1.0
    return scale


def row_scale(rows: pd.DataFrame, scale: dict[str, float]) -> np.ndarray:
    return rows["reward_kind"].map(scale).fillna(1.0).to_numpy(np.float64)


def estimates(terms: LoggedTerms, name: str, alpha: float = 0.1,
              clip: float | None = None) -> dict[str, ope.Estimate]:
    """IPS, SNIPS, DR and DM of one policy on the logged terms."""
    return ope.evaluate(terms.reward, terms.propensity, terms.target[name], terms.q_logged, terms.value[name],
                        alpha=alpha, clip=clip)


def paired_difference(terms: LoggedTerms, challenger: str, champion: str, alpha: float = 0.1,
                      clip: float | None = None) -> ope.Estimate:
    """DR estimate of value(challenger) - value(champion) on the same rows: shared noise cancels."""
    w_a = ope.importance_weights(terms.target[challenger], terms.propensity, clip)
    w_b = ope.importance_weights(terms.target[champion], terms.propensity, clip)
    residual = terms.reward - terms.q_logged
    d = (terms.value[challenger] + w_a * residual) - (terms.value[champion] + w_b * residual)
    return ope.on_policy(d, alpha=alpha)
