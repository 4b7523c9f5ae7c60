"""Resources shared by every concern: the home folder, dbt, delivery, alerts and the bandit's settings.

External systems are small typed resources with a local implementation: delivery writes files unless
`PUSHGROWTH_DELIVERY_URL` points at the delivery service, and alerts go to a log file unless
`PUSHGROWTH_SLACK_WEBHOOK_URL` is set. Tests and the demo therefore run the same code paths as production.
"""

from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator

from pushgrowth.alerts import Alert, Notifier, notifier_from_env
from pushgrowth.bandit.model import TrainConfig
from pushgrowth.bandit.policy import PolicyConfig
from pushgrowth.bandit.training import GateConfig
from pushgrowth.delivery import Delivery, FileDelivery, HttpDelivery
from pushgrowth.home import Home
from pushgrowth.transform import DBT_PROJECT_DIR, InProcessDbt


class DbtResource(dg.ConfigurableResource):
    """dbt-core run in the step's own process (`pushgrowth.transform.InProcessDbt`), its events turned into
    Dagster events by dagster-dbt (models become materializations, tests asset checks), like
    `DbtCliResource.cli(...).stream()` without a process and a project parse per partition (one 13,000-user
    partition: 3.3 s in process, 12.4 s as a `dbt build` subprocess)."""

    project_dir: str = str(DBT_PROJECT_DIR)

    def build(self, context: dg.AssetExecutionContext, home: Home, vars: dict[str, str]
              ) -> tuple[list, dg.Failure | None]:
        """Build the selected dbt assets for `vars`: their Dagster events, and the failure to raise once those are
        yielded (so that failed tests' check results are recorded first), None when the build succeeded."""
        from dagster_dbt.asset_utils import get_updated_cli_invocation_params_for_context
        from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

        params = get_updated_cli_invocation_params_for_context(context, {}, DagsterDbtTranslator())
        extra = list(params.selection_args)
        # a run of some models runs only the tests all of whose models it builds ("buildable"): dbt's default
        # ("eager") would also run a test of a model another run builds later, failing on a fresh warehouse
        extra += ["--indirect-selection", params.indirect_selection or "buildable"]
        # dagster-dbt may hand back a temporary copy of the project holding a generated selector (large selections)
        project = Path(params.dbt_project.project_dir) if params.dbt_project else Path(self.project_dir)
        build = InProcessDbt(home, project).build(vars, extra)
        events = [event for raw in build.events
                  for event in DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={}).to_default_asset_events(
                      manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator,
                      context=context)]
        if build.success:
            return events, None
        return events, dg.Failure(
            description=f"dbt build {vars} failed: " + "; ".join(build.errors or ["see dbt log"]),
            metadata={"errors": build.errors, "dbt_log": str(home.dbt / "logs" / "dbt.log")})


class HomeResource(dg.ConfigurableResource):
    """The home folder; empty `root` means `$PUSHGROWTH_HOME`, read when the resource is used."""

    root: str = ""

    @property
    def home(self) -> Home:
        return Home.from_env(self.root or None)


class DeliveryResource(dg.ConfigurableResource):
    """Hands outboxes to the delivery system: a folder (default: `<home>/outbox`) or its HTTP API."""

    url: str = ""
    token: str = ""
    home_root: str = ""

    def client(self) -> Delivery:
        if self.url:
            return HttpDelivery(self.url, token=self.token or None)
        return FileDelivery(Home.from_env(self.home_root or None).outbox)


class NotifierResource(dg.ConfigurableResource):
    """Alerts to Slack when `PUSHGROWTH_SLACK_WEBHOOK_URL` is set, else to `<home>/alerts/alerts.log`."""

    home_root: str = ""

    def notifier(self) -> Notifier:
        return notifier_from_env(Home.from_env(self.home_root or None).root)

    def send(self, alert: Alert, log=None) -> bool:
        if log is not None:
            (log.error if alert.severity == "error" else log.warning if alert.severity == "warning" else log.info)(
                f"alert [{alert.kind}] {alert.title}: {alert.text}")
        return self.notifier().send(alert)


class BanditSettings(dg.ConfigurableResource):
    """Exploration of the serving policy and the promotion gate (see pushgrowth.bandit.policy and .training)."""

    temperature: float = PolicyConfig.temperature
    epsilon: float = PolicyConfig.epsilon
    cold_epsilon: float = PolicyConfig.cold_epsilon
    cold_hour_width: float | None = PolicyConfig.cold_hour_width
    cold_hour_habit: float = PolicyConfig.cold_hour_habit
    weekday_habit: float = PolicyConfig.weekday_habit
    tone_habit: float = PolicyConfig.tone_habit
    cold_coupon_at_margin: bool = PolicyConfig.cold_coupon_at_margin
    gate_rule: str = GateConfig.rule
    gate_alpha: float = GateConfig.alpha
    gate_min_lift: float = GateConfig.min_lift
    gate_min_rows: int = GateConfig.min_rows
    gate_min_ess: float = GateConfig.min_ess
    gate_clip: float | None = GateConfig.clip
    gate_min_auc: float = GateConfig.min_auc
    gate_min_auc_positives: int = GateConfig.min_auc_positives
    gate_cross_fit_folds: int = GateConfig.cross_fit_folds
    gate_cross_fit_permutations: int = GateConfig.cross_fit_permutations
    bau_prior: float = PolicyConfig.bau_prior
    training_window_days: int | None = TrainConfig.window_days

    def policy(self) -> PolicyConfig:
        return PolicyConfig(temperature=self.temperature, epsilon=self.epsilon, cold_epsilon=self.cold_epsilon,
                            cold_hour_width=self.cold_hour_width, cold_hour_habit=self.cold_hour_habit,
                            weekday_habit=self.weekday_habit, tone_habit=self.tone_habit,
                            cold_coupon_at_margin=self.cold_coupon_at_margin, bau_prior=self.bau_prior)

    def training(self) -> TrainConfig:
        """How `bandit_model` trains, and what the gate re-reads (the same frame)."""
        return TrainConfig(window_days=self.training_window_days)

    def gate(self) -> GateConfig:
        return GateConfig(rule=self.gate_rule, alpha=self.gate_alpha, min_lift=self.gate_min_lift,
                          min_rows=self.gate_min_rows, min_ess=self.gate_min_ess, clip=self.gate_clip,
                          min_auc=self.gate_min_auc,
                          min_auc_positives=self.gate_min_auc_positives,
                          cross_fit_folds=self.gate_cross_fit_folds,
                          cross_fit_permutations=self.gate_cross_fit_permutations)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={
        "home": HomeResource(),
        "dbt": DbtResource(),
        "delivery": DeliveryResource(url=dg.EnvVar("PUSHGROWTH_DELIVERY_URL").get_value("") or "",
                                     token=dg.EnvVar("PUSHGROWTH_DELIVERY_TOKEN").get_value("") or ""),
        "notifier": NotifierResource(),
        "bandit": BanditSettings(),
    })
