"""Off-policy evaluation (OPE): the value of a target policy estimated from a log collected by another policy.

Every logged decision carries the exact probability with which the logging policy drew its action (see
`pushgrowth.decisions`), so the importance weight w = pi_e(a|x) / pi_0(a|x) turns the logged rewards into an
estimate of the target policy's mean reward per decision without deploying it. The estimators trade bias for
variance:

- ``ips``: mean(w r). Unbiased whenever pi_0 > 0 wherever pi_e > 0, but its variance grows with the weights.
- ``snips``: sum(w r) / sum(w). Biased by O(1/n), but it stays inside the observed reward range and ignores a
  constant shift of the rewards, so it is usually far less variable than IPS when weights are large.
- ``dr``: the reward model's prediction plus the importance-weighted residual of the logged action. Unbiased
  if either the propensities or the reward model are right; with a good model its variance is far below IPS.
- ``dm``: the reward model alone. Lowest variance but exactly as biased as the model; its interval reflects
  only the sampling of contexts, never the model's error, so it must not be read as a guarantee.

Intervals use the normal approximation of independent per-row terms. The effective sample size
(sum w)^2 / sum w^2 says how many on-policy rows the reweighted log is worth: a small ESS means a few rows
carry the estimate, and its interval is not to be trusted even when it looks narrow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """One policy-value estimate with its normal-approximation interval and importance-weight diagnostics."""

    estimator: str      # "ips" | "snips" | "dr" | "dm" | "on_policy"
    value: float        # estimated mean reward per decision under the evaluated policy
    std_error: float
    ci_low: float
    ci_high: float
    n: int              # rows used
    ess: float          # (sum w)^2 / sum w^2; n for "dm" and "on_policy"
    max_weight: float   # largest importance weight; 0 for "dm", 1 for "on_policy"

    def to_dict(self) -> dict[str, float | int | str]:
        """A plain dict, e.g. for MLflow metrics or a JSON report."""
        return asdict(self)


def _array(name: str, values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; at least one logged decision is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _validated(**arrays: ArrayLike) -> dict[str, FloatArray]:
    """Convert and check the named arrays; the argument names appear in every error message."""
    out = {name: _array(name, values) for name, values in arrays.items()}
    lengths = {name: int(a.size) for name, a in out.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays must have equal lengths, got {lengths}")
    p0 = out.get("logging_propensity")
    if p0 is not None and np.any((p0 <= 0) | (p0 > 1)):
        raise ValueError("logging_propensity must lie in (0, 1]: a logged action had to have positive probability")
    pe = out.get("target_probability")
    if pe is not None and np.any((pe < 0) | (pe > 1)):
        raise ValueError("target_probability must lie in [0, 1]")
    return out


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def _weights(logging_propensity: FloatArray, target_probability: FloatArray, clip: float | None) -> FloatArray:
    w = target_probability / logging_propensity
    if clip is None:
        return w
    if not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a positive finite number or None, got {clip}")
    return np.minimum(w, clip)


def _ess(w: FloatArray) -> float:
    """(sum w)^2 / sum w^2 on w / max(w): scale-free, so tiny (subnormal) weights cannot underflow to 0/0."""
    top = float(w.max())
    if top == 0:
        return 0.0
    u = w / top
    return float(np.sum(u)) ** 2 / float(np.sum(u * u))


def _std_error(terms: FloatArray) -> float:
    """Standard error of the mean of i.i.d. per-row terms; nan for a single row, whose spread is unknown."""
    return NAN if terms.size < 2 else float(np.std(terms, ddof=1) / math.sqrt(terms.size))


def _estimate(name: str, value: float, se: float, alpha: float, n: int, ess: float, max_w: float) -> Estimate:
    from scipy.stats import norm  # on first use: the definitions import without scipy

    z = float(norm.ppf(1 - alpha / 2))
    return Estimate(name, float(value), se, float(value - z * se), float(value + z * se), n, ess, max_w)


def importance_weights(
    target_probability: ArrayLike, logging_propensity: ArrayLike, clip: float | None = None
) -> FloatArray:
    """w = pi_e(a|x) / pi_0(a|x), optionally capped at ``clip``.

    Clipping is a bias-variance trade-off: capping rare, huge weights shrinks the variance of every
    weighted estimator but biases it (towards 0 for IPS with non-negative rewards) because the capped rows
    no longer count as often as the target policy would pick them.
    """
    a = _validated(target_probability=target_probability, logging_propensity=logging_propensity)
    return _weights(a["logging_propensity"], a["target_probability"], clip)


def ips(rewards: ArrayLike, logging_propensity: ArrayLike, target_probability: ArrayLike,
        alpha: float = 0.05, clip: float | None = None) -> Estimate:
    """Inverse propensity scoring: mean(w r), unbiased without clipping, CI from the per-row terms w r."""
    _check_alpha(alpha)
    a = _validated(rewards=rewards, logging_propensity=logging_propensity, target_probability=target_probability)
    w = _weights(a["logging_propensity"], a["target_probability"], clip)
    terms = w * a["rewards"]
    return _estimate("ips", float(np.mean(terms)), _std_error(terms), alpha, terms.size, _ess(w), float(w.max()))


def snips(rewards: ArrayLike, logging_propensity: ArrayLike, target_probability: ArrayLike,
          alpha: float = 0.05, clip: float | None = None) -> Estimate:
    """Self-normalised IPS: sum(w r) / sum(w), with a delta-method standard error.

    The influence function of the ratio is w_i (r_i - V) / mean(w). If every weight is 0 (the target policy
    never picks a logged action) the log says nothing about the target policy: the estimate is then nan with
    ess 0 rather than a division by zero.
    """
    _check_alpha(alpha)
    a = _validated(rewards=rewards, logging_propensity=logging_propensity, target_probability=target_probability)
    w, r = _weights(a["logging_propensity"], a["target_probability"], clip), a["rewards"]
    top = float(w.max())
    if top == 0:
        return Estimate("snips", NAN, NAN, NAN, NAN, r.size, 0.0, 0.0)
    u = w / top   # the ratio is scale-free; normalising keeps tiny weights from underflowing
    total = float(np.sum(u))
    value = float(np.sum(u * r)) / total
    influence = u * (r - value) / (total / r.size)
    return _estimate("snips", value, _std_error(influence), alpha, r.size, _ess(w), top)


def doubly_robust(rewards: ArrayLike, logging_propensity: ArrayLike, target_probability: ArrayLike,
                  q_logged: ArrayLike, v_target: ArrayLike,
                  alpha: float = 0.05, clip: float | None = None) -> Estimate:
    """Doubly robust: mean(v_target + w (r - q_logged)).

    The model supplies the bulk of the value and the weights only correct its residuals, so the estimate is
    unbiased if either the propensities or the model are right, and its variance shrinks as the model
    improves. With q = 0 it reduces to IPS.
    """
    _check_alpha(alpha)
    a = _validated(rewards=rewards, logging_propensity=logging_propensity, target_probability=target_probability,
                   q_logged=q_logged, v_target=v_target)
    w = _weights(a["logging_propensity"], a["target_probability"], clip)
    terms = a["v_target"] + w * (a["rewards"] - a["q_logged"])
    return _estimate("dr", float(np.mean(terms)), _std_error(terms), alpha, terms.size, _ess(w), float(w.max()))


def direct_method(v_target: ArrayLike, alpha: float = 0.05) -> Estimate:
    """Direct method: mean of the model's expected reward under the target policy.

    The interval covers only the sampling of contexts; any bias of the reward model passes straight into the
    value, which is why DM is reported next to, never instead of, the weighted estimators.
    """
    _check_alpha(alpha)
    v = _validated(v_target=v_target)["v_target"]
    return _estimate("dm", float(np.mean(v)), _std_error(v), alpha, v.size, float(v.size), 0.0)


def evaluate(rewards: ArrayLike, logging_propensity: ArrayLike, target_probability: ArrayLike,
             q_logged: ArrayLike | None = None, v_target: ArrayLike | None = None,
             alpha: float = 0.05, clip: float | None = None) -> dict[str, Estimate]:
    """All applicable estimators by name: "ips" and "snips" always, "dr" and "dm" when a reward model is given.

    ``q_logged`` and ``v_target`` come from the same reward model, so giving only one is an error.
    """
    if (q_logged is None) != (v_target is None):
        raise ValueError("q_logged and v_target must be given together (both come from the reward model)")
    out = {"ips": ips(rewards, logging_propensity, target_probability, alpha, clip),
           "snips": snips(rewards, logging_propensity, target_probability, alpha, clip)}
    if q_logged is not None and v_target is not None:
        out["dr"] = doubly_robust(rewards, logging_propensity, target_probability, q_logged, v_target, alpha, clip)
        out["dm"] = direct_method(v_target, alpha)
    return out


def on_policy(rewards: ArrayLike, alpha: float = 0.05) -> Estimate:
    """The logging policy's own value: the plain mean reward (all weights 1), as a baseline for the others."""
    _check_alpha(alpha)
    r = _validated(rewards=rewards)["rewards"]
    return _estimate("on_policy", float(np.mean(r)), _std_error(r), alpha, r.size, float(r.size), 1.0)
