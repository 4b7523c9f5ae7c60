"""A country's daily training and the promotion gate, as plain functions (the Dagster assets wrap them).

Training uses the decision log (its last `TrainConfig.window_days` days) of four users in five (a stable hash of
the user id); the fifth is kept for evaluation, so the gate judges a model on users it never saw. It promotes the
new model (the challenger) over the serving champion (or, before the first one, over the cold-start policy) only
when:

1. the data checks pass (labels and propensities sane, unique traces, contexts found);
2. there is enough held-out evidence (`min_rows` bandit decisions with a known reward);
3. every head the challenger would serve predicts better than chance on the held-out users: the lower bound of
   its AUC (Hanley-McNeil standard error) is above `min_auc`. A model trained on noise, or on shuffled rewards,
   stops here whatever the sample size. A head with fewer than `min_auc_positives` held-out positives is not
   judged (the off-policy rule still covers it), but one head must be. While none can be (a small country's
   first days), the thin heads are judged on their *cross-fitted* AUC (`cross_fitted_quality`): the same
   training repeated on `cross_fit_folds` folds of users, every user held out once, and "better than chance"
   decided by a label-permutation test. That judges the training that produced the challenger, so it applies
   only when retraining on this frame reproduces the challenger (`reproduces`), and the challenger's own
   held-out AUC must still be above `min_auc`;
4. the off-policy rule holds, on the held-out bandit decisions, with doubly robust estimates that share the
   challenger's reward model (see `offline`):
   - `not_worse` (default): the paired difference challenger - champion is not significantly negative (its
     upper bound is above `-min_lift`);
   - `paired`: the paired difference is significantly positive (its lower bound is above `min_lift`);
   - `lower_bound`: the challenger's lower bound is above the champion's estimate (+ `min_lift`).
   The superiority rules also need the challenger's effective sample size to reach `min_ess`.

Why `not_worse` by default: a policy over a thousand joint plans, judged on a reward a user earns a few times in a
hundred, cannot be *proven* better off-policy until tens of thousands of decisions are logged (in a test run, 450
held-out decisions gave intervals of +-1 on a scale where 1.0 is the average plan). Requiring proof would keep
a country on cold start for weeks; requiring a model that predicts (3) and is not shown to be worse (4) lets it
learn within days, and `paired` is the rule to switch to once volumes allow it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from pushgrowth.bandit import offline, ope
from pushgrowth.bandit.data import reward_kind, reward_of, training_frame, treated
from pushgrowth.bandit.features import FeatureSpec
from pushgrowth.bandit.model import HEADS, RewardModel, TrainConfig, fit, user_fold
from pushgrowth.bandit.serving import ServingPolicy
from pushgrowth.campaigns import Catalog
from pushgrowth.hashing import unit_hash

GATE_RULES = ("not_worse", "paired", "lower_bound")


@dataclass(frozen=True)
class GateConfig:
    rule: str = "not_worse"
    alpha: float = 0.10
    """Two-sided level of the intervals: 0.10 makes the lower bound a one-sided 95% bound."""
    min_lift: float = 0.0
    """In normalized reward units (1.0 = the average logged plan): 0.02 asks for a 2% improvement."""
    min_rows: int = 150
    min_ess: float = 15.0
    clip: float | None = 200.0
    """Cap on importance weights: a little bias for much less variance when thousands of plans are possible."""
    min_auc: float = 0.5
    """The lower bound of every served head's held-out AUC must exceed this (0.5 = chance)."""
    min_auc_positives: int = 50
    """A head is judged on AUC only with this many held-out positives (fewer give intervals too wide to mean
    anything, and a head trained on shuffled rewards can clear 0.5 by chance). At least one served head must be
    judged."""
    cross_fit_folds: int = 5
    """Folds of users for the cross-fitted AUC of a head whose held-out positives are too few (0 or 1: never)."""
    cross_fit_permutations: int = 19
    """Label permutations of the cross-fit's test: with 19, "better than chance" needs the real training to beat
    all of them (p = 0.05, the one-sided level of the default alpha)."""

    def __post_init__(self) -> None:
        if self.rule not in GATE_RULES:
            raise ValueError(f"gate rule {self.rule!r} is not one of {GATE_RULES}")


