"""Country bandits: the daily training (`bandit_model`) and the promotion gate (`model_promotion`).

Both are partitioned by country and read the decision log of the training window
(`BanditSettings.training_window_days`, six weeks by default) with the user features of the day before each
decision. Each training is an MLflow run registered as `pushgrowth-bandit-<COUNTRY>@challenger`;
the gate moves `@champion` only on evidence, and assignments serve whatever `@champion` points at.
"""

import dagster as dg
import pandas as pd

from pushgrowth.alerts import Alert
from pushgrowth.bandit import registry
from pushgrowth.bandit.features import ACTION_COLUMNS
from pushgrowth.bandit.model import TrainConfig
from pushgrowth.bandit.training import TrainingResult, evaluate, prepare, train
from pushgrowth.defs import reads
from pushgrowth.defs.automation.conditions import FOLLOW_ANY_DAY
from pushgrowth.defs.provenance import traced
from pushgrowth.defs.partitions import country_partitions
from pushgrowth.defs.resources import BanditSettings, HomeResource, NotifierResource
from pushgrowth.storage.catalog import published_catalog
from pushgrowth.timing import timed

BY_COUNTRY = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="country")
"""A country's model depends on every (date, country) partition of that country."""


def _as_of(home, country: str):
    latest = reads.latest_features_date(home.lake, country)
    if latest is None:
        raise dg.Failure(description=f"no user_features of {country} in {home.lake} yet: run the daily refresh first")
    return latest


def _prepared(home, country: str, config: TrainConfig) -> TrainingResult:
    """The training frame of the country's window (what training fits and the gate re-reads)."""
    as_of = _as_of(home, country)
    log, features = reads.training_data(home.lake, country, as_of, config.window_days)
    return prepare(log, features, country, as_of, config)


def _md(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.to_markdown(index=False) if len(frame) else "_none_")


@dg.asset(
    automation_condition=FOLLOW_ANY_DAY,
    partitions_def=country_partitions,
    group_name="models",
    kinds={"lightgbm", "mlflow"},
    deps=[dg.AssetDep("decision_log", partition_mapping=BY_COUNTRY),
          dg.AssetDep("user_features", partition_mapping=BY_COUNTRY), "campaign_catalog"],
    description="The country's reward model (LightGBM heads for open, conversion, net revenue and redemption), "
                "trained on the decision log of its window (six weeks by default), logged to MLflow and "
                "registered as pushgrowth-bandit-<COUNTRY>@challenger.",
)
@timed("training")
@traced
def bandit_model(context: dg.AssetExecutionContext, home: HomeResource, bandit: BanditSettings
                 ) -> dg.MaterializeResult:
    country, h = context.partition_key, home.home
    catalog = published_catalog(h.lake)
    config = bandit.training()
    result = train(_prepared(h, country, config), catalog)
    as_of = result.as_of
    metadata = {"as_of": as_of.isoformat(), "decisions": result.rows, "training_rows": result.train_rows,
                "window_days": config.window_days if config.window_days is not None else "all",
                "data_checks": dg.MetadataValue.json(result.data_checks)}
    if result.model is None:
        context.log.info(f"{country}: no head has enough mature decisions yet ({result.rows} logged plans)")
        return dg.MaterializeResult(metadata={**metadata, "trained": False})
    example = result.frame[list(result.model.spec.context) + list(ACTION_COLUMNS)].head(5)
    ref = registry.log_model(
        h, result.model, country,
        params={"heads": ",".join(result.model.heads), "as_of": as_of, "training_rows": result.train_rows,
                "window_days": config.window_days if config.window_days is not None else "all",
                "features": len(result.model.spec.columns), "catalog_version": catalog.version},
        metrics=result.metrics,
        tags={"dagster/run_id": context.run_id, "dagster/partition": country, "as_of": as_of.isoformat(),
              "country": country},
        input_example=example)
    heads = pd.DataFrame([{"head": n, **{k: round(v, 4) for k, v in head.metrics.items()}}
                          for n, head in result.model.heads.items()])
    return dg.MaterializeResult(
        metadata={**metadata, "trained": True, "model_name": ref.name, "model_version": ref.version,
                  "mlflow_run_id": ref.run_id, "heads": _md(heads)},
        data_version=dg.DataVersion(f"{ref.name}/{ref.version}"),
    )


@dg.asset(
    automation_condition=FOLLOW_ANY_DAY,
    partitions_def=country_partitions,
    group_name="models",
    kinds={"mlflow"},
    deps=[bandit_model, dg.AssetDep("decision_log", partition_mapping=BY_COUNTRY),
          dg.AssetDep("user_features", partition_mapping=BY_COUNTRY), "campaign_catalog"],
    description="The promotion gate: off-policy evaluation of the challenger against the champion on held-out "
                "users; moves pushgrowth-bandit-<COUNTRY>@champion only when the evidence says it is better.",
)
@timed("gate")
@traced
def model_promotion(context: dg.AssetExecutionContext, home: HomeResource, bandit: BanditSettings,
                    notifier: NotifierResource) -> dg.MaterializeResult:
    country, h = context.partition_key, home.home
    challenger_ref = registry.alias_ref(h, country, registry.CHALLENGER)
    champion_ref = registry.alias_ref(h, country, registry.CHAMPION)

    def serving(ref) -> dict:
        return {"serving_model": f"{ref.name} v{ref.version}" if ref else "cold start (no champion yet)",
                "serving_version": ref.version if ref else "none"}

    if challenger_ref is None:
        return dg.MaterializeResult(metadata={**serving(champion_ref), "decision": "no challenger yet"})
    if champion_ref is not None and champion_ref.version == challenger_ref.version:
        return dg.MaterializeResult(metadata={**serving(champion_ref), "decision": "challenger is the champion"})
    catalog = published_catalog(h.lake)
    reference = catalog.policies[country].reference_order_value
    challenger = registry.serving_policy(h, challenger_ref, bandit.policy(), reference)
    champion = registry.serving_policy(h, champion_ref, bandit.policy(), reference)
    gate = evaluate(_prepared(h, country, bandit.training()), catalog, challenger, champion, bandit.gate())
    compared = f"v{champion_ref.version}" if champion_ref else "none (cold start)"
    registry.record_gate(h, challenger_ref, gate.metrics, gate.markdown(),
                         {**gate.to_dict(), "champion_version": champion_ref.version if champion_ref else None})
    if gate.promoted:
        registry.set_alias(h, challenger_ref, registry.CHAMPION)
        champion_ref = challenger_ref
    kind = "model_promotion" if gate.promoted else "model_rejection"
    notifier.send(Alert(kind, f"{country}: {challenger_ref.name} v{challenger_ref.version} "
                              f"{'promoted to champion' if gate.promoted else 'not promoted'}", gate.reason,
                        severity="info", fields={"country": country, **serving(champion_ref)}), context.log)
    return dg.MaterializeResult(metadata={
        **serving(champion_ref), "decision": "promoted" if gate.promoted else "kept champion",
        "reason": gate.reason, "challenger": f"{challenger_ref.name} v{challenger_ref.version}",
        "compared_champion": compared,
        "evidence": dg.MetadataValue.md(gate.markdown()),
        **{k: float(v) for k, v in gate.metrics.items() if v == v},
    })


model_job = dg.define_asset_job(
    "model_job", selection=dg.AssetSelection.assets(bandit_model, model_promotion),
    partitions_def=country_partitions, description="Retrain a country's bandit and run its promotion gate.")
