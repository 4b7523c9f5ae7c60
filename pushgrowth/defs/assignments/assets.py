"""Daily assignments and the push outbox, one (date, country) partition at a time.

The partition is the day whose data is used (its `user_features` and `audiences`); the decisions it writes are
for the next local day, when plans start. `daily_assignments` writes the decisions (and pacing) partition of
D + 1 and is gated by blocking checks; `push_outbox` turns the plans into pushes and hands them to the delivery
resource. Re-materializing a partition rewrites both files identically (seeded draws, deterministic ids), and
the delivery system refuses idempotency keys it has seen, so no push is ever sent twice.
"""

import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from pushgrowth import decisions as contract
from pushgrowth.allocation import invariants as checks
from pushgrowth.allocation.assign import assign
from pushgrowth.allocation.inputs import day_inputs
from pushgrowth.allocation.outbox import build_outbox
from pushgrowth.bandit import registry
from pushgrowth.bandit.serving import SETTINGS_KEY, ServingPolicy, ServingSettings
from pushgrowth.defs import reads
from pushgrowth.defs.automation.conditions import AFTER_MODELS, FOLLOW
from pushgrowth.defs.provenance import traced
from pushgrowth.defs.models.assets import BY_COUNTRY
from pushgrowth.defs.partitions import country_and_date, country_day_partitions, partition_key
from pushgrowth.defs.quality.checks import AUTOMATION
from pushgrowth.defs.resources import BanditSettings, DeliveryResource, HomeResource
from pushgrowth.storage import BUDGET_LEDGER, DECISIONS, OUTBOX, PACING, RAW
from pushgrowth.storage import lake as store
from pushgrowth.storage.catalog import published_catalog
from pushgrowth.timing import stage, timed

ASSIGNMENTS_KEY = dg.AssetKey("daily_assignments")


def _md(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.to_markdown(index=False) if len(frame) else "_none_")


def serving_policy(home, country: str, bandit: BanditSettings, catalog) -> ServingPolicy:
    """The champion of the country (read from the registry at every run, so a hand-set alias is honoured)."""
    return registry.serving_policy(home, registry.alias_ref(home, country, registry.CHAMPION), bandit.policy(),
                                   catalog.policies[country].reference_order_value)


class AssignmentConfig(dg.Config):
    """A delivered day is history: its re-run reproduces it (with the model version and settings logged with it)
    or fails. To rewrite one on purpose, set `correct_delivered_day` and say why in `correction_reason`: the
    day is then decided by today's champion and settings, and its decisions carry the correction."""

    correct_delivered_day: bool = False
    correction_reason: str = ""


def _delivered(h, country: str, date: dt.date) -> bool:
    """Whether the day's outbox went to delivery (push_outbox writes it before handing it over)."""
    return store.exists(h.lake, OUTBOX, country, date) and store.exists(h.lake, DECISIONS, country, date)