@dataclass
class TrainingResult:
    country: str
    as_of: dt.date
    model: RewardModel | None
    rows: int
    train_rows: int
    metrics: dict[str, float]
    data_checks: dict[str, bool]
    frame: pd.DataFrame = field(repr=False)
    config: TrainConfig = field(default_factory=TrainConfig)

    @property
    def held_out(self) -> np.ndarray:
        """The users kept out of training for the gate (the same fold whatever the training config)."""
        return user_fold(self.frame["user_id"].to_numpy(), self.config.validation_share, self.config.seed + 1)

    @property
    def checks_passed(self) -> bool:
        return all(self.data_checks.values())


def data_checks(frame: pd.DataFrame, logged: int) -> dict[str, bool]:
    """Sanity of the training data itself, on top of the upstream Great Expectations gates."""
    if not len(frame):
        return {"has_rows": False}
    return {
        "propensities_in_range": bool(frame["propensity"].between(0, 1, inclusive="right").all()),
        "trace_ids_unique": bool(frame["trace_id"].is_unique),
        "labels_finite_when_mature": bool(np.isfinite(frame.loc[frame["is_mature"].astype(bool),
                                                                "reward_net_revenue"]).all()),
        "contexts_found": len(frame) >= 0.95 * logged,
    }


def prepare(log: pd.DataFrame, features: pd.DataFrame, country: str, as_of: dt.date,
            config: TrainConfig = TrainConfig()) -> TrainingResult:
    """The training frame of `log` (the decision log of the window `config.window_days` ending on `as_of`, see
    `window_start`) with its context `features`, and its data checks, without a model (what the gate re-reads:
    with the training's config, the very frame the challenger was trained on)."""
    frame = training_frame(log, features)
    if not len(frame):
        return TrainingResult(country, as_of, None, 0, 0, {}, {"has_rows": False}, frame, config)
    logged = int(treated(log).sum())
    return TrainingResult(country, as_of, None, len(frame), 0, {}, data_checks(frame, logged), frame, config)


def train(prepared: TrainingResult, catalog: Catalog) -> TrainingResult:
    """Train the country's heads on the training fold of a prepared frame (see `prepare`)."""
    country, as_of, config = prepared.country, prepared.as_of, prepared.config
    frame = prepared.frame
    spec = FeatureSpec(reference_order_value=catalog.policies[country].reference_order_value)
    if not len(frame):
        return prepared
    holdout = prepared.held_out
    model = fit(frame[~holdout].reset_index(drop=True), spec, config)
    model.country = country
    metrics = {f"{head}_{k}": v for head, h in model.heads.items() for k, v in h.metrics.items()}
    metrics.update({f"rows_{k}": float(v) for k, v in model.trained_on.items()})
    return TrainingResult(country, as_of, model if model.heads else None, len(frame), int((~holdout).sum()),
                          metrics, prepared.data_checks, frame, config)


@dataclass
class GateResult:
    promoted: bool
    reason: str
    table: pd.DataFrame
    metrics: dict[str, float]
    config: GateConfig

    def markdown(self) -> str:
        shown = self.table.copy()
        for column in ("value", "ci_low", "ci_high", "std_error", "ess", "max_weight"):
            if column in shown:
                shown[column] = shown[column].map(lambda v: f"{v:.4g}" if v == v else "-")
        verdict = "**promoted**" if self.promoted else "**not promoted**"
        return (f"{verdict}: {self.reason}\n\nGate: rule `{self.config.rule}`, alpha {self.config.alpha}, "
                f"min lift {self.config.min_lift}, min rows {self.config.min_rows}, "
                f"min ESS {self.config.min_ess}, "
                f"clip {self.config.clip}. Values are mean rewards normalized per objective (1.0 = the average "
                f"logged plan), on held-out users.\n\n" + shown.to_markdown(index=False))

    def to_dict(self) -> dict:
        return {"promoted": self.promoted, "reason": self.reason, "config": asdict(self.config),
                "metrics": self.metrics, "table": self.table.to_dict(orient="records")}


