"""The budget ledger on a small hand-made redemptions frame."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pushgrowth.campaigns import UnknownCampaignsError, budget_ledger, load_catalog
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


def test_committed_spend_pace_and_burn(catalog):
    frame = redemptions([
        (CAMPAIGN_ID, 2000, "2026-09-01 02:00", "MLA"),   # 23:00 on Aug 31 in Buenos Aires: August
        (CAMPAIGN_ID, 3500, "2026-09-10 15:00", "MLA"),
        (CAMPAIGN_ID, 5000, "2026-09-16 02:30", "MLA"),   # 23:30 on Sep 15 local: still as of the 15th
        (CAMPAIGN_ID, 5000, "2026-09-16 12:00", "MLA"),   # after as_of: ignored
    ])
    ledger = budget_ledger(catalog, frame, AS_OF)
    assert ledger[["campaign_id", "month"]].astype(str).values.tolist() == [
        [CAMPAIGN_ID, "2026-08-01"], [CAMPAIGN_ID, "2026-09-01"], ["mlb-b", "2026-09-01"]]
    august, september, brazil = (row for _, row in ledger.iterrows())
    assert august["committed"] == 1000 and august["days_elapsed"] == 31 and august["days_remaining"] == 0
    assert august["pace"] == 1.0 and august["burn_ratio"] == pytest.approx(0.025)
    assert september["committed"] == (3500 + 5000) * 0.5 == 4250 and september["redemptions"] == 2
    assert september["remaining"] == 40_000 - 4250 and september["budget"] == 40_000
    assert (september["days_in_month"], september["days_elapsed"], september["days_remaining"]) == (30, 15, 15)
    assert september["pace"] == 0.5 and september["spent_share"] == pytest.approx(4250 / 40_000)
    assert september["burn_ratio"] == pytest.approx(4250 / 40_000 / 0.5)
    assert brazil["committed"] == 0 and brazil["currency"] == "BRL" and brazil["burn_ratio"] == 0


def test_overspending_shows_as_negative_remaining_and_burn_above_one(catalog):
    frame = redemptions([("mlb-b", 1500, "2026-09-03 15:00", "MLB"), ("mlb-b", 900, "2026-09-04 15:00", "MLB")])
    row = budget_ledger(catalog, frame, dt.date(2026, 9, 6)).set_index("campaign_id").loc["mlb-b"]
    assert row["committed"] == 2400 and row["remaining"] == -400
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
    assert sorted(ledger["campaign_id"]) == [CAMPAIGN_ID, "mlb-b"]
    assert (ledger["committed"] == 0).all()
