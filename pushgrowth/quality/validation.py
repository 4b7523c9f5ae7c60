"""Validation with Great Expectations 1.x: suites from `expectations/`, an in-memory context, Data Docs on disk.

Validation runs in a per-process, in-memory GX context, so the gate's answer never depends on disk state; Data
Docs, when asked for, are written afterwards from a file-backed GX project (under the home folder: `<home>/gx`,
site in `<home>/reports/data_docs`). GX is imported on first use: importing it costs seconds, and Dagster loads
this package with the definitions.
"""

from __future__ import annotations

import copy
import datetime as dt
import fcntl
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pushgrowth.quality.results import QualityResult, failure

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd
    from great_expectations.expectations import Expectation

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
DOCS_SITE = "pushgrowth"
DOCS_INDEX_LIMIT = 500
"""Validation results listed on the Data Docs index page (newest first); older pages stay on disk."""
VERDICT_FORMAT = "BOOLEAN_ONLY"
DETAIL_FORMAT = "SUMMARY"
"""GX result formats: the first pass decides, the second (only after a failure) explains."""


def gx_module():
    """`great_expectations`, imported on first use with its analytics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    return great_expectations


def suite_path(name: str) -> Path:
    return EXPECTATIONS_DIR / f"{name}.json"


def load_suite(name: str) -> gx.ExpectationSuite:
    """The suite stored in `expectations/<name>.json` (GX 1.x ExpectationSuite JSON)."""
    path = suite_path(name)
    if not path.exists():
        known = sorted(p.stem for p in EXPECTATIONS_DIR.glob("*.json"))
        raise FileNotFoundError(f"{path}: no expectation suite named {name!r}; known suites: {known}")
    config = json.loads(path.read_text())
    config.pop("id", None)
    return gx_module().ExpectationSuite(**config)


class _Memory:
    """The per-process, in-memory GX context with one dataframe asset per dataset; GX is not thread-safe."""

    lock = threading.Lock()
    context: Any = None
    source: Any = None

    @classmethod
    def batch_definition(cls, dataset: str):
        if cls.context is None:
            gx = gx_module()
            from great_expectations.data_context.types.base import ProgressBarsConfig

            cls.context = gx.get_context(mode="ephemeral")
            cls.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            cls.source = cls.context.data_sources.add_pandas("pushgrowth")
        try:
            asset = cls.source.get_asset(dataset)
        except LookupError:
            asset = cls.source.add_dataframe_asset(dataset)
        try:
            return asset.get_batch_definition("whole")
        except KeyError:
            return asset.add_batch_definition_whole_dataframe("whole")


def validate(
    df: pd.DataFrame,
    suite_name: str,
    extra_expectations: Iterable[Expectation] = (),
    data_docs_dir: Path | None = None,
    *,
    gx_root: Path | None = None,
    run_name: str | None = None,
    docs_index: bool = True,
) -> QualityResult:
    """Run the suite `suite_name` plus `extra_expectations` on `df`.

    The suite runs first for the verdict alone (GX's BOOLEAN_ONLY result format, about half the work); only when
    it fails does it run again for the details of every expectation (SUMMARY: unexpected counts and values), so a
    failed result says what failed, and the verdict is the same either way.

    With `data_docs_dir`, the result is also stored in the file-backed GX project at `gx_root` (default: a `gx`
    folder next to `data_docs_dir`) and rendered as a Data Docs page (and the site's index page, unless
    `docs_index` is false and the result passed, see `publish`); a failure to render is reported in `docs_error`,
    never as a failed gate.
    """
    gx = gx_module()
    from great_expectations.core.run_identifier import RunIdentifier

    stored = load_suite(suite_name)
    suite = gx.ExpectationSuite(name=stored.name, notes=stored.notes, meta=stored.meta, expectations=[
        *stored.expectations, *(copy.copy(e) for e in extra_expectations)])  # GX's copy drops the id
    run_id = RunIdentifier(run_name=run_name or suite_name, run_time=dt.datetime.now(dt.UTC))
    with _Memory.lock:
        # validating the batch directly skips registering the suite in the context (half a second a call)
        batch = _Memory.batch_definition(suite_name).get_batch(batch_parameters={"dataframe": df})
        outcome = batch.validate(suite, result_format=VERDICT_FORMAT)
        if not outcome.success:
            outcome = batch.validate(suite, result_format=DETAIL_FORMAT)
        outcome.meta["run_id"] = run_id
    result = QualityResult(dataset=suite_name, success=bool(outcome.success), rows=len(df),
                           evaluated=len(outcome.results), gx_result=outcome,
                           failures=tuple(failure(r) for r in outcome.results if not r.success))
    if data_docs_dir is None:
        return result
    (result,) = publish([result], Path(data_docs_dir), gx_root or Path(data_docs_dir).parent / "gx",
                        index=docs_index)
    return result


def publish(results: Sequence[QualityResult], data_docs_dir: Path, gx_root: Path, index: bool = True
            ) -> list[QualityResult]:
    """Store the results in the GX project at `gx_root` and render their Data Docs pages.

    The site's index page (which lists the latest validations) is rebuilt too when `index` is true, any result
    failed, or the site has no index yet: a failure is on the index at once, and a caller that publishes several times per partition (the raw
    gate, the user_features gate, the assignment checks) asks for the index only on its last publish, since
    rebuilding it reads every listed result. Returns the results with `data_docs` (the page) set, or
    `docs_error` when rendering failed: the gate's answer never depends on the docs.
    """
    from urllib.parse import unquote, urlparse

    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    keys = {i: ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=r.dataset),
        run_id=r.gx_result.meta["run_id"],
        batch_identifier=f"pushgrowth-{r.dataset}",
    ) for i, r in enumerate(results) if r.gx_result is not None}
    if not keys:
        return list(results)
    try:
        gx_root.mkdir(parents=True, exist_ok=True)
        with (gx_root / ".lock").open("w") as lock:  # runs of other partitions share the project
            fcntl.flock(lock, fcntl.LOCK_EX)
            context = _file_context(gx_root, data_docs_dir)
            suites = sorted({key.expectation_suite_identifier.name for key in keys.values()})
            for name in suites:  # the stored suite (without partition expectations) gets its own page
                if _STORED_SUITES.get((gx_root, name)) != suite_path(name).stat().st_mtime:
                    context.suites.add_or_update(load_suite(name))
                    _STORED_SUITES[(gx_root, name)] = suite_path(name).stat().st_mtime
            for i, key in keys.items():
                context.validation_results_store.store_validation_results(results[i].gx_result, key)
            context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[
                *keys.values(), *(ExpectationSuiteIdentifier(name=name) for name in suites)],
                build_index=index or not all(r.success for r in results) or not (data_docs_dir / "index.html").exists())
            pages = {i: context.get_docs_sites_urls(resource_identifier=key, site_name=DOCS_SITE)[0]["site_url"]
                     for i, key in keys.items()}
    except Exception as exc:  # noqa: BLE001 - rendering must not decide the gate
        error = f"{type(exc).__name__}: {exc}"
        return [replace(r, docs_error=error) if i in keys else r for i, r in enumerate(results)]
    return [replace(r, data_docs=Path(unquote(urlparse(pages[i]).path))) if i in pages else r
            for i, r in enumerate(results)]


_FILE_CONTEXTS: dict[tuple[Path, Path], Any] = {}
_STORED_SUITES: dict[tuple[Path, str], float] = {}
"""Suites already stored in a GX project by this process (and the file version stored): storing costs ~0.5 s."""


def _view(name: str) -> dict[str, str]:
    """A Data Docs view of `docs_views` (GX's own, compiling its templates once per process)."""
    return {"module_name": "pushgrowth.quality.docs_views", "class_name": name}


def _file_context(gx_root: Path, data_docs_dir: Path):
    """The file-backed GX project, with a single Data Docs site writing to `data_docs_dir`; cached per process."""
    cache_key = (gx_root.resolve(), data_docs_dir.resolve())
    if cache_key in _FILE_CONTEXTS:
        return _FILE_CONTEXTS[cache_key]
    context = gx_module().get_context(mode="file", project_root_dir=str(cache_key[0]))
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(cache_key[1])},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                               "validation_results_limit": DOCS_INDEX_LIMIT,
                               "view": _view("IndexPageView")},
        # GX's sections with views that compile the templates once per process; no profiling section (nothing
        # here profiles, and building it read the validation results once more)
        "site_section_builders": {"expectations": {"view": _view("PageView")},
                                  "validations": {"view": _view("PageView")},
                                  "profiling": "None"},
    }
    sites = context.list_data_docs_sites()
    for name in [n for n in sites if n != DOCS_SITE]:
        context.delete_data_docs_site(name)
    if DOCS_SITE not in sites:
        context.add_data_docs_site(DOCS_SITE, site)
    elif sites[DOCS_SITE] != site:
        context.update_data_docs_site(DOCS_SITE, site)
    _FILE_CONTEXTS[cache_key] = context
    return context
