"""Pick up catalog edits: a run of `campaign_catalog` whenever the catalog files' hash changes."""

import dagster as dg

from pushgrowth.campaigns import catalog_hash
from pushgrowth.defs.automation.sensors import sensor_interval

catalog_job = dg.define_asset_job(
    "catalog_job",
    selection=dg.AssetSelection.assets("campaign_catalog"),
    description="Validate and publish the campaign catalog.",
)


@dg.sensor(job=catalog_job, minimum_interval_seconds=sensor_interval(60),
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Validates and publishes the catalog when its files change (the version is their hash).")
def catalog_change_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    version = catalog_hash()
    if version == context.cursor:
        return dg.SensorResult(skip_reason=f"catalog unchanged ({version[:12]})")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"catalog-{version}")], cursor=version)
