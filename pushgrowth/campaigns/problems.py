"""What validation reports: problems that name a file, a campaign, a field and, when known, a line.

A reviewer fixes a catalog from this list alone, so every problem points at the exact place to edit: the
catalog is read with its YAML node tree kept next to the data to find the line of any field, and pydantic's
errors are rewritten in the same terms as the rules' (a field path, a message that says what to do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from difflib import get_close_matches
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from pushgrowth.campaigns.schema import Campaign

FieldPath = tuple[str | int, ...]
NO_CAMPAIGN = "-"
"""The campaign id shown for problems of a whole file (syntax, unknown top-level keys, the policy file)."""


@dataclass(frozen=True)
class Problem:
    """One thing to fix before the catalog can be activated."""

    file: str
    campaign_id: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.file}: {self.campaign_id}: {self.field or '-'}: {self.message}{where}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CatalogError(ValueError):
    """The catalog cannot be used; the message lists every problem, one per line."""

    def __init__(self, problems: Sequence[Problem], root: str = "") -> None:
        self.problems = list(problems)
        header = f"campaign catalog {root} has" if root else "campaign catalog has"
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        super().__init__("\n".join([f"{header} {count}:", *(f"  {p}" for p in self.problems)]))


def format_field(path: FieldPath) -> str:
    """`("coupon", "values", 2)` -> `coupon.values[2]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def node_line(node: yaml.Node | None, path: FieldPath) -> int | None:
    """1-based line of the deepest node along `path` (the field itself, or its closest existing parent)."""
    if node is None:
        return None
    current = node
    for part in path:
        child: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode) and isinstance(part, str):
            for key, value in current.value:  # the last one wins, as for merged (<<) keys
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child = value
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(current.value):
            child = current.value[part]
        if child is None:
            break
        current = child
    return current.start_mark.line + 1


@dataclass
class Entry:
    """One campaign as read from a file: its raw data and YAML node, and the model once its shape is valid."""

    file: str
    index: int
    raw: Any
    node: yaml.Node | None = None
    file_country: str | None = None
    campaign: Campaign | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """The campaign's id as written, or its position in the file when it has none."""
        raw_id = self.raw.get("id") if isinstance(self.raw, dict) else None
        return raw_id if isinstance(raw_id, str) and raw_id.strip() else f"campaigns[{self.index}]"

    def problem(self, path: FieldPath, message: str) -> Problem:
        return Problem(self.file, self.ref, format_field(path), message, node_line(self.node, path))


def _model_at(model: type[BaseModel], loc: FieldPath) -> type[BaseModel] | None:
    """The nested model a location points into (`("templates", 2)` -> Template), to list its fields."""
    def inner(annotation: Any) -> type[BaseModel] | None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        return next((m for m in map(inner, get_args(annotation)) if m is not None), None)

    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part)
        current = inner(info.annotation) if info else None
    return current


def _nested_fields(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    """Every field name under `model`, mapped to its dotted path (to say where a misplaced key belongs)."""
    out: dict[str, str] = {}
    for name, info in model.model_fields.items():
        out.setdefault(name, prefix + name)
        nested = _model_at(model, (name,))
        if nested is not None:
            for key, where in _nested_fields(nested, f"{prefix}{name}.").items():
                out.setdefault(key, where)
    return out


def pydantic_findings(exc: ValidationError, model: type[BaseModel]) -> list[tuple[FieldPath, str]]:
    """pydantic's errors as (field path, message) pairs a reviewer can act on."""
    findings = []
    for err in exc.errors(include_url=False):
        loc: FieldPath = tuple(err["loc"])
        kind, message, value = err["type"], err["msg"], err.get("input")
        if kind == "missing":
            message = "required field is missing"
        elif kind == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            allowed = list(parent.model_fields) if parent else []
            close = get_close_matches(str(loc[-1]), allowed, n=1)
            elsewhere = _nested_fields(parent).get(str(loc[-1])) if parent else None
            message = f"unknown field {loc[-1]!r}" + (
                f"; did you mean {close[0]!r}?" if close else
                f"; it belongs under {elsewhere.rsplit('.', 1)[0]}" if elsewhere else
                f"; allowed: {', '.join(allowed)}" if allowed else "")
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        else:
            message = message[:1].lower() + message[1:]
            if value is None or isinstance(value, str | int | float | bool):
                message += f" (got {value!r})"
        findings.append((loc, message))
    return findings