@dg.asset(
    automation_condition=AFTER_MODELS,
    partitions_def=country_day_partitions,
    group_name="assignments",
    kinds={"parquet"},
    deps=["audiences", "user_features", "budget_ledger", "campaign_catalog", "decisions",
          dg.AssetDep("model_promotion", partition_mapping=BY_COUNTRY)],
    description="Daily assignments: for the next local day, every eligible user's campaign, group (holdout / "
                "bau / bandit by stable hash), plan and exact propensity, with why, and the settings of the policy "
                "that served (the decisions log, read by dbt; plans in flight come from the days before).",
    metadata={"dagster/column_schema": dg.TableSchema(columns=[
        dg.TableColumn(f.name, str(f.type), constraints=dg.TableColumnConstraints(nullable=f.nullable))
        for f in contract.SCHEMA])},
)
@timed("assignments")
@traced
def daily_assignments(context: dg.AssetExecutionContext, config: AssignmentConfig, home: HomeResource,
                      bandit: BanditSettings) -> dg.MaterializeResult:
    country, data_date = country_and_date(context)
    h = home.home
    date = data_date + dt.timedelta(days=1)
    catalog = published_catalog(h.lake)
    delivered = _delivered(h, country, date)
    if config.correct_delivered_day and not config.correction_reason.strip():
        raise dg.Failure(description="correct_delivered_day needs a correction_reason (it is logged with the day)")
    logged = store.schema_metadata(h.lake, DECISIONS, country, date).get(SETTINGS_KEY) if delivered else None
    if logged and not config.correct_delivered_day:  # reproduce the day as it was decided
        policy = registry.logged_policy(h, ServingSettings.from_json(logged))
    else:
        policy = serving_policy(h, country, bandit, catalog)
    day = day_inputs(country, data_date, catalog, policy, **reads.assignment_frames(h.lake, country, data_date))
    result = assign(day)
    table = contract.to_table(result.decisions) if len(result.decisions) else contract.SCHEMA.empty_table()
    metadata = {SETTINGS_KEY: policy.settings.to_json()}
    if delivered:
        diff = contract.changes(store.read(h.lake, DECISIONS, country, date), table)
        if diff and not config.correct_delivered_day:
            raise dg.Failure(
                description=f"decisions of {country} {date} were delivered; re-running them would rewrite history: "
                            f"{diff.summary()}. Past decisions are reproduced from the model and settings logged "
                            "with them, so an input of the day changed. To rewrite the day on purpose, run with "
                            "config correct_delivered_day: true and a correction_reason (see the README).",
                metadata={"changed": diff.changed, "added": diff.added, "removed": diff.removed})
        if config.correct_delivered_day:
            metadata[contract.CORRECTION_KEY] = json.dumps({
                "reason": config.correction_reason, "run_id": context.run_id, "changed": diff.changed,
                "added": diff.added, "removed": diff.removed,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    path = store.write(h.lake, DECISIONS, country, day.date, table, metadata=metadata)
    store.write(h.lake, PACING, country, day.date, pa.Table.from_pandas(result.pacing, preserve_index=False))
    d = result.decisions
    context.log_event(dg.AssetMaterialization(  # the decisions log's partition of the day planned (dbt reads it)
        DECISIONS.asset, partition=partition_key(country, day.date), description=f"written by daily_assignments "
        f"of {data_date}", metadata={"dagster/row_count": len(d), "path": dg.MetadataValue.path(str(path))}))
    by_group = d.groupby(["group", "policy"]).size().rename("decisions").reset_index() if len(d) else pd.DataFrame()
    return dg.MaterializeResult(metadata={
        "decision_date": day.date.isoformat(),
        "history": ("corrected: " + config.correction_reason) if delivered and config.correct_delivered_day
        else "reproduced exactly (already delivered)" if delivered else "new day",
        "dagster/row_count": len(d),
        "path": dg.MetadataValue.path(str(path)),
        "serving_model": policy.label,
        "users_considered": int(day.audiences["user_id"].nunique()),
        "groups": _md(by_group),
        "pacing": _md(result.pacing.round(3).head(40)) if len(result.pacing) else "_none_",
        "campaign_pick": d["campaign_pick"].value_counts().to_dict() if len(d) else {},
        "min_propensity": float(d.loc[d["group"] == "bandit", "propensity"].min()) if (d["group"] == "bandit").any()
        else 1.0,
    })


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Two outboxes with the same pushes, sent the same way (row order aside)."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    a, b = (f.sort_values("idempotency_key", ignore_index=True).astype(str).fillna("<null>") for f in (a, b))
    return bool((a == b).all().all())


def _decisions(h, country: str, data_date: dt.date) -> pd.DataFrame:
    """The decisions daily_assignments of `data_date` wrote (those of the next day)."""
    return store.read_frame(h.lake, DECISIONS, country, data_date + dt.timedelta(days=1))


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(name, asset=ASSIGNMENTS_KEY, blocking=True, partitions_def=country_day_partitions,
                             description=description, automation_condition=AUTOMATION,
                             additional_deps=["raw_users", "budget_ledger", "decisions", "campaign_catalog"])
           for name, description in checks.ASSIGNMENT_CHECKS.items()],
    can_subset=True, name="assignment_checks",
    description="Blocking invariants of a day's assignments: nothing reaches the outbox unless they hold.",
)
def assignment_checks(context: dg.AssetCheckExecutionContext, home: HomeResource):
    country, data_date = country_and_date(context)
    h = home.home
    with stage("assignments"):
        catalog = published_catalog(h.lake)
        date = data_date + dt.timedelta(days=1)
        results = checks.check_assignments(
            _decisions(h, country, data_date), catalog, country, data_date,
            users=store.read_frame(h.lake, RAW["users"], country, data_date),
            previous=reads.previous_decisions(h.lake, country, date),
            ledger=reads.require(h.lake, BUDGET_LEDGER, country, data_date), data_docs_dir=h.reports / "data_docs")
    wanted = {k.name for k in context.selected_asset_check_keys}
    for name, (passed, details) in results.items():
        if name in wanted:
            yield dg.AssetCheckResult(check_name=name, asset_key=ASSIGNMENTS_KEY, passed=passed,
                                      description=details.get("summary"),
                                      metadata={k: (dg.MetadataValue.md(v) if k == "violations" else v)
                                                for k, v in details.items() if k != "summary"})