def evaluate(result: TrainingResult, catalog: Catalog, challenger: ServingPolicy, champion: ServingPolicy,
             config: GateConfig = GateConfig(), seed: int = 0) -> GateResult:
    """The gate's evidence and verdict for a freshly trained challenger against the serving champion."""
    frame = result.frame
    if challenger.model is None:
        return GateResult(False, "no challenger: not enough mature decisions to train any head yet",
                          pd.DataFrame(), {}, config)
    held_out = result.held_out
    rows = offline.evaluation_rows(frame[held_out].reset_index(drop=True))
    scale = offline.objective_scale(rows)
    bau = ServingPolicy(bau=True, reference_order_value=challenger.reference_order_value)
    terms = offline.logged_terms(rows, catalog, {"challenger": challenger, "champion": champion, "bau": bau},
                                 challenger.model, scale=scale, rng_seed=seed)
    table_rows = []
    estimates = {}
    for name in ("challenger", "champion", "bau"):
        if not len(terms.reward):
            break
        found = offline.estimates(terms, name, alpha=config.alpha, clip=config.clip)
        estimates[name] = found
        for est in found.values():
            table_rows.append({"policy": name, **est.to_dict()})
    on_bau = _bau_on_policy(frame[held_out], scale, config.alpha)
    if on_bau is not None:
        table_rows.append({"policy": "bau (its own group)", **on_bau.to_dict()})
    diff = offline.paired_difference(terms, "challenger", "champion", config.alpha, config.clip) \
        if len(terms.reward) >= 2 else None
    if diff is not None:
        table_rows.append({"policy": "challenger - champion", **diff.to_dict(), "estimator": "paired dr"})
    table = pd.DataFrame(table_rows)
    metrics = {"ope_rows": float(len(terms.reward))}
    for name, found in estimates.items():
        for key in ("dr", "snips"):
            metrics[f"ope_{name}_{key}"] = found[key].value
        metrics[f"ope_{name}_dr_ci_low"] = found["dr"].ci_low
        metrics[f"ope_{name}_ess"] = found["dr"].ess
    if diff is not None:
        metrics.update({"ope_difference": diff.value, "ope_difference_ci_low": diff.ci_low})
    if on_bau is not None:
        metrics["bau_on_policy"] = on_bau.value
    quality = head_quality(frame[held_out], catalog, challenger, config.alpha)
    thin = [head for head, auc in quality.items() if auc.positives < config.min_auc_positives]
    crossed: dict[str, Auc] = {}
    if len(thin) == len(quality) and thin and config.cross_fit_folds >= 2:  # no head can be judged held-out
        thin = [head for head in thin if reproduces(result, challenger, head)]
        crossed = cross_fitted_quality(result, catalog, challenger, thin, config.cross_fit_folds, config.alpha,
                                       config.cross_fit_permutations)
    for head, auc in [*quality.items(), *crossed.items()]:
        prefix = "heldout" if auc.method == HELD_OUT else "crossfit"
        metrics[f"{prefix}_auc_{head}"] = auc.estimate
        metrics[f"{prefix}_auc_{head}_ci_low"] = auc.ci_low
        metrics[f"{prefix}_auc_{head}_positives"] = float(auc.positives)
        if auc.method == CROSS_FITTED:
            metrics[f"crossfit_auc_{head}_p_value"] = auc.p_value
        estimator = f"{auc.method} AUC" + (f" (permutation p {auc.p_value:.2f})" if auc.method == CROSS_FITTED
                                           else "")
        table_rows.append({"policy": f"challenger head `{head}`", "estimator": estimator,
                           "value": auc.estimate,
                           "std_error": auc.std_error, "ci_low": auc.ci_low, "ci_high": auc.ci_high, "n": auc.n,
                           "ess": float(auc.positives)})
    quality = _judged_quality(quality, crossed, config)
    table = pd.DataFrame(table_rows)
    promoted, reason = _verdict(result, terms, estimates, diff, quality, config)
    return GateResult(promoted, reason, table, metrics, config)


HELD_OUT = "held-out"
CROSS_FITTED = "cross-fitted"


