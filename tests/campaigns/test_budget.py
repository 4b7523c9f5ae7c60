"""The budget ledger on small hand-made redemptions and decisions frames."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pushgrowth.campaigns import UnknownCampaignsError, budget_ledger, load_catalog
from pushgrowth.campaigns.budget import campaign_totals
from tests.campaigns.conftest import CAMPAIGN_ID, campaign, country_file, write_catalog

AS_OF = dt.date(2026, 9, 15)


@pytest.fixture
def catalog(tmp_path):
    a = campaign(**{"budget.monthly": 40_000})  # cost share 0.5
    b = campaign(**{"id": "mlb-b", "country": "MLB", "budget.currency": "BRL", "budget.monthly": 2_000,
                    "coupon.values": [10, 20], "coupon.cost_share": 1.0, "bau.coupon": 10,
                    "params.min_purchase": 79})
    draft = campaign(**{"id": "mla-borrador", "schedule.status": "draft"})
    return load_catalog(write_catalog(tmp_path / "cat", {"MLA.yaml": country_file("MLA", a, draft),
                                                         "MLB.yaml": country_file("MLB", b)}))


def redemptions(rows: list[tuple[str, float, str, str]]) -> pd.DataFrame:
    return pd.DataFrame({
        "redemption_id": range(len(rows)), "order_id": range(100, 100 + len(rows)), "user_id": [7] * len(rows),
        "trace_id": [f"pg-{i}" for i in range(len(rows))], "campaign_id": [r[0] for r in rows],
        "coupon_code": ["C"] * len(rows), "discount_amount": [r[1] for r in rows],
        "redeemed_at_utc": pd.to_datetime([r[2] for r in rows], utc=True), "country": [r[3] for r in rows],
    })


def decisions(rows: list[tuple[str, str, str, str, float]]) -> pd.DataFrame:
    """(trace_id, date, campaign_id, group, expected_cost) rows."""
    return pd.DataFrame(rows, columns=["trace_id", "date", "campaign_id", "group", "expected_cost"]).assign(
        date=lambda f: pd.to_datetime(f["date"]).dt.date)


def test_committed_spend_pace_and_burn_per_group_and_campaign(catalog):
    frame = redemptions([
        (CAMPAIGN_ID, 2000, "2026-09-01 02:00", "MLA"),   # 23:00 on Aug 31 in Buenos Aires: August, not shown
        (CAMPAIGN_ID, 3500, "2026-09-10 15:00", "MLA"),
        (CAMPAIGN_ID, 5000, "2026-09-16 02:30", "MLA"),   # 23:30 on Sep 15 local: still as of the 15th
        (CAMPAIGN_ID, 5000, "2026-09-16 12:00", "MLA"),   # after as_of: ignored
    ])
    sent = decisions([("pg-1", "2026-09-08", CAMPAIGN_ID, "bandit", 0.0),
                      ("pg-2", "2026-09-14", CAMPAIGN_ID, "bau", 0.0)])
    ledger = budget_ledger(catalog, frame, AS_OF, decisions=sent)
    assert ledger[["campaign_id", "group", "month"]].astype(str).values.tolist() == [
        [CAMPAIGN_ID, "bandit", "2026-09-01"], [CAMPAIGN_ID, "bau", "2026-09-01"],
        ["mlb-b", "bandit", "2026-09-01"], ["mlb-b", "bau", "2026-09-01"]]
    rows = ledger.set_index(["campaign_id", "group"])
    shares = catalog.get(CAMPAIGN_ID).shares
    bandit_part = shares.bandit / (shares.bau + shares.bandit)
    assert rows.loc[(CAMPAIGN_ID, "bandit"), "budget"] == pytest.approx(40_000 * bandit_part)
    assert rows.loc[(CAMPAIGN_ID, "bandit"), "committed"] == 3500 * 0.5      # cost share 0.5
    assert rows.loc[(CAMPAIGN_ID, "bau"), "committed"] == 5000 * 0.5
    september = campaign_totals(ledger, dt.date(2026, 9, 1)).set_index("campaign_id")
    row, brazil = september.loc[CAMPAIGN_ID], september.loc["mlb-b"]
    assert row["committed"] == (3500 + 5000) * 0.5 == 4250 and row["redemptions"] == 2
    assert row["budget"] == pytest.approx(40_000) and row["remaining"] == pytest.approx(40_000 - 4250)
    assert row["pace"] == 0.5 and row["spent_share"] == pytest.approx(4250 / 40_000)
    assert row["burn_ratio"] == pytest.approx(4250 / 40_000 / 0.5)
    assert brazil["committed"] == 0 and brazil["currency"] == "BRL" and brazil["burn_ratio"] == 0
    assert set(ledger[["days_in_month", "days_elapsed", "days_remaining"]].itertuples(index=False)) == {(30, 15, 15)}


def test_the_scale_applies_once_to_every_group_budget(catalog):
    full = budget_ledger(catalog, redemptions([]), AS_OF)
    scaled = budget_ledger(catalog, redemptions([]), AS_OF, scale=0.01)
    assert scaled["budget"].to_numpy() == pytest.approx(full["budget"].to_numpy() * 0.01)
    assert (scaled["monthly_budget"] == full["monthly_budget"]).all() and (scaled["scale"] == 0.01).all()
    with pytest.raises(ValueError, match="positive number"):
        budget_ledger(catalog, redemptions([]), AS_OF, scale=0)


def test_spend_no_decision_explains_is_counted_without_a_budget(catalog):
    frame = redemptions([(CAMPAIGN_ID, 1000, "2026-09-10 15:00", "MLA")])
    ledger = budget_ledger(catalog, frame, AS_OF)
    stray = ledger[ledger["group"] == "unattributed"].iloc[0]
    assert stray["committed"] == 500 and stray["budget"] == 0
    assert campaign_totals(ledger, dt.date(2026, 9, 1)).set_index("campaign_id").loc[CAMPAIGN_ID, "committed"] == 500


def test_coupons_in_flight_are_charged_to_the_next_decision_days_month(catalog):
    sent = decisions([("pg-0", "2026-09-29", CAMPAIGN_ID, "bandit", 300.0),     # redeemed in part: 400 x 0.5
                      ("pg-9", "2026-09-30", CAMPAIGN_ID, "bau", 120.0),
                      ("pg-8", "2026-09-20", CAMPAIGN_ID, "bau", 999.0)])         # older than the validity
    frame = redemptions([(CAMPAIGN_ID, 400, "2026-09-30 15:00", "MLA")])
    ledger = budget_ledger(catalog, frame, dt.date(2026, 9, 30), decisions=sent)
    assert sorted(set(ledger["month"].astype(str))) == ["2026-09-01", "2026-10-01"]
    october = ledger[ledger["month"] == dt.date(2026, 10, 1)].set_index(["campaign_id", "group"])
    assert october.loc[(CAMPAIGN_ID, "bandit"), "outstanding"] == pytest.approx(300 - 200)
    assert october.loc[(CAMPAIGN_ID, "bau"), "outstanding"] == pytest.approx(120)
    assert (october["committed"] == 0).all() and (october["days_elapsed"] == 0).all()
    september = ledger[ledger["month"] == dt.date(2026, 9, 1)]
    assert (september["outstanding"] == 0).all()
    assert september.set_index(["campaign_id", "group"]).loc[(CAMPAIGN_ID, "bandit"), "committed"] == 200


def test_overspending_shows_as_negative_remaining_and_burn_above_one(catalog):
    frame = redemptions([("mlb-b", 1500, "2026-09-03 15:00", "MLB"), ("mlb-b", 900, "2026-09-04 15:00", "MLB")])
    row = campaign_totals(budget_ledger(catalog, frame, dt.date(2026, 9, 6)),
                          dt.date(2026, 9, 1)).set_index("campaign_id").loc["mlb-b"]
    assert row["committed"] == 2400 and row["remaining"] == pytest.approx(-400)
    assert row["burn_ratio"] == pytest.approx((2400 / 2000) / (6 / 30))


def test_redemptions_of_unknown_campaigns_are_an_error_naming_them(catalog):
    frame = redemptions([("mla-fantasma", 100, "2026-09-03 15:00", "MLA"),
                         ("mlm-x", 1, "2026-09-03 15:00", "MLM")])
    with pytest.raises(UnknownCampaignsError, match="not in the catalog: mla-fantasma, mlm-x") as err:
        budget_ledger(catalog, frame, AS_OF)
    assert err.value.campaign_ids == ["mla-fantasma", "mlm-x"]


def test_malformed_redemptions_are_refused(catalog):
    good = redemptions([(CAMPAIGN_ID, 2000, "2026-09-03 15:00", "MLA")])
    with pytest.raises(ValueError, match="lack columns"):
        budget_ledger(catalog, good.drop(columns="discount_amount"), AS_OF)
    with pytest.raises(ValueError, match="tz-aware"):
        budget_ledger(catalog, good.assign(redeemed_at_utc=pd.Timestamp("2026-09-03 15:00")), AS_OF)
    with pytest.raises(ValueError, match="another country"):
        budget_ledger(catalog, good.assign(country="MLB"), AS_OF)


def test_no_redemptions_gives_a_row_per_running_campaign(catalog):
    ledger = budget_ledger(catalog, redemptions([]), AS_OF)
    assert sorted(set(ledger["campaign_id"])) == [CAMPAIGN_ID, "mlb-b"] and len(ledger) == 4
    assert (ledger["committed"] == 0).all()
