"""The daily evaluation report of a country: is the bandit beating business-as-usual, and by how much?"""

import datetime as dt
import json

import dagster as dg

from pushgrowth.alerts import Alert
from pushgrowth.defs.automation.conditions import FOLLOW
from pushgrowth.defs.partitions import country_and_date, country_day_partitions
from pushgrowth.defs.resources import HomeResource, NotifierResource
from pushgrowth.evaluation import summary as evaluation
from pushgrowth.evaluation.models import model_summary
from pushgrowth.lake import partition_dir, read_partition
from pushgrowth.timing import timed

BURN_TOO_FAST = 1.25
"""A campaign whose coupon spend runs 25% ahead of an even pace gets an alert."""


def budget_rows(lake, country: str, date: dt.date) -> list[dict]:
    if not (partition_dir(lake, "budget_ledger", country, date) / "part-0.parquet").exists():
        return []
    ledger = read_partition(lake, "budget_ledger", country, date).to_pandas()
    ledger = ledger[ledger["month"] == date.replace(day=1)]
    keep = ["campaign_id", "budget", "committed", "remaining", "pace", "spent_share", "burn_ratio"]
    return ledger[[c for c in keep if c in ledger.columns]].to_dict(orient="records")


@dg.asset(
    automation_condition=FOLLOW,
    partitions_def=country_day_partitions,
    group_name="reports",
    kinds={"html", "json"},
    deps=["decision_log", "daily_assignments", "budget_ledger"],
    description="Per country and day: open rate, conversions and net revenue per group, ATE of BAU and bandit "
                "against holdout with 95% CIs, bandit-vs-BAU lift, results per bandit share, the serving model and "
                "its off-policy evidence, budget burn, and (in simulation) the oracle's value and regret. HTML with "
                "plots and JSON under <home>/reports/<COUNTRY>/<date>/.",
)
@timed("report")
def evaluation_report(context: dg.AssetExecutionContext, home: HomeResource, notifier: NotifierResource
                      ) -> dg.MaterializeResult:
    from pushgrowth.evaluation.render import render_html, render_markdown

    country, date = country_and_date(context)
    h = home.home
    frame = evaluation.decisions_frame(h.lake, country, date)
    oracle = evaluation.oracle_frame(h.lake, country, date)
    data = evaluation.country_summary(frame, oracle)
    data["models"] = model_summary(h, country)
    data["budget"] = budget_rows(h.lake, country, date)
    report = {"generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "as_of": date.isoformat(),
              "countries": {country: data}}
    folder = h.reports / country / date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(report, indent=2, default=str))
    html = render_html(report, folder / "report.html", title=f"pushgrowth {country} {date}")
    markdown = render_markdown(report)
    fast = [b for b in data["budget"] if (b.get("burn_ratio") or 0) > BURN_TOO_FAST]
    if fast:
        notifier.send(Alert("budget_pace", f"{country} {date}: coupon spend ahead of pace",
                            "\n".join(f"{b['campaign_id']}: {b['burn_ratio']:.2f}x the even pace" for b in fast[:10]),
                            severity="warning", fields={"country": country, "campaigns": str(len(fast))}),
                      context.log)
    notifier.send(Alert("daily_summary", f"{country} {date}: daily summary", markdown[:2500], severity="info",
                        fields={"report": str(html)}))
    groups = data.get("groups", {})
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.md(markdown),
        "report": dg.MetadataValue.path(str(html)),
        "json": dg.MetadataValue.path(str(folder / "summary.json")),
        "decisions": data.get("decisions", 0),
        "bandit_open_rate": groups.get("bandit", {}).get("open_rate") or 0.0,
        "bau_open_rate": groups.get("bau", {}).get("open_rate") or 0.0,
        "serving_model": data["models"]["serving_model"],
    })
