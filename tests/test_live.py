"""`pushgrowth live`: the World on a clock, playing the marketplace for a platform that runs by itself."""

import datetime as dt

import pandas as pd
import pytest

from pushgrowth.delivery import FileDelivery
from pushgrowth.home import Home
from pushgrowth.landing.zone import list_drops
from pushgrowth.live import LiveWorld, run_live
from pushgrowth.sim import World, WorldConfig
from pushgrowth.simulate import simulate

CONFIG = WorldConfig.build(("MLA", "MLB"), users=200, seed=3)


@pytest.fixture
def env(tmp_path, monkeypatch):
    home = Home.from_env(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(home.dagster))
    monkeypatch.setenv("PUSHGROWTH_HOME", str(home.root))
    return home


def test_each_tick_drops_the_next_day_and_keeps_the_world(env):
    world = LiveWorld(env, CONFIG)
    ticks = run_live(world, days=2, every=0, wait=0, on_tick=lambda t: None)
    start = CONFIG.start_date
    assert [t.date for t in ticks] == [start, start + dt.timedelta(days=1)]
    assert ticks[0].late == []                        # nobody planned the first day
    assert ticks[1].late == ["MLA", "MLB"]            # no platform ran: the second day lived without plans
    assert {(d.country, d.date) for d in list_drops(env.landing)} == {
        (c, start + dt.timedelta(days=i)) for c in ("MLA", "MLB") for i in (0, 1)}
    assert World.load(env.world).today == start + dt.timedelta(days=2)  # saved after every day
    again = LiveWorld(env, resume=True)
    assert again.step().date == start + dt.timedelta(days=2)


def test_a_new_world_refuses_to_start_without_its_settings(env):
    with pytest.raises(ValueError, match="needs a WorldConfig"):
        LiveWorld(env)


def test_the_platforms_plans_reach_the_world_once(env):
    """After a day the platform planned (here by `simulate`, which delivered the outbox itself), the live World
    hands the same outbox over again and sends nothing twice; the pushes show in the next day's send log."""
    simulate(env, CONFIG, days=1)
    world = LiveWorld(env, resume=True)
    tomorrow = world.world.today
    assert world.plans_ready(tomorrow) == ["MLA", "MLB"]
    tick = world.step(wait=0)
    assert tick.date == tomorrow and tick.late == []
    assert tick.delivered == {"MLA": 0, "MLB": 0}    # every push already received: none queued twice
    outbox = pd.read_parquet(FileDelivery(env.outbox).path("MLB", tomorrow))
    drop = next(d for d in list_drops(env.landing) if d.country == "MLB" and d.date == tomorrow)
    sends = pd.read_parquet(drop.path / "push_sends.parquet")
    due = outbox[outbox["send_date"].dt.date == tomorrow]
    assert len(due) and set(due["idempotency_key"]) <= set(sends["idempotency_key"])
    assert sends["idempotency_key"].is_unique


def test_one_driver_per_home_and_a_killed_one_frees_it(env):
    """A second `simulate` (or `live`) on a home in use is refused, naming the holder; a holder killed with
    SIGKILL leaves nothing held (the OS drops its lock), so `--resume` can go on."""
    import os
    import signal
    import subprocess
    import sys

    from pushgrowth.simulate import HomeInUse, driving

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom pushgrowth.home import Home\n"
         "from pushgrowth.simulate import driving\nwith driving(Home(Path(sys.argv[1]))):\n"
         "    print('held', flush=True)\n    time.sleep(120)\n", str(env.root)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(HomeInUse, match=rf"in use by pid {holder.pid}: one simulation"):
            simulate(env, CONFIG, days=1)
        with pytest.raises(HomeInUse):
            with driving(env):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    with driving(env):  # free again, though the killed holder never released it
        assert (env.root / "world.lock.pid").read_text() == f"pid {os.getpid()}"
