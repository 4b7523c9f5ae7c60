"""Benchmarks: speed and memory targets are measured here, never in timed tests."""

from __future__ import annotations

import datetime as dt
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pushgrowth.domain import TONES, VALUE_PROPOSITIONS
from pushgrowth.landing.zone import write_drop
from pushgrowth.sim import World, WorldConfig


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_outbox(world: World, country: str, share: float, seed: int) -> pd.DataFrame:
    """Pushes for `share` of the opted-in users today, with random wording, hours and coupons (the load)."""
    rng = np.random.default_rng(seed)
    pop = world.population(country)
    users = pop.user_id[pop.push_opt_in]
    users = users[rng.random(len(users)) < share]
    n = len(users)
    keys = pd.Series(np.arange(n)).astype(str)
    coupon = rng.choice([0.0, 10.0, 20.0], n)
    return pd.DataFrame({
        "country": country, "user_id": users, "campaign_id": "bench",
        "trace_id": "bench-" + world.today.isoformat() + "-" + keys,
        "idempotency_key": "bench-" + world.today.isoformat() + "-" + keys + "-0",
        "template_id": "t", "value_proposition": rng.choice(VALUE_PROPOSITIONS, n), "tone": rng.choice(TONES, n),
        "coupon_kind": np.where(coupon > 0, "amount", "none"), "coupon_value": coupon, "coupon_cap": 0.0,
        "coupon_code": np.where(coupon > 0, "BENCH", None), "send_date": pd.Timestamp(world.today),
        "send_hour_local": rng.integers(8, 22, n),
    })


def bench_sim(users: int, country: str = "MLB", days: int = 3, push_share: float = 0.15, seed: int = 7) -> dict:
    """Seconds per simulated day (pushes delivered and extracts written to Parquet) and peak RSS."""
    t0 = time.perf_counter()
    world = World(WorldConfig(users={country: users}, seed=seed))
    build = time.perf_counter() - t0
    per_day, pushes, rows = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for d in range(days):
            outbox = synthetic_outbox(world, country, push_share, seed + d)
            pushes += len(outbox)
            t = time.perf_counter()
            world.deliver(outbox)
            date = world.today
            tables = world.step()[country]
            write_drop(Path(tmp), country, date, tables)
            per_day.append(time.perf_counter() - t)
            rows += sum(tb.num_rows for tb in tables.values())
    return {
        "benchmark": "sim", "country": country, "users": users, "days": days,
        "seconds_per_day": round(float(np.mean(per_day)), 3), "max_seconds_per_day": round(max(per_day), 3),
        "build_seconds": round(build, 3), "pushes_per_day": pushes // days, "rows_per_day": rows // days,
        "peak_rss_mb": round(peak_rss_mb(), 1), "date": dt.date.today().isoformat(),
    }


def synthetic_context(world: World, country: str, seed: int) -> pd.DataFrame:
    """A `user_features`-shaped frame for every user of the World
    (plausible values; only its shape matters here)."""
    from pushgrowth.domain import CATEGORIES, LIFECYCLE_SEGMENTS, PLATFORMS

    rng = np.random.default_rng(seed)
    pop = world.population(country)
    n = pop.n
    shares = rng.dirichlet(np.ones(5), n)
    sessions = rng.poisson(8, n)
    orders = rng.poisson(0.3, n)
    return pd.DataFrame({
        "country": country, "date": world.today, "user_id": pop.user_id,
        "segment": np.asarray(LIFECYCLE_SEGMENTS)[rng.integers(0, 5, n)],
        "platform": np.asarray(PLATFORMS)[pop.platform], "push_opt_in": True, "mp_user": pop.mp_user,
        "category_interest": np.asarray(CATEGORIES)[pop.category],
        "days_since_signup": rng.integers(0, 2000, n), "days_since_last_session": rng.integers(0, 60, n),
        "days_since_last_order": rng.integers(0, 200, n).astype(float), "lifetime_orders": pop.lifetime_orders,
        "lifetime_gmv": pop.lifetime_gmv, "avg_order_value": pop.aov.astype(float),
        "sessions_28d": sessions, "orders_28d": orders, "gmv_28d": orders * pop.aov,
        "share_sessions_morning": shares[:, 0], "share_sessions_midday": shares[:, 1],
        "share_sessions_afternoon": shares[:, 2], "share_sessions_evening": shares[:, 3],
        "share_sessions_night": shares[:, 4], "share_sessions_weekend": rng.beta(2, 5, n),
        "session_hour_mean": rng.uniform(0, 24, n), "session_hour_concentration": rng.beta(2, 2, n),
        "usual_active_hour": rng.uniform(0, 24, n), "weekend_activity_share": rng.beta(2, 5, n),
        "pushes_7d": rng.integers(0, 3, n), "pushes_28d": rng.integers(0, 10, n),
        "opens_28d": rng.integers(0, 2, n),
        "open_rate_28d": rng.beta(1, 12, n), "coupon_redemptions_90d": rng.poisson(0.2, n),
        "coupon_discount_90d": rng.exponential(10, n),
        "days_since_last_push": rng.integers(0, 30, n).astype(float),
    })


