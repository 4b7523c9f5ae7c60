"""The landing-zone sensor: one run per (date, country) drop when its completion marker appears.

The cursor remembers each drop's marker digest, so a drop is requested once; a drop delivered again with new
content (a new marker) is requested again and its partition replaced. Incomplete drops (no marker) and drops
for countries or dates outside the partitions are skipped.
"""


import json

import dagster as dg

from pushgrowth.defs.automation.sensors import sensor_interval
from pushgrowth.defs.extracts.assets import raw_extracts_job
from pushgrowth.defs.partitions import country_day_partitions, partition_key
from pushgrowth.defs.resources import HomeResource
from pushgrowth.landing.zone import list_drops


@dg.sensor(
    job=raw_extracts_job,
    minimum_interval_seconds=sensor_interval(30),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the day: requests raw_extracts for each complete (date, country) drop in the landing zone.",
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, home: HomeResource) -> dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    valid = set(country_day_partitions.get_partition_keys(dynamic_partitions_store=context.instance
                                                          if context.instance_ref else None))
    requests, skipped = [], []
    for drop in list_drops(home.home.landing):
        key = partition_key(drop.country, drop.date)
        if key not in valid:
            skipped.append(f"{drop.country}/{drop.date}")
            continue
        digest = drop.digest()
        name = f"{drop.country}|{drop.date.isoformat()}"
        if seen.get(name) == digest:
            continue
        seen[name] = digest
        requests.append(dg.RunRequest(run_key=f"{name}|{digest}", partition_key=key,
                                      tags={"pushgrowth/landing_digest": digest}))
    if skipped:
        context.log.warning(f"drops outside the partitions, not loaded: {', '.join(skipped[:10])}")
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps(seen, sort_keys=True),
        skip_reason=None if requests else "no new complete drops in the landing zone",
    )