@dataclass(frozen=True)
class Auc:
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    n: int
    positives: int = 0
    method: str = HELD_OUT
    """`HELD_OUT`: the challenger scored on the held-out users; `CROSS_FITTED`: its training, cross-fitted."""
    p_value: float = float("nan")
    """Cross-fitted only: the label-permutation test's p-value of "the training learns nothing"."""

    def better_than(self, min_auc: float, alpha: float) -> bool:
        """Better than `min_auc`: the interval's lower bound above it and, cross-fitted, the permutation test
        rejecting "learns nothing" at the one-sided level alpha / 2."""
        if self.method == CROSS_FITTED and not self.p_value <= alpha / 2:
            return False
        return bool(self.ci_low > min_auc)


def auc_interval(labels: np.ndarray, scores: np.ndarray, alpha: float = 0.1) -> Auc:
    """AUC with the Hanley-McNeil (1982) standard error; NaN when a class is missing."""
    from scipy.stats import mannwhitneyu, norm

    labels = np.asarray(labels, bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return Auc(float("nan"), float("nan"), float("nan"), float("nan"), len(labels), pos)
    auc = float(mannwhitneyu(scores[labels], scores[~labels]).statistic / (pos * neg))
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = float(np.sqrt((auc * (1 - auc) + (pos - 1) * (q1 - auc**2) + (neg - 1) * (q2 - auc**2)) / (pos * neg)))
    z = norm.ppf(1 - alpha / 2)
    return Auc(auc, se, auc - z * se, auc + z * se, len(labels), pos)


def _auc_rows(frame: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """Per probability head, the treated rows it is judged on and their labels (open: any open among delivered
    plans; conversion: converted among mature delivered plans)."""
    rows = frame[(frame["assignment_group"] != "holdout") & frame["frequency"].notna()]
    delivered = rows["pushes_delivered"].astype(float).to_numpy() > 0
    targets = {
        "open": (delivered, rows["opens"].astype(float).to_numpy() > 0),
        "conversion": (rows["is_mature"].astype(bool).to_numpy() & delivered, rows["converted"].astype(bool).to_numpy()),
    }
    return {head: (rows[mask], label[mask]) for head, (mask, label) in targets.items()}


def _served_probability_heads(catalog: Catalog, challenger: ServingPolicy) -> set[str]:
    served = {h for c in catalog.campaigns for h in challenger.heads_used(c.objective)}
    return {h for h in served if challenger.model is not None and challenger.model.has(h)}


def head_quality(frame: pd.DataFrame, catalog: Catalog, challenger: ServingPolicy, alpha: float) -> dict[str, Auc]:
    """Held-out AUC of each probability head the challenger serves, on the rows of `frame` (see `_auc_rows`)."""
    served = _served_probability_heads(catalog, challenger)
    out = {}
    for head, (rows, label) in _auc_rows(frame).items():
        if head not in served or not len(rows):
            continue
        out[head] = auc_interval(label, challenger.model.predict(rows, rows)[head].to_numpy(), alpha)
    return out


def reproduces(result: TrainingResult, challenger: ServingPolicy, head: str) -> bool:
    """True when training `head` on this frame's training fold (the result's training config) gives the
    challenger's head again: the same predictions on the held-out rows. Only then does a cross-fit of that
    training speak for the challenger (training is deterministic; a model trained elsewhere, on other data or
    on shuffled rewards, gives other predictions)."""
    model = challenger.model
    frame = result.frame
    if model is None or not model.has(head) or not len(frame):
        return False
    held_out = result.held_out
    refit = fit(frame[~held_out].reset_index(drop=True), model.spec, result.config, heads=(head,))
    rows = frame[held_out]
    if not refit.has(head) or not len(rows):
        return False
    mine = model.predict(rows, rows)[head].to_numpy()
    again = refit.predict(rows, rows)[head].to_numpy()
    return bool(np.allclose(mine, again, rtol=1e-6, atol=1e-9))


def cross_fitted_quality(result: TrainingResult, catalog: Catalog, challenger: ServingPolicy, heads: list[str],
                         folds: int = 5, alpha: float = 0.1, permutations: int = 19) -> dict[str, Auc]:
    """Out-of-fold AUC of the training that produced the challenger, for `heads`, over every treated user, with
    the p-value of a label-permutation test.

    Users are split into `folds` folds by a stable hash; for each fold the head is trained (same spec and
    training config) on the other folds and scores that fold, so each row is scored by a model that never saw
    its user; the AUC is over pairs within a fold (each model ranks its own fold). A fold whose complement has
    too little data to train the head leaves its rows out; an empty result when no fold could be scored.

    Why a permutation test: a model trained on noise is a random function of the context, and the context
    predicts opens, so such a model's AUC strays from 0.5 further than the Hanley-McNeil error allows for (on
    shuffled rewards: a spread of 0.039 against an error of 0.022, and one training in five "better than
    chance"). Repeating the whole cross-fit with the head's training labels permuted across rows gives the
    AUCs of trainings that learned nothing from these very rows; `p_value` is the share of them (counting the
    real one) at or above the real AUC.
    """
    frame = result.frame.reset_index(drop=True)
    if challenger.model is None or not len(frame):
        return {}
    fold = np.minimum((unit_hash(frame["user_id"].to_numpy(np.int64), f"crossfit|{result.config.seed}")
                       * folds).astype(np.int64), folds - 1)
    targets = _auc_rows(frame)
    rng = np.random.default_rng(result.config.seed)
    # one thread: on a few thousand rows a second thread only spins (MLA's day 3: 42 s with two, 5.5 s with one)
    config = replace(result.config, params={**result.config.params, "num_threads": 1})
    spec = challenger.model.spec
    x = spec.matrix(frame, frame)  # labels are no features: one encoding serves every fold and permutation
    out = {}
    for head in heads:
        if head not in targets or not len(targets[head][0]):
            continue
        rows, label = targets[head]
        observed = _cross_fit(frame, fold, folds, head, spec, config, rows, label, alpha, x)
        if observed is None:
            continue
        column = HEADS[head]["label"]
        null = []
        for _ in range(permutations):
            permuted = frame.assign(**{column: frame[column].to_numpy()[rng.permutation(len(frame))]})
            found = _cross_fit(permuted, fold, folds, head, spec, config, rows, label, alpha, x)
            null.append(found.estimate if found is not None else 0.5)
        p_value = (1 + sum(v >= observed.estimate for v in null)) / (1 + len(null))
        out[head] = replace(observed, p_value=float(p_value))
    return out


def _cross_fit(frame: pd.DataFrame, fold: np.ndarray, folds: int, head: str, spec: FeatureSpec,
               config: TrainConfig, rows: pd.DataFrame, label: np.ndarray, alpha: float, x: np.ndarray
               ) -> Auc | None:
    """The pooled out-of-fold AUC; `x` is `frame`'s encoded features (`rows` are rows of `frame`, by position)."""
    row_fold = fold[rows.index.to_numpy()]
    x_rows = x[rows.index.to_numpy()]
    per_fold = []
    for k in range(folds):
        part = row_fold == k
        if not part.any():
            continue
        train = fold != k
        model = fit(frame[train].reset_index(drop=True), spec, config, heads=(head,), matrix=x[train])
        if model.has(head):
            scores = model.heads[head].link(model.heads[head].raw(x_rows[part]))
            per_fold.append(auc_interval(label[part], scores, alpha))
    per_fold = [a for a in per_fold if np.isfinite(a.estimate)]
    return _pooled_auc(per_fold, alpha) if per_fold else None


def _pooled_auc(per_fold: list[Auc], alpha: float) -> Auc:
    """The AUC over pairs within the same fold: each fold's AUC weighted by its (positive, negative) pairs, with
    the variance of that weighted mean (scores of different folds come from different models)."""
    from scipy.stats import norm

    pairs = np.array([a.positives * (a.n - a.positives) for a in per_fold], dtype=np.float64)
    w = pairs / pairs.sum()
    estimate = float(np.sum(w * [a.estimate for a in per_fold]))
    se = float(np.sqrt(np.sum(w**2 * np.square([a.std_error for a in per_fold]))))
    z = norm.ppf(1 - alpha / 2)
    return Auc(estimate, se, estimate - z * se, estimate + z * se, int(sum(a.n for a in per_fold)),
               int(sum(a.positives for a in per_fold)), CROSS_FITTED)


def _judged_quality(held_out: dict[str, Auc], crossed: dict[str, Auc], config: GateConfig) -> dict[str, Auc]:
    """The AUC each head is judged on: held-out when it has enough positives, else the cross-fitted one with
    enough positives, provided the challenger's own (thin) held-out AUC is above `min_auc` too."""
    judged = {}
    for head, auc in held_out.items():
        if auc.positives >= config.min_auc_positives:
            judged[head] = auc
        elif head in crossed and crossed[head].positives >= config.min_auc_positives:
            judged[head] = crossed[head] if auc.estimate > config.min_auc else auc
    return judged


def _bau_on_policy(frame: pd.DataFrame, scale: dict[str, float], alpha: float) -> ope.Estimate | None:
    """BAU's own group, judged on the same rewards as the bandit rows (see `data.reward_kind`)."""
    bau = frame[frame["assignment_group"] == "bau"]
    kind = reward_kind(bau)
    values = reward_of(bau, kind) / pd.Series(kind).map(scale).fillna(1.0).to_numpy()
    values = values[(kind != "") & np.isfinite(values)]
    return ope.on_policy(values, alpha=alpha) if len(values) >= 2 else None


def _verdict(result: TrainingResult, terms: offline.LoggedTerms, estimates: dict, diff: ope.Estimate | None,
             quality: dict[str, Auc], config: GateConfig) -> tuple[bool, str]:
    n = len(terms.reward)
    if not result.checks_passed:
        failed = [k for k, ok in result.data_checks.items() if not ok]
        return False, f"data checks failed: {', '.join(failed)}"
    if n < config.min_rows:
        return False, (f"not enough evidence: {n} held-out bandit decisions with a known reward "
                       f"(< {config.min_rows})")
    judged = quality  # see `_judged_quality`
    weak = [f"{h} {a.estimate:.3f} ({a.method}, lower bound {a.ci_low:.3f}"
            + (f", permutation p {a.p_value:.2f})" if a.method == CROSS_FITTED else ")")
            for h, a in judged.items() if not a.better_than(config.min_auc, config.alpha)]
    if weak or not judged:
        return False, ("a served head does not predict better than chance on held-out users: " + ", ".join(weak)
                       if weak
                       else f"no served head has {config.min_auc_positives} held-out positives to be judged "
                       f"(nor {config.min_auc_positives} cross-fitted ones)")
    challenger, champion = estimates["challenger"]["dr"], estimates["champion"]["dr"]
    aucs = ", ".join(f"{h} AUC {a.estimate:.3f}" + (" (cross-fitted)" if a.method == CROSS_FITTED else "")
                     for h, a in judged.items())
    if config.rule == "not_worse":
        assert diff is not None
        if diff.ci_high > -config.min_lift:
            return True, (f"{aucs} on held-out users; not worse than the champion off-policy (difference "
                          f"{diff.value:+.3f}, upper bound {diff.ci_high:+.3f})")
        return False, f"worse than the champion: difference {diff.value:+.3f}, upper bound {diff.ci_high:+.3f}"
    if challenger.ess < config.min_ess:
        return False, f"effective sample size {challenger.ess:.1f} below {config.min_ess}"
    if config.rule == "paired":
        assert diff is not None
        if diff.ci_low > config.min_lift:
            return True, (f"challenger beats champion by {diff.value:+.3f} (lower bound {diff.ci_low:+.3f} > "
                          f"{config.min_lift})")
        return False, f"difference {diff.value:+.3f}, lower bound {diff.ci_low:+.3f} not above {config.min_lift}"
    if challenger.ci_low > champion.value + config.min_lift:
        return True, f"challenger lower bound {challenger.ci_low:.3f} above champion estimate {champion.value:.3f}"
    return False, (f"challenger lower bound {challenger.ci_low:.3f} not above champion estimate "
                   f"{champion.value:.3f}")