@dg.asset(
    automation_condition=FOLLOW,
    partitions_def=country_day_partitions,
    group_name="assignments",
    kinds={"parquet"},
    deps=[ASSIGNMENTS_KEY, "raw_users", "campaign_catalog"],
    description="The delivery-ready outbox of the next day's plans: one row per push with trace id, idempotency "
                "key, rendered wording, coupon and local send time, handed to the delivery resource.",
)
@timed("outbox")
@traced
def push_outbox(context: dg.AssetExecutionContext, home: HomeResource, delivery: DeliveryResource
                ) -> dg.MaterializeResult:
    country, data_date = country_and_date(context)
    h = home.home
    date = data_date + dt.timedelta(days=1)
    users = store.read_frame(h.lake, RAW["users"], country, data_date)
    decisions = _decisions(h, country, data_date)
    catalog = published_catalog(h.lake)
    outbox = build_outbox(decisions, catalog, users, date)
    problems = checks.outbox_problems(outbox, decisions, users, catalog=catalog,
                                      earlier=reads.earlier_outboxes(h.lake, country, date), date=date)
    if problems:
        raise dg.Failure(description=f"outbox {country} {date} refused: " + "; ".join(problems[:5]))
    if store.exists(h.lake, OUTBOX, country, date):  # a day already handed to delivery
        before = store.read_frame(h.lake, OUTBOX, country, date)
        corrected = contract.CORRECTION_KEY in store.schema_metadata(h.lake, DECISIONS, country, date)
        new_keys = set(outbox["idempotency_key"]) ^ set(before["idempotency_key"])
        if (new_keys or not _same(before, outbox)) and not corrected:
            raise dg.Failure(description=f"outbox {country} {date} was delivered and this one differs "
                                         f"({len(new_keys)} keys not in both): a delivered day is only rewritten by "
                                         "a correction of its decisions (see daily_assignments' config)")
    path = store.write(h.lake, OUTBOX, country, date, outbox)
    report = delivery.client().deliver(outbox, country, date)
    per_day = outbox.groupby(outbox["send_date"].dt.date.astype(str)).size().rename("pushes").reset_index() \
        if len(outbox) else pd.DataFrame()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(outbox), "path": dg.MetadataValue.path(str(path)),
        "delivered_to": report.target, "accepted": report.accepted, "duplicates": report.duplicates,
        "with_coupon": int((outbox["coupon_value"] > 0).sum()) if len(outbox) else 0,
        "pushes_per_send_date": _md(per_day),
        "sample": _md(outbox[["user_id", "campaign_id", "group", "send_date", "send_hour_local", "title"]]
                      .head(10).astype(str)) if len(outbox) else "_none_",
        "unique_users": int(outbox["user_id"].nunique()) if len(outbox) else 0,
        "max_pushes_per_user_day": int(outbox.groupby(["user_id", "send_date"]).size().max()) if len(outbox) else 0,
        "propensity_min": float(np.nanmin(outbox["propensity"])) if len(outbox) else 1.0,
    })


assignment_job = dg.define_asset_job(
    "assignment_job", selection=dg.AssetSelection.assets(ASSIGNMENTS_KEY, push_outbox, "evaluation_report"),
    partitions_def=country_day_partitions,
    description="Assign tomorrow's plans for one country-day, hand the outbox to delivery, report the day.")
