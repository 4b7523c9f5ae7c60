"""The reward model of a country: LightGBM heads that predict what a weekly plan earns for a user.

Heads (each trained on the decision log's mature rows of the BAU and bandit groups):
- `open`: opens per delivered push of the plan (cross-entropy on the open rate, weighted by pushes delivered);
- `conversion`: P(a push of the plan led to an attributed order);
- `net_revenue`: the user's take-rate margin over the decision window minus coupon costs (regression);
- `redemption`: P(the plan's coupon is redeemed), on plans with a coupon: budget pacing prices coupons with it.

A campaign's objective picks the head the policy maximizes. Every head is trained with LightGBM interaction
constraints that let a tree combine the context with only one action dimension (see `FeatureSpec`). Its raw
score is therefore *additive across dimensions*: score(x, a) = g(x) + sum_d h_d(x, a_d). That is what makes a
campaign with thousands of joint actions cheap to score (1 + sum of the option counts per user, not their
product) and what makes the factored softmax policy an exact softmax over joint actions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pushgrowth.bandit.data import check_window
from pushgrowth.bandit.features import FeatureSpec
from pushgrowth.hashing import unit_hash

if TYPE_CHECKING:
    import lightgbm as lgb

HEADS: dict[str, dict] = {
    "open": {"objective": "cross_entropy", "label": "reward_open", "weight": "pushes_delivered"},
    "conversion": {"objective": "binary", "label": "reward_conversion", "weight": None},
    "net_revenue": {"objective": "regression", "label": "reward_net_revenue", "weight": None},
    "redemption": {"objective": "binary", "label": "redeemed", "weight": None},
}
"""Head name -> LightGBM objective, label column of the training frame and optional weight column."""
OBJECTIVE_HEADS = {"open": "open", "conversion": "conversion", "net_revenue": "net_revenue"}
"""Which head serves a campaign objective."""
FALLBACK_HEAD = "open"
"""The head that serves an objective whose own head is not trained yet: opening is the first step of any
conversion, and its label is known within hours instead of after the attribution window."""

DEFAULT_PARAMS = {
    "learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 80, "feature_fraction": 0.8,
    "lambda_l2": 5.0, "max_bin": 63, "cat_smooth": 20.0, "min_data_per_group": 80,
    "verbose": -1, "deterministic": True, "force_col_wise": True,
}
"""Small, strongly regularized trees: a country's first models see a few thousand noisy outcomes (a push is
opened a few percent of the time), and deep trees memorize them (train AUC 0.98, held-out 0.63 in a test run)."""
THREADS_ENV = "PUSHGROWTH_LIGHTGBM_THREADS"
"""Threads of LightGBM's training and scoring (default 2). `pushgrowth simulate` gives each of its worker
processes its share of the cores: two workers training with two threads each on two cores spend their time in
OpenMP's spinning (a country's training took 7.9 s that way against 5.9 s with one thread each)."""


def lightgbm_threads() -> int:
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return 2
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive whole number of threads, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TrainConfig:
    """How heads are trained: boosting rounds (early-stopped on a user-hash validation split) and minimum data."""

    max_rounds: int = 400
    early_stopping: int = 30
    validation_share: float = 0.2
    min_rows: int = 300
    min_positives: int = 100
    """A binary head needs this many positives (and negatives) to be trained: a conversion head on a few dozen
    conversions would serve noise; until then its campaigns are served by the open head."""
    seed: int = 7
    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    window_days: int | None = 42
    """Decisions of the last `window_days` days up to the training date train the heads and feed the gate; None:
    the whole log. Without a window, a day's training and gate cost grow with the log (at 40,000 users per
    country, 1 s to 25 s for training and 2 s to 13 s for the gate over ten days) and old behaviour never ages
    out. Six weeks hold four matured windows of every weekday."""

    def __post_init__(self) -> None:
        check_window(self.window_days, "TrainConfig.window_days")


@dataclass
class Head:
    """One trained LightGBM booster and what is needed to read its scores."""

    name: str
    booster: lgb.Booster
    objective: str
    scale: float
    """Spread of the head's raw score, the unit of the policy's temperature (1 for log-odds heads)."""
    metrics: dict[str, float]

    @property
    def is_probability(self) -> bool:
        return self.objective in ("binary", "cross_entropy")

    def raw(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x, raw_score=True, num_threads=lightgbm_threads())

    def link(self, raw: np.ndarray) -> np.ndarray:
        """Raw score to the head's natural unit (a probability, or money)."""
        return 1.0 / (1.0 + np.exp(-raw)) if self.is_probability else raw


