"""Benchmarks: speed and memory targets are measured here, never in timed tests."""

from __future__ import annotations

import datetime as dt
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
