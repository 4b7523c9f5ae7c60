"""MLflow tracking and registry for the country bandits, with a SQLite backend under the home folder.

Each training is an MLflow run (tags: the Dagster run id, the partition and the data date it was trained on;
parameters; metrics; the feature list) that logs the model as a pyfunc and registers it as
`pushgrowth-bandit-<COUNTRY>` with the alias `challenger`. The alias `champion` marks the version assignments
serve; only the promotion gate, or a person in the MLflow UI, moves it. Assignments read the alias at every run,
so a champion set by hand is honoured the next day.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from filelock import FileLock

from pushgrowth.bandit.model import RewardModel
from pushgrowth.bandit.policy import PolicyConfig
from pushgrowth.bandit.serving import ServingPolicy, ServingSettings
from pushgrowth.home import Home
from pushgrowth.storage import lineage
from pushgrowth.timing import timed

EXPERIMENT = "pushgrowth-bandit"
CHAMPION = "champion"
CHALLENGER = "challenger"
ALIAS_ASSETS = {CHAMPION: "model_promotion", CHALLENGER: "bandit_model"}
"""The asset that moves each alias: reading an alias reads that asset's output (for the lineage check)."""
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def model_name(country: str) -> str:
    return f"pushgrowth-bandit-{country}"


def tracking_uri(home: Home) -> str:
    return f"sqlite:///{home.mlflow / 'mlflow.db'}"


@dataclass(frozen=True)
class ModelRef:
    """A registered version: what the UI and the decision log call it."""

    name: str
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def store_lock(home: Home) -> FileLock:
    """Writers of the SQLite store take turns (countries train in parallel processes in `simulate`)."""
    home.mlflow.mkdir(parents=True, exist_ok=True)
    return FileLock(str(home.mlflow / ".lock"), timeout=600)


_CLIENTS: dict[tuple[str, int], object] = {}
"""One client per store and process: making one and checking the experiment costs ~80 ms, and a country-day
asks for a client a dozen times. Keyed by the store file's inode too, so a store deleted and created again (a
home folder reset) gets a fresh client and its experiment."""


