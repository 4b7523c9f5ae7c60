"""The campaign catalog and the budget ledger as assets."""

import datetime as dt

import dagster as dg
import pandas as pd
import pyarrow as pa

from pushgrowth.campaigns import budget_ledger, read_catalog
from pushgrowth.campaigns.cli import country_summary
from pushgrowth.catalog_store import publish, published_catalog, published_version
from pushgrowth.defs.automation.conditions import FOLLOW
from pushgrowth.defs.partitions import country_and_date, country_day_partitions
from pushgrowth.defs.resources import HomeResource
from pushgrowth.lake import partition_dir, read_partition, write_partition
from pushgrowth.timing import timed


def _markdown(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.to_markdown(index=False) if len(frame) else "_none_")


@dg.asset(
    group_name="campaigns",
    kinds={"yaml", "parquet"},
    description="The campaign catalog (campaigns/*.yaml), validated and published to lake/catalog/ when valid.",
)
def campaign_catalog(context: dg.AssetExecutionContext, home: HomeResource) -> dg.MaterializeResult:
    build = read_catalog()
    today = dt.date.today()
    active = pd.DataFrame(
        [{"campaign": c.id, "country": c.country, "value proposition": c.value_proposition,
          "objective": c.objective, "shares (h/bau/bandit)": f"{c.shares.holdout}/{c.shares.bau}/{c.shares.bandit}",
          "monthly budget": f"{c.budget.currency} {c.budget.monthly:,.0f}", "joint actions": c.joint_action_count}
         for c in build.campaigns if c.schedule.status == "active"]
    )
    metadata = {
        "version": build.version,
        "valid": not build.problems,
        "problems": len(build.problems),
        "campaigns": len(build.campaigns),
        "active_campaigns": _markdown(active),
        "countries": dg.MetadataValue.json(country_summary(build.campaigns, today)),
    }
    if build.problems:
        metadata["published_version"] = published_version(home.home.lake) or "none"
        context.log.error(f"catalog {build.version[:12]} has {len(build.problems)} problems; not published")
    else:
        rows = publish(build.catalog(), home.home.lake)
        metadata["published_version"] = build.version
        metadata.update({f"rows/{k}": v for k, v in rows.items()})
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(build.version))


PUBLISHED_TABLES = [
    dg.AssetSpec(["catalog", name], deps=[campaign_catalog], group_name="campaigns", kinds={"parquet"},
                 description=f"lake/catalog/{name}.parquet: the `{name}` table of the last valid catalog, written "
                             "by campaign_catalog; dbt reads it as a source.")
    for name in ("campaigns", "campaign_segments", "campaign_audience", "country_policies")
]


@dg.asset_check(asset=campaign_catalog, blocking=True, description="Every pre-activation rule passes.")
def catalog_is_valid() -> dg.AssetCheckResult:
    problems = read_catalog().problems
    table = pd.DataFrame([p.to_dict() for p in problems])
    return dg.AssetCheckResult(
        passed=not problems,
        description=f"{len(problems)} problems" + (f"; first: {problems[0]}" if problems else ""),
        metadata={"problems": len(problems), "details": _markdown(table)},
    )


@dg.asset(
    name="budget_ledger",
    automation_condition=FOLLOW,
    group_name="campaigns",
    partitions_def=country_day_partitions,
    deps=[campaign_catalog, "raw_coupon_redemptions"],
    kinds={"parquet"},
    description="Per campaign and month: budget, coupon spend committed by redemptions so far, remaining, pace "
                "(budgets of the published catalog, the one assignments serve).",
)
@timed("budget")
def budget_ledger_asset(context: dg.AssetExecutionContext, home: HomeResource) -> dg.MaterializeResult:
    country, date = country_and_date(context)
    catalog = published_catalog(home.home.lake)  # what assignments serve, not the YAML being edited
    month_days = [date.replace(day=d) for d in range(1, date.day + 1)]
    frames = [read_partition(home.home.lake, "raw/coupon_redemptions", country, d).to_pandas()
              for d in month_days if (partition_dir(home.home.lake, "raw/coupon_redemptions", country, d)).exists()]
    redemptions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["redemption_id", "order_id", "user_id", "trace_id", "campaign_id", "coupon_code",
                 "discount_amount", "redeemed_at_utc", "country"])
    ledger = budget_ledger(catalog, redemptions, as_of=date)
    ledger = ledger[ledger["country"] == country].reset_index(drop=True)
    write_partition(home.home.lake, "budget_ledger", country, date, pa.Table.from_pandas(ledger, preserve_index=False))
    current = ledger[ledger["month"] == date.replace(day=1)]
    shown = current[["campaign_id", "budget", "committed", "remaining", "pace", "burn_ratio"]]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(ledger),
        "committed": float(current["committed"].sum()),
        "budget": float(current["budget"].sum()),
        "ledger": _markdown(shown.sort_values("burn_ratio", ascending=False).head(30)),
    })
