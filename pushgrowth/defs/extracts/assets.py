"""raw_* assets: one country-day of extracts, checked against the contract and copied into the lake.

All tables of a partition are read and checked before any is written, so a bad file fails the whole partition
and leaves the previous materialization in place. The landing zone is only read.
"""


import dagster as dg

from pushgrowth.defs.partitions import country_and_date, country_day_partitions
from pushgrowth.defs.resources import HomeResource
from pushgrowth.landing.contract import TABLES, Table
from pushgrowth.landing.zone import Drop, ExtractError, drop_path, read_table
from pushgrowth.storage import DECISIONS, RAW
from pushgrowth.storage import lake as store
from pushgrowth.timing import stage

ARROW_TO_SQL = {"int32": "INTEGER", "int64": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN", "string": "VARCHAR",
                "date32[day]": "DATE", "timestamp[us, tz=UTC]": "TIMESTAMPTZ", "timestamp[us]": "TIMESTAMP"}


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, ARROW_TO_SQL.get(str(c.type), str(c.type)), description=c.description,
                       constraints=dg.TableColumnConstraints(nullable=c.nullable))
        for c in table.columns
    ])


def raw_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(f"raw_{table}")


def raw_specs() -> list[dg.AssetSpec]:
    """Specs are built by a function: the defs loader would otherwise pick module-level specs up twice."""
    return [
        dg.AssetSpec(
            raw_asset_key(name),
            description=f"{t.description} Loaded from the landing zone's `{t.file_name}`.",
            group_name="raw",
            kinds={"parquet"},
            metadata={"dagster/column_schema": column_schema(t), "primary_key": ", ".join(t.primary_key)},
        )
        for name, t in TABLES.items()
    ]


@dg.multi_asset(specs=raw_specs(), partitions_def=country_day_partitions, can_subset=True, name="raw_extracts")
def raw_extracts(context: dg.AssetExecutionContext, home: HomeResource):
    with stage("raw"):
        results = list(_load_drop(context, home))
    yield from results


def _load_drop(context: dg.AssetExecutionContext, home: HomeResource):
    country, date = country_and_date(context)
    drop = Drop(country, date, drop_path(home.home.landing, country, date))
    if not drop.complete:
        raise dg.Failure(description=f"{drop.path}: no complete drop for {country} {date} (marker missing)")
    names = [key.path[-1].removeprefix("raw_") for key in sorted(context.selected_asset_keys)]
    try:
        tables = {name: read_table(drop, name) for name in names}
    except ExtractError as exc:
        raise dg.Failure(description=str(exc), metadata={"drop": dg.MetadataValue.path(str(drop.path))}) from exc
    digest = drop.digest()
    for name, table in tables.items():
        path = store.write(home.home.lake, RAW[name], country, date, table)
        yield dg.MaterializeResult(
            asset_key=raw_asset_key(name),
            metadata={
                "dagster/row_count": table.num_rows,
                "source": dg.MetadataValue.path(str(drop.path / TABLES[name].file_name)),
                "path": dg.MetadataValue.path(str(path)),
                "landing_digest": digest,
            },
        )
    # a day nobody planned (the first day, or a day whose assignments never ran) has no decisions: say so, as the
    # decisions of the day, so that the day's read-back in dbt runs (daily_assignments reports the days it plans)
    if not store.exists(home.home.lake, DECISIONS, country, date):
        context.log_event(dg.AssetMaterialization(
            DECISIONS.asset, partition=context.partition_key,
            description=f"no decisions were made for {country} {date}", metadata={"dagster/row_count": 0}))

raw_extracts_job = dg.define_asset_job(
    "raw_extracts_job",
    selection=dg.AssetSelection.assets(*[raw_asset_key(t) for t in TABLES]),
    partitions_def=country_day_partitions,
    description="Load one country-day of raw extracts from the landing zone.",
)