def bench_assign(users: int, country: str = "MLM", seed: int = 7, campaigns_per_user: int = 3) -> dict:
    """Time one day of assignments for `users` eligible users with a trained model (all four heads).

    Every user is eligible for up to `campaigns_per_user` of the country's active campaigns with at least 1,000
    joint actions; the champion is a model trained on synthetic logged plans, so scoring is the real LightGBM
    work; budgets are the catalog's (pacing active). Reports the seconds of `assign` alone.
    """
    from pushgrowth.allocation.assign import DayInputs, assign
    from pushgrowth.allocation.pacing import budget_states
    from pushgrowth.campaigns.budget import budget_ledger, empty_redemptions
    from pushgrowth.bandit.features import FeatureSpec
    from pushgrowth.bandit.model import TrainConfig, fit
    from pushgrowth.bandit.policy import Options, cold_start, schedule_mask
    from pushgrowth.bandit.serving import ServingPolicy
    from pushgrowth.campaigns import load_catalog

    catalog = load_catalog()
    world = World(WorldConfig(users={country: users}, seed=seed))
    context = synthetic_context(world, country, seed)
    date = world.today
    big = [c for c in catalog.active(date, country) if c.joint_action_count >= 1000]
    if not big:
        raise ValueError(f"{country} has no active campaign with at least 1,000 joint actions on {date}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(big), (users, campaigns_per_user))
    audiences = pd.DataFrame({"user_id": np.repeat(context["user_id"].to_numpy(), campaigns_per_user),
                              "campaign_id": np.asarray([c.id for c in big])[picks.ravel()]}).drop_duplicates()
    audiences["weekly_pushes_left"] = catalog.policies[country].max_weekly_pushes

    # a model trained on 30k synthetic logged plans of the first campaign (cold start logging)
    sample = context.sample(30_000, random_state=seed, replace=users < 30_000).reset_index(drop=True)
    options = Options.of_campaign(big[0])
    mask = schedule_mask(np.ones((len(sample), 7), bool), np.full(len(sample), 5), options.space, date)
    idx, _ = cold_start(options, mask).sample(rng)
    train = pd.concat([sample, options.actions(idx).drop(columns="value_proposition")], axis=1)
    train["value_proposition"] = big[0].value_proposition
    train["pushes_delivered"] = train["frequency"].astype(float)
    base = 0.05 + 0.05 * train["hour_affinity"] if "hour_affinity" in train else 0.07
    train["reward_open"] = (rng.random(len(train)) < base).astype(float)
    train["reward_conversion"] = (rng.random(len(train)) < 0.03 + 0.0002 * train["coupon_value"]).astype(float)
    train["reward_net_revenue"] = rng.normal(5, 20, len(train)) - 0.1 * train["coupon_value"]
    train["redeemed"] = (rng.random(len(train)) < 0.1).astype(float)
    model = fit(train, FeatureSpec(reference_order_value=catalog.policies[country].reference_order_value),
                TrainConfig(min_rows=100, max_rounds=100))
    policy = ServingPolicy(model, f"bench-{country}", "1",
                           reference_order_value=catalog.policies[country].reference_order_value)
    # the budget ledger of the day before, nothing redeemed yet: the catalog's budgets, as pacing reads them
    ledger = budget_ledger(catalog, empty_redemptions(), date - dt.timedelta(days=1))
    budgets = budget_states(ledger, date, [c.id for c in big])
    inputs = DayInputs(date, country, catalog, audiences, context,
                       pd.DataFrame({"user_id": pd.Series(dtype="int64"),
                                     "send_date": pd.Series(dtype="datetime64[s]")}),
                       budgets, policy)
    t = time.perf_counter()
    result = assign(inputs)
    seconds = time.perf_counter() - t
    decisions = result.decisions
    return {
        "benchmark": "assign", "country": country, "users": users, "seconds": round(seconds, 2),
        "users_per_s": round(users / seconds), "peak_rss_mb": round(peak_rss_mb(), 1),
        "joint_actions_per_campaign": int(min(c.joint_action_count for c in big)),
        "max_joint_actions": int(max(c.joint_action_count for c in big)), "campaigns": len(big),
        "decisions": int(len(decisions)), "bandit_decisions": int((decisions["group"] == "bandit").sum()),
        "heads": sorted(model.heads), "date": dt.date.today().isoformat(),
    }


def bench_loop(users: int, days: int, countries: list[str], seed: int = 7, workers: int = 2,
               home_root: Path | None = None, profile: Path | None = None) -> dict:
    """The closed loop through the real definitions (`pushgrowth simulate`) on a fresh home folder, timed per
    stage (`pushgrowth.timing.STAGES`).

    `wall_seconds` is the elapsed time; a stage's `seconds` are summed over the processes that ran it (the main
    process and the workers overlap, so they add up to more than the wall time), and its `share` is of that
    sum. With `profile`, one cProfile dump per stage is written there (`<stage>.prof`).
    """
    import os
    import shutil

    from pushgrowth.home import ENV_VAR, Home
    from pushgrowth.simulate import simulate
    from pushgrowth.timing import STAGES

    with tempfile.TemporaryDirectory(prefix="pushgrowth-bench-") as tmp:
        home = Home.from_env(home_root or tmp)
        if home.root.exists():
            shutil.rmtree(home.root)
        home.root.mkdir(parents=True)
        os.environ[ENV_VAR] = str(home.root)
        config = WorldConfig.build(countries, users=users, seed=seed)
        t = time.perf_counter()
        result = simulate(home, config, days, workers=workers, profile=profile)
        wall = time.perf_counter() - t
    total = sum(result.timings.values()) or 1.0
    country_days = days * len(countries)
    return {
        "benchmark": "loop", "users": users, "days": days, "countries": countries, "workers": workers,
        "seed": seed, "runs": sum(len(d.runs) for d in result.days), "failures": len(result.failures),
        "wall_seconds": round(wall, 1), "seconds_per_country_day": round(wall / country_days, 2),
        "stage_seconds": round(total, 1),
        "stages": {name: {"seconds": round(result.timings[name], 2), "share": round(result.timings[name] / total, 3)}
                   for name in STAGES if result.timings.get(name)},
        "profile": str(profile) if profile else None,
        "peak_rss_mb": round(peak_rss_mb(), 1), "date": dt.date.today().isoformat(),
    }


def _loop_markdown(result: dict) -> list[str]:
    from pushgrowth.timing import STAGES

    country_days = result["days"] * len(result["countries"])
    lines = [f"### `pushgrowth bench loop --users {result['users']} --days {result['days']} --countries "
             f"{','.join(result['countries'])}` ({result['date']})", "",
             f"{result['wall_seconds']:,.0f} s wall, **{result['seconds_per_country_day']:.2f} s per simulated "
             f"country-day** ({country_days} country-days, {result['runs']} Dagster runs, {result['workers']} "
             f"workers, seed {result['seed']}, {result['failures']} failed runs, peak RSS of the main process "
             f"{result['peak_rss_mb']:,.0f} MB). Stage seconds are summed over the processes "
             f"({result['stage_seconds']:,.0f} s in all), so they add up to more than the wall time.", "",
             "| stage | seconds | share | per country-day | what it covers |", "|---|---:|---:|---:|---|"]
    for name, stage in sorted(result["stages"].items(), key=lambda kv: -kv[1]["seconds"]):
        lines.append(f"| {name} | {stage['seconds']:,.1f} | {100 * stage['share']:.1f}% | "
                     f"{stage['seconds'] / country_days:.2f} | {STAGES.get(name, '')} |")
    return lines


def page(results: list[dict]) -> str:
    """The benchmarks page (Markdown) from recorded results, one JSON object per benchmark run (the lines the
    `bench` commands print): the closed loop per stage, then the simulator and assignment benchmarks."""
    out = ["# Benchmarks", "",
           "Generated by `pushgrowth bench page` from the JSON lines the `pushgrowth bench` commands printed, on "
           "the reference machine (2 cores, 24 GiB), each run alone on the machine. Targets live here, never in "
           "timed tests.", ""]
    loops = [r for r in results if r.get("benchmark") == "loop"]
    if loops:
        out += ["## The closed loop", ""]
        for result in loops:
            out += [*_loop_markdown(result), ""]
    others = [r for r in results if r.get("benchmark") in ("sim", "assign")]
    if others:
        out += ["## One step at scale", "", "| benchmark | users | seconds | peak RSS (MB) | details |",
                "|---|---:|---:|---:|---|"]
        for r in others:
            if r["benchmark"] == "sim":
                seconds, details = r["seconds_per_day"], (f"{r['country']}, {r['days']} days, "
                                                          f"{r['pushes_per_day']:,} pushes a day, max "
                                                          f"{r['max_seconds_per_day']} s a day")
            else:
                seconds, details = r["seconds"], (f"{r['country']}, {r['users_per_s']:,} users/s, "
                                                  f"{r['campaigns']} campaigns of {r['joint_actions_per_campaign']:,}"
                                                  f" to {r['max_joint_actions']:,} joint actions")
            out.append(f"| `bench {r['benchmark']}` | {r['users']:,} | {seconds} | {r['peak_rss_mb']:,.0f} | "
                       f"{details} ({r['date']}) |")
        out.append("")
    out += ["## The recorded lines", "", "```json", *(json.dumps(r, sort_keys=True) for r in results), "```", ""]
    return "\n".join(out)
