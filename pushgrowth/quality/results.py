"""What a validation found, in words a person reads: the failed expectations with their column and values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Failure:
    """One failed expectation, as a person reads it: what was expected, on which column, what was seen."""

    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    expected: str
    observed: str
    unexpected_count: int | None = None
    observed_value: Any = None


@dataclass(frozen=True)
class QualityResult:
    dataset: str
    success: bool
    rows: int
    evaluated: int
    failures: tuple[Failure, ...] = ()
    data_docs: Path | None = None
    docs_error: str | None = None
    gx_result: Any = field(default=None, repr=False, compare=False)
    """The full `ExpectationSuiteValidationResult` (None when nothing could be validated)."""

    def summary(self) -> str:
        if self.success:
            return f"{self.dataset}: all {self.evaluated} expectations passed on {self.rows} rows"
        if not self.evaluated:
            return f"{self.dataset}: nothing validated: " + "; ".join(f.observed for f in self.failures)
        failed = "; ".join(f"{f.expectation}({f.column or 'table'}): {f.observed}" for f in self.failures)
        count = f"{len(self.failures)} of {self.evaluated} expectations failed on {self.rows} rows"
        return f"{self.dataset}: {count}: {failed}"

    def markdown(self) -> str:
        """The failed expectations as a Markdown table (empty string when everything passed)."""
        if not self.failures:
            return ""
        lines = ["| expectation | column | expected | observed |", "| --- | --- | --- | --- |"]
        for f in self.failures:
            cells = (f.expectation, f.column or "(table)", f.expected, f.observed)
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        return "\n".join(lines)


def failure(result) -> Failure:
    """A failed GX `ExpectationValidationResult` as a `Failure`."""
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    column = kwargs.get("column") or ", ".join(kwargs.get("column_list") or []) or (
        f"{kwargs['column_A']}, {kwargs['column_B']}" if "column_A" in kwargs else None)
    expected = _expected(kwargs)
    error = _exception_message(result.exception_info or {})
    if error:
        return Failure(config.type, column, kwargs, expected, f"error: {error}")
    details = result.result or {}
    if "observed_value" in details:
        observed = details["observed_value"]
        text = _short(observed)
        if config.type == "expect_table_columns_to_match_set":
            mismatched = (details.get("details") or {}).get("mismatched") or {}
            text = f"unexpected {mismatched.get('unexpected', [])}, missing {mismatched.get('missing', [])}"
        return Failure(config.type, column, kwargs, expected, text, observed_value=observed)
    count = details.get("unexpected_count")
    text = f"{count} of {details.get('element_count')} rows"
    sample = [v.get("value") for v in details.get("partial_unexpected_counts") or []][:5]
    if sample and "null" not in config.type:
        text += f", e.g. {_short(sample)}"
    return Failure(config.type, column, kwargs, expected, text, unexpected_count=count)


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports an exception at the top level or per metric (e.g. a missing column)."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    nested = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    return str(nested[0].get("exception_message")) if nested else None


def _short(value: Any, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected(kwargs: dict[str, Any]) -> str:
    """The expectation's parameters in a few words: bounds, sets, `mostly` and the rows it applies to."""
    parts = []
    if kwargs.get("min_value") is not None:
        parts.append(f"{'>' if kwargs.get('strict_min') else '>='} {kwargs['min_value']}")
    if kwargs.get("max_value") is not None:
        parts.append(f"{'<' if kwargs.get('strict_max') else '<='} {kwargs['max_value']}")
    for key in ("value", "value_set", "mostly"):
        if kwargs.get(key) is not None:
            parts.append(f"{key} {_short(kwargs[key], 80)}")
    if "column_A" in kwargs:
        parts.append(f"{kwargs['column_A']} {'>=' if kwargs.get('or_equal') else '>'} {kwargs['column_B']}")
    condition = kwargs.get("row_condition")
    if isinstance(condition, dict) and "column" in condition:
        parts.append(f"where {condition['column'].get('name')} {condition.get('operator')} "
                     f"{condition.get('parameter')!r}")
    elif condition:
        parts.append(f"where {condition!r}")
    return ", ".join(parts)