@timed("mlflow")
def client(home: Home):
    """An MlflowClient on the home folder's store (created on first use), with the experiment in place."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(home)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    store = home.mlflow / "mlflow.db"
    cached = _CLIENTS.get((uri, store.stat().st_ino)) if store.exists() else None
    if cached is not None:
        return cached
    with store_lock(home):
        c = MlflowClient(tracking_uri=uri, registry_uri=uri)
        if c.get_experiment_by_name(EXPERIMENT) is None:
            c.create_experiment(EXPERIMENT, artifact_location=(home.mlflow / "artifacts").as_uri())
    _CLIENTS.clear()  # one store per process is the rule; keep no stale clients
    _CLIENTS[(uri, store.stat().st_ino)] = c
    return c


@timed("mlflow")
def log_model(home: Home, model: RewardModel, country: str, *, params: dict, metrics: dict[str, float],
              tags: dict[str, str], input_example: pd.DataFrame) -> ModelRef:
    """Log a training run with the model as a pyfunc, register it and point `challenger` at the new version."""
    import mlflow
    from mlflow.models import infer_signature

    c = client(home)
    experiment = c.get_experiment_by_name(EXPERIMENT)
    name = model_name(country)
    with store_lock(home), tempfile.TemporaryDirectory() as tmp, \
            mlflow.start_run(experiment_id=experiment.experiment_id, run_name=f"{country} {tags.get('as_of', '')}",
                             tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})  # NaN-free
        mlflow.log_dict({"columns": list(model.spec.columns), "spec": model.spec.to_dict()}, "features.json")
        saved = model.save(Path(tmp) / "reward_model")
        example = input_example.head(5).reset_index(drop=True)
        signature = infer_signature(example, model.predict(example, example))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(PYFUNC_CODE), artifacts={"reward_model": str(saved)},
            signature=signature, input_example=example, registered_model_name=name,
            pip_requirements=["lightgbm", "pandas", "numpy"], code_paths=None)
        version = str(info.registered_model_version)
        c.set_registered_model_alias(name, CHALLENGER, version)
        c.set_model_version_tag(name, version, "country", country)
        c.update_registered_model(name, description=MODEL_DESCRIPTION.format(country=country))
        c.update_model_version(name, version, description=version_description(model, params))
    return ModelRef(name, version, run.info.run_id)


MODEL_DESCRIPTION = (
    "The reward model of {country}'s contextual bandit: LightGBM heads for the open, conversion, net revenue and "
    "redemption rewards of a weekly push plan (coupon, wording, send hour, weekday, frequency) given the user's "
    "features, trained daily by the Dagster asset bandit_model on the decision log of its window. Aliases: "
    "@challenger is the latest training, @champion the version assignments serve, moved only by the off-policy "
    "promotion gate (model_promotion); each version's tags and description carry its gate verdict.")


def version_description(model: RewardModel, params: dict) -> str:
    """What a version is: its heads, data window and size (the gate's verdict is added by `record_gate`)."""
    return (f"Heads: {', '.join(sorted(model.heads))}. Trained on the decision log up to {params.get('as_of')} "
            f"(window: {params.get('window_days')} days), {params.get('training_rows')} training rows, "
            f"{params.get('features')} features, catalog {str(params.get('catalog_version', ''))[:12]}.")


@timed("mlflow")
def alias_ref(home: Home, country: str, alias: str) -> ModelRef | None:
    """The version behind an alias, or None (no such model or alias yet)."""
    from mlflow.exceptions import MlflowException

    lineage.note_asset(ALIAS_ASSETS.get(alias, "bandit_model"))
    c = client(home)
    try:
        mv = c.get_model_version_by_alias(model_name(country), alias)
    except MlflowException:
        return None
    return ModelRef(mv.name, str(mv.version), mv.run_id)


@timed("mlflow")
def set_alias(home: Home, ref: ModelRef, alias: str) -> None:
    c = client(home)
    with store_lock(home):
        c.set_registered_model_alias(ref.name, alias, ref.version)


_MODELS: dict[tuple, RewardModel] = {}
"""Models loaded by this process, by store (its file's inode too) and version: a registered version's artifacts
never change, and the champion is loaded again by every day's assignments and gate."""


@timed("mlflow")
def load(home: Home, ref: ModelRef) -> RewardModel:
    """The reward model of a registered version (through its pyfunc, as any MLflow consumer would)."""
    import mlflow

    client(home)
    key = (tracking_uri(home), (home.mlflow / "mlflow.db").stat().st_ino, ref.name, ref.version)
    if key not in _MODELS:
        if len(_MODELS) >= 8:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = mlflow.pyfunc.load_model(ref.uri).unwrap_python_model().model
    return _MODELS[key]


@timed("mlflow")
def record_gate(home: Home, ref: ModelRef, metrics: dict[str, float], evidence_markdown: str,
                decision: dict) -> None:
    """Attach the promotion gate's evidence to the challenger's run and version (visible in the MLflow UI)."""
    c = client(home)
    with store_lock(home):
        _record_gate(c, ref, metrics, evidence_markdown, decision)


def _record_gate(c, ref: ModelRef, metrics: dict[str, float], evidence_markdown: str, decision: dict) -> None:
    champion = decision.get("champion_version") or "none (cold start)"
    verdict = "promoted to champion" if decision["promoted"] else "not promoted"
    current = c.get_model_version(ref.name, ref.version).description or ""
    c.update_model_version(ref.name, ref.version, description=(
        f"{current.split(' Gate:')[0]} Gate: {verdict} against champion version {champion}: "
        f"{str(decision['reason'])[:300]}").strip())
    c.set_model_version_tag(ref.name, ref.version, "compared_champion", str(champion))
    for key, value in metrics.items():
        if value == value:
            c.log_metric(ref.run_id, key, float(value))
    c.log_text(ref.run_id, evidence_markdown, "promotion_gate.md")
    c.log_text(ref.run_id, json.dumps(decision, indent=2, default=str), "promotion_gate.json")
    c.set_model_version_tag(ref.name, ref.version, "promotion", "promoted" if decision["promoted"] else "rejected")
    c.set_model_version_tag(ref.name, ref.version, "promotion_reason", str(decision["reason"])[:500])


def serving_policy(home: Home, ref: ModelRef | None, config: PolicyConfig, reference_order_value: float
                   ) -> ServingPolicy:
    """The one way a serving policy is built: the model version `ref` (None: cold start) with the exploration
    settings `config` and the country's typical order value. Assignments, the promotion gate and `trace` (from
    the settings logged with the decisions, see `logged_policy`) all build theirs here."""
    if ref is None:
        return ServingPolicy(config=config, reference_order_value=reference_order_value)
    return ServingPolicy(load(home, ref), ref.name, ref.version, config, reference_order_value=reference_order_value)


def logged_policy(home: Home, settings: ServingSettings) -> ServingPolicy:
    """The policy that served a decisions partition, from the settings logged with it."""
    ref = (ModelRef(settings.model_name, settings.model_version, "") if settings.model_name and settings.model_version
           else None)
    policy = serving_policy(home, ref, settings.config, settings.reference_order_value)
    policy.redemption_prior = settings.redemption_prior
    return policy