@dataclass
class RewardModel:
    """A country's heads plus the feature spec they were trained with."""

    spec: FeatureSpec
    heads: dict[str, Head]
    country: str = ""
    trained_on: dict[str, int] = field(default_factory=dict)

    def has(self, head: str) -> bool:
        return head in self.heads

    def predict(self, context: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
        """Every head's prediction (natural units) for aligned rows of context and actions."""
        x = self.spec.matrix(context, actions)
        return pd.DataFrame({name: head.link(head.raw(x)) for name, head in self.heads.items()},
                            index=actions.index)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, head in self.heads.items():
            (path / f"{name}.txt").write_text(head.booster.model_to_string())
        meta = {"spec": self.spec.to_dict(), "country": self.country, "trained_on": self.trained_on,
                "head_order": list(self.heads),
                "heads": {n: {"objective": h.objective, "scale": h.scale, "metrics": h.metrics}
                          for n, h in self.heads.items()}}
        (path / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> RewardModel:
        path = Path(path)
        import lightgbm as lgb  # on first use: it (and scikit-learn behind it) costs every process ~2 s to import

        meta = json.loads((path / "model.json").read_text())
        order = meta.get("head_order") or list(meta["heads"])  # prediction columns keep the training order
        heads = {name: Head(name, lgb.Booster(model_str=(path / f"{name}.txt").read_text()),
                            meta["heads"][name]["objective"], float(meta["heads"][name]["scale"]),
                            meta["heads"][name]["metrics"]) for name in order}
        return cls(FeatureSpec.from_dict(meta["spec"]), heads, meta.get("country", ""), meta.get("trained_on", {}))


def user_fold(user_ids: np.ndarray, share: float, seed: int) -> np.ndarray:
    """True for the users of the fold: a stable hash of the user id, so a user is never in both sides."""
    return unit_hash(np.asarray(user_ids, dtype=np.int64), f"fold|{seed}") < share


def fit(frame: pd.DataFrame, spec: FeatureSpec, config: TrainConfig = TrainConfig(),
        heads: tuple[str, ...] = tuple(HEADS), matrix: np.ndarray | None = None) -> RewardModel:
    """Train every head that has enough rows in `frame` (context columns, action columns and labels).

    Each head is early-stopped on a validation fold of users, its metrics measured there, then refit on all of
    its rows with the chosen number of rounds. A head without enough data is left out: the policy explores
    around business-as-usual for campaigns whose objective has no head yet. `matrix` is the frame's encoded
    features (`spec.matrix(frame, frame)`), for a caller that trains many times on rows it encoded once.
    """
    if matrix is not None:
        x_all = matrix
    else:
        x_all = spec.matrix(frame, frame) if len(frame) else np.zeros((0, len(spec.columns)), np.float32)
    valid_all = user_fold(frame["user_id"].to_numpy(), config.validation_share, config.seed) if len(frame) else \
        np.zeros(0, bool)
    trained: dict[str, Head] = {}
    rows: dict[str, int] = {}
    for name in heads:
        setup = HEADS[name]
        rows_mask = _rows_for(name, frame)
        if len(frame):
            rows_mask &= np.isfinite(frame[setup["label"]].to_numpy(np.float64))
        y = frame[setup["label"]].to_numpy(np.float64)[rows_mask] if rows_mask.any() else np.zeros(0)
        rows[name] = int(rows_mask.sum())
        if not _enough(y, setup["objective"], config):
            continue
        w = frame[setup["weight"]].to_numpy(np.float64)[rows_mask] if setup["weight"] else None
        trained[name] = _fit_head(name, setup["objective"], x_all[rows_mask], y, w, valid_all[rows_mask], spec,
                                  config)
    return RewardModel(spec, trained, trained_on=rows)


def _rows_for(head: str, frame: pd.DataFrame) -> np.ndarray:
    if not len(frame):
        return np.zeros(0, bool)
    delivered = frame["pushes_delivered"].to_numpy(np.float64) > 0
    if head in ("open", "conversion"):
        return delivered
    if head == "redemption":
        return delivered & (frame["coupon_value"].fillna(0).to_numpy(np.float64) > 0)
    return np.ones(len(frame), bool)


def _enough(y: np.ndarray, objective: str, config: TrainConfig) -> bool:
    if len(y) < config.min_rows:
        return False
    if objective in ("binary", "cross_entropy"):
        positives = float(y.sum())
        return positives >= config.min_positives and len(y) - positives >= config.min_positives
    return bool(np.std(y) > 0)


def _fit_head(name: str, objective: str, x: np.ndarray, y: np.ndarray, w: np.ndarray | None, valid: np.ndarray,
              spec: FeatureSpec, config: TrainConfig) -> Head:
    import lightgbm as lgb  # see RewardModel.load

    params = {"num_threads": lightgbm_threads(), **config.params, "objective": objective, "seed": config.seed,
              "interaction_constraints": spec.interaction_constraints()}
    if objective == "regression":
        params["metric"] = "l2"
    else:
        params["metric"] = ["binary_logloss", "auc"] if objective == "binary" else ["cross_entropy", "auc"]
    cat = spec.categorical
    train = ~valid
    rounds, metrics = config.max_rounds, {}
    if valid.sum() >= 50 and train.sum() >= 50:
        dtrain = lgb.Dataset(x[train], y[train], weight=None if w is None else w[train], categorical_feature=cat,
                             free_raw_data=False)
        dvalid = dtrain.create_valid(x[valid], y[valid], weight=None if w is None else w[valid])
        evals: dict = {}
        probe = lgb.train(params, dtrain, config.max_rounds, valid_sets=[dtrain, dvalid],
                          valid_names=["train", "valid"],
                          callbacks=[lgb.early_stopping(config.early_stopping, verbose=False),
                                     lgb.record_evaluation(evals)])
        rounds = max(10, probe.best_iteration or config.max_rounds)
        for split in ("train", "valid"):
            for metric, values in evals[split].items():
                metrics[f"{split}_{metric}"] = float(values[rounds - 1] if len(values) >= rounds else values[-1])
    booster = lgb.train(params, lgb.Dataset(x, y, weight=w, categorical_feature=cat), rounds)
    metrics.update({"rounds": float(rounds), "rows": float(len(y)), "label_mean": float(np.average(y, weights=w))})
    raw = booster.predict(x, raw_score=True)
    scale = 1.0 if objective in ("binary", "cross_entropy") else float(max(np.std(raw), 1e-9))
    return Head(name, booster, objective, scale, metrics)
