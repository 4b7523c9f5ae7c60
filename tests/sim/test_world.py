"""The World's API: determinism, the extract contract, delivery rules and persistence."""

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pushgrowth.landing.contract import TABLES
from pushgrowth.sim import World, WorldConfig
from tests.sim.conftest import outbox_for, small_world


def test_same_seed_same_data_and_other_seed_other_data():
    a, b, c = small_world(seed=3), small_world(seed=3), small_world(seed=4)
    for _ in range(2):
        da, db, dc = a.step(), b.step(), c.step()
    for country in da:
        for name in TABLES:
            assert da[country][name].equals(db[country][name]), (country, name)
    assert not da["MLB"]["users"].equals(dc["MLB"]["users"])


def test_countries_differ_in_size_currency_and_time_zones():
    world = small_world(users=1000)
    sizes = {c: world.population(c).n for c in world.countries}
    assert sizes["MLB"] > sizes["MLM"] > sizes["MLA"]
    day = world.step()
    assert set(day["MLB"]["orders"].column("currency").to_pylist()) == {"BRL"}
    assert set(day["MLA"]["orders"].column("currency").to_pylist()) == {"ARS"}
    assert len(set(day["MLB"]["users"].column("timezone").to_pylist())) >= 4
    assert len(set(day["MLM"]["users"].column("timezone").to_pylist())) >= 4
    mla_aov = np.mean(day["MLA"]["orders"].column("gmv").to_numpy())
    mlb_aov = np.mean(day["MLB"]["orders"].column("gmv").to_numpy())
    assert mla_aov > 100 * mlb_aov  # pesos versus reais


def test_every_extract_follows_the_contract():
    world = small_world()
    pop = world.population("MLM")
    users = pop.user_id[pop.push_opt_in][:200]
    actions = pd.DataFrame({"coupon_kind": "amount", "coupon_value": 50.0, "coupon_cap": 0.0,
                            "value_proposition": "free_shipping", "tone": "benefit", "template_id": "t",
                            "send_hour": 20, "send_weekday": world.today.weekday(), "frequency": 1},
                           index=range(len(users)))
    world.deliver(outbox_for(world, "MLM", users, actions))
    day = world.step()
    for name, table in day["MLM"].items():
        assert table.schema.equals(TABLES[name].schema), name
    users_table = day["MLM"]["users"]
    assert users_table.num_rows == pop.n
    assert pa.compute.all(pa.compute.equal(users_table.column("snapshot_date"),
                                           pa.scalar(dt.date(2026, 9, 1), pa.date32()))).as_py()
    sends = day["MLM"]["push_sends"].to_pandas()
    assert len(sends) == 200
    local = pd.to_datetime(sends["sent_at_local"])
    assert (local.dt.hour == 20).all()
    # local minus UTC is the zone's offset: Mexico's zones are between UTC-8 and UTC-5
    utc = pd.to_datetime(sends["sent_at_utc"]).dt.tz_localize(None)
    offset_h = (local - utc).dt.total_seconds() / 3600
    assert offset_h.between(-8, -5).all()


def test_a_push_is_never_delivered_twice():
    world = small_world()
    pop = world.population("MLB")
    users = pop.user_id[pop.push_opt_in][:50]
    actions = pd.DataFrame({"coupon_kind": "none", "coupon_value": 0.0, "coupon_cap": 0.0,
                            "value_proposition": "cart_reminder", "tone": "personal", "template_id": "t",
                            "send_hour": 10, "send_weekday": world.today.weekday(), "frequency": 1},
                           index=range(len(users)))
    outbox = outbox_for(world, "MLB", users, actions)
    first = world.deliver(pd.concat([outbox, outbox.iloc[:5]]))
    again = world.deliver(outbox)
    assert (first.accepted, first.duplicates) == (50, 5)
    assert (again.accepted, again.duplicates) == (0, 50)
    sends = world.step()["MLB"]["push_sends"].to_pandas()
    assert sends["idempotency_key"].is_unique and len(sends) == 50
    assert world.deliver(outbox).accepted == 0  # still refused once delivered
    assert len(world.step()["MLB"]["push_sends"]) == 0


