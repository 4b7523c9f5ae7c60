"""The per-country summary's cuts that the report and `summary.json` add on top of `stats`."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pushgrowth.evaluation import stats
from pushgrowth.evaluation.summary import country_summary, expected_open_rate, pooled, since_first_model

START = dt.date(2026, 9, 2)


def decisions(days: int = 6, users: int = 3000, cold_days: int = 2, seed: int = 0) -> pd.DataFrame:
    """BAU opens at 6%; the bandit at 5% while cold, then 9% once a model serves it."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(days):
        date = START + dt.timedelta(days=d)
        group = rng.choice(["bau", "bandit", "holdout"], users, p=[0.45, 0.45, 0.1])
        cold = d < cold_days
        policy = np.where(group == "bandit", "cold_start" if cold else "bandit", group)
        rate = np.where(group == "bau", 0.06, np.where(group == "bandit", 0.05 if cold else 0.09, 0.0))
        sent = np.where(group == "holdout", 0, 1)
        rows.append(pd.DataFrame({
            "country": "MLB", "date": date, "user_id": rng.integers(0, 5 * users, users), "group": group,
            "campaign_id": "mlb-c", "share_bandit": 0.45,
            "policy": policy, "pushes_delivered": sent.astype(float),
            "opens": (sent * (rng.random(users) < rate)).astype(float),
            "net_revenue": rng.gamma(0.5, 10.0, users), "converted": False}))
    return pd.concat(rows, ignore_index=True)


def test_since_first_model_leaves_out_the_cold_start_days_only():
    frame = decisions()
    out = since_first_model(frame)
    assert out["first_date"] == (START + dt.timedelta(days=2)).isoformat()
    served = frame[frame["date"] >= START + dt.timedelta(days=2)]
    assert out["decisions"] == len(served)
    expected = stats.lift(served, "bandit", "bau", "open_rate")
    assert out["open_rate"]["estimate"] == pytest.approx(expected.estimate)
    assert out["open_rate"]["ci_low"] > 0.01  # 9% vs 6% on 4 days of 2,700 sends a group
    whole = stats.lift(frame, "bandit", "bau", "open_rate")
    assert whole.estimate < out["open_rate"]["estimate"]  # the cold days dilute the whole-run lift


def test_since_first_model_is_empty_before_any_model_served():
    frame = decisions(days=2, cold_days=2)
    assert since_first_model(frame) == {"first_date": None}
    assert since_first_model(frame.drop(columns="policy")) == {"first_date": None}


def test_expected_open_rate_weights_each_plan_by_its_delivered_pushes():
    """The oracle's open rate per delivered push: a two-push plan counts twice, undelivered plans and holdout not
    at all, and the lift is bandit minus BAU on it, whatever the realized opens."""
    frame = pd.DataFrame({"trace_id": list("abcdef"), "group": ["bau", "bau", "bandit", "bandit", "bandit",
                                                                "holdout"],
                          "pushes_delivered": [1.0, 1.0, 2.0, 1.0, 0.0, 0.0], "opens": [1.0, 1.0, 0, 0, 0, 0]})
    oracle = pd.DataFrame({"trace_id": list("abcdef"), "open_rate": [0.04, 0.06, 0.09, 0.03, 0.5, np.nan]})
    out = expected_open_rate(oracle, frame)
    assert out["open_rate"]["bau"] == pytest.approx(0.05)
    assert out["open_rate"]["bandit"] == pytest.approx((2 * 0.09 + 0.03) / 3)
    assert out["open_rate_lift_bandit_vs_bau"] == pytest.approx(0.07 - 0.05)
    assert expected_open_rate(oracle, frame[frame["group"] != "bandit"])["open_rate_lift_bandit_vs_bau"] is None


def test_country_summary_states_what_each_comparison_can_detect_and_what_the_oracle_expects():
    frame = decisions(days=4, users=2000, seed=3)
    frame = frame.assign(trace_id=[f"t{i}" for i in range(len(frame))], is_mature=True,
                         converted=frame["converted"].astype(bool))
    rng = np.random.default_rng(4)
    treated = frame["group"] != "holdout"
    oracle = pd.DataFrame({
        "trace_id": frame["trace_id"], "date": frame["date"], "group": frame["group"], "objective": "open",
        "value": np.where(treated, 0.07, 0.0), "best": np.where(treated, 0.2, np.nan),
        "open_rate": np.where(frame["group"] == "bandit", 0.09, np.where(treated, 0.06, np.nan)),
        "incremental_net_revenue": np.where(frame["group"] == "bandit", 1.0, 0.0) + rng.normal(0, 0.01, len(frame)),
    })
    out = country_summary(frame, oracle)
    sens = out["sensitivity"]
    for key in ("open_rate", "net_revenue_per_user"):
        se = out["lift_bandit_vs_bau"][key]["std_error"]
        assert sens[key]["mde"] == pytest.approx(2.8016 * se, rel=1e-3)
    assert sens["open_rate"]["expected"] == pytest.approx(0.03, abs=1e-9)  # 9% vs 6% per delivered push
    assert sens["net_revenue_per_user"]["expected"] == pytest.approx(1.0, abs=0.005)
    assert sens["open_rate"]["power"] > 0.99 and sens["open_rate"]["decisions_multiple"] < 1
    assert 0 < sens["net_revenue_per_user"]["power"] < 1
    without = country_summary(frame)
    assert without["sensitivity"]["open_rate"]["expected"] is None
    assert without["sensitivity"]["open_rate"]["mde"] == pytest.approx(sens["open_rate"]["mde"])


def test_pooled_summary_expects_the_oracle_difference_by_the_same_estimator():
    frames, oracles = {}, {}
    for k, country in enumerate(("MLB", "MLM")):
        f = decisions(days=3, users=1500, seed=10 + k).assign(country=country)
        f = f.assign(trace_id=[f"{country}{i}" for i in range(len(f))], is_mature=True)
        frames[country] = f
        oracles[country] = pd.DataFrame({"trace_id": f["trace_id"], "country": country, "group": f["group"],
                                         "user_id": f["user_id"],
                                         "incremental_net_revenue": np.where(f["group"] == "bandit", 2.0, 0.5)
                                         * (f["group"] != "holdout")})
    out = pooled(frames, oracles=oracles)
    sens = out["sensitivity"]["difference_bandit_minus_bau"]
    fx = out["fx_usd_per_unit"]
    assert sens["expected"] == pytest.approx(1.5 * np.average(list(fx.values()),
                                                              weights=[len(frames["MLB"]), len(frames["MLM"])]),
                                             rel=0.05)
    assert sens["mde"] == pytest.approx(2.8016 * out["difference_bandit_minus_bau"]["std_error"], rel=1e-3)
    assert pooled(frames)["sensitivity"]["difference_bandit_minus_bau"]["expected"] is None


def test_pooled_is_empty_before_any_decision_is_logged():
    """After a first day nothing is in the decision log yet (the decisions are read back the next day)."""
    assert pooled({"MLA": pd.DataFrame(), "MLB": pd.DataFrame({"trace_id": pd.Series(dtype=str)})}) == {}