def test_pushes_to_opted_out_unknown_or_late_users_fail_with_a_reason():
    world = small_world()
    pop = world.population("MLA")
    opted_out = pop.user_id[~pop.push_opt_in][:3]
    base = {"coupon_kind": "none", "coupon_value": 0.0, "coupon_cap": 0.0, "value_proposition": "loyalty",
            "tone": "benefit", "template_id": "t", "send_hour": 12, "send_weekday": world.today.weekday(),
            "frequency": 1}
    users = np.r_[opted_out, [1_999_999_999]]
    outbox = outbox_for(world, "MLA", users, pd.DataFrame(base, index=range(len(users))))
    world.deliver(outbox)
    sends = world.step()["MLA"]["push_sends"].to_pandas().set_index("user_id")
    assert (sends.loc[opted_out, "failure_reason"] == "not_opted_in").all()
    assert sends.loc[1_999_999_999, "failure_reason"] == "unknown_user"
    assert (sends["status"] == "failed").all()
    late = outbox_for(world, "MLA", pop.user_id[pop.push_opt_in][:2], pd.DataFrame(base, index=range(2)))
    late["send_date"] = pd.Timestamp(world.today - dt.timedelta(days=1))
    late["idempotency_key"] = late["idempotency_key"] + "-late"
    world.deliver(late)
    assert set(world.step()["MLA"]["push_sends"].column("failure_reason").to_pylist()) == {"expired"}


def test_outbox_with_bad_columns_is_refused_with_the_column_named():
    world = small_world()
    with pytest.raises(ValueError, match=r"missing columns \['tone'"):
        world.deliver(pd.DataFrame({"country": ["MLA"], "user_id": [1]}).assign(
            **{c: [None] for c in ("trace_id", "idempotency_key", "campaign_id", "template_id",
                                   "value_proposition")}))
    pop = world.population("MLA")
    base = {"coupon_kind": "none", "coupon_value": 0.0, "coupon_cap": 0.0, "value_proposition": "loyalty",
            "tone": "shouting", "template_id": "t", "send_hour": 12, "send_weekday": 0, "frequency": 1}
    outbox = outbox_for(world, "MLA", pop.user_id[:1], pd.DataFrame(base, index=[0]))
    with pytest.raises(ValueError, match="column tone has unknown values \\['shouting'\\]"):
        world.deliver(outbox)


def test_save_and_load_continue_identically(tmp_path):
    a = small_world(seed=9)
    a.step()
    a.save(tmp_path / "world")
    b = World.load(tmp_path / "world")
    assert b.today == a.today == dt.date(2026, 9, 2)
    da, db = a.step(), b.step()
    assert all(da[c][t].equals(db[c][t]) for c in da for t in TABLES)
    with pytest.raises(FileNotFoundError, match="no saved World"):
        World.load(tmp_path / "nowhere")


def test_config_rejects_unknown_countries():
    with pytest.raises(ValueError, match="unknown country 'XXX'"):
        WorldConfig(users={"XXX": 10})
    with pytest.raises(ValueError, match="not simulated"):
        small_world(countries=("MLA",)).population("MLB")


def test_extracts_of_a_day_do_not_change_when_the_world_moves_on():
    world = small_world(seed=6)
    day1 = world.step()
    frozen = {c: {t: tb.to_pandas() for t, tb in tables.items()} for c, tables in day1.items()}
    for _ in range(3):
        world.step()
    for country, tables in day1.items():
        for name, table in tables.items():
            pd.testing.assert_frame_equal(table.to_pandas(), frozen[country][name], obj=f"{country}.{name}")


def test_the_crm_usual_active_hour_stays_below_24():
    """An activity centred just before midnight rounds to 0.0, never to 24.0
    (the raw_users suite allows [0, 24))."""
    from types import SimpleNamespace

    from pushgrowth.sim.day import _activity_summary

    angle = -np.array([1e-6, 1e-5, 2e-4, 0.0, np.pi / 2])
    pop = SimpleNamespace(n=5, act_sin=np.sin(angle).astype(np.float32), act_cos=np.cos(angle).astype(np.float32),
                          act_weekend=np.ones(5, np.float32), act_total=np.full(5, 3.0, np.float32))
    hours = _activity_summary(pop)["usual_active_hour"].to_numpy(zero_copy_only=False)
    assert ((hours >= 0) & (hours < 24)).all(), hours
    np.testing.assert_allclose(hours, [0.0, 0.0, 23.999, 0.0, 18.0], atol=1e-9)
