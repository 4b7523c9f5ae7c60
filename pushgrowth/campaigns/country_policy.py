"""The company policy every campaign must respect, per country, and its optional override file.

The defaults below are the policy as agreed with legal, finance and CRM. A catalog folder may carry a
`_policy.yaml` that overrides some values (for every country under `defaults:`, or per country under
`countries:`), so a policy change is reviewed in the same pull request as the campaigns it affects and changes
the catalog version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pushgrowth.domain import COUNTRIES

POLICY_FILE = "_policy.yaml"


class QuietHours(BaseModel):
    """Local hours when no push may be sent: from `start`:00 up to (not including) `end`:00, wrapping midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(22, ge=0, le=23, description="First quiet hour.")
    end: int = Field(8, ge=0, le=23, description="First hour after the quiet period; equal to start for none.")

    @property
    def hours(self) -> frozenset[int]:
        span = (self.end - self.start) % 24
        return frozenset((self.start + k) % 24 for k in range(span))

    def __str__(self) -> str:
        return "none" if self.start == self.end else f"{self.start:02d}:00-{(self.end - 1) % 24:02d}:59"


class CountryPolicy(BaseModel):
    """Limits for one country; amounts are in the country's currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quiet_hours: QuietHours = QuietHours()
    max_coupon_amount: float = Field(gt=0, description="Largest amount coupon, and largest cap of a percent one.")
    max_coupon_percent: float = Field(35.0, gt=0, le=100, description="Largest percent coupon.")
    min_holdout_share: float = Field(0.05, ge=0, lt=1, description="Smallest holdout, to keep measuring lift.")
    max_weekly_pushes: int = Field(5, ge=1, le=21, description="Marketing pushes per user per week, all campaigns")
    max_title_chars: int = Field(50, ge=10, description="Longest push title once rendered.")
    max_body_chars: int = Field(150, ge=20, description="Longest push body once rendered.")
    min_daily_redemptions: int = Field(
        40, ge=1, description="Redemptions a coupon budget must pay for in one day to be worth a campaign.")
    reference_order_value: float = Field(
        gt=0, description="Typical order value, to cost a percent coupon (capped at its max_discount).")
    sample_first_name: str = Field(
        "Valentina", min_length=1, description="A long, common first name to render templates for length checks.")

    @model_validator(mode="after")
    def _some_sending_hours(self) -> CountryPolicy:
        if len(self.quiet_hours.hours) >= 24:
            raise ValueError("quiet hours cover the whole day")
        return self


def _policy(**values: Any) -> CountryPolicy:
    return CountryPolicy(**values)


DEFAULT_POLICIES: dict[str, CountryPolicy] = {
    "MLA": _policy(max_coupon_amount=20_000, reference_order_value=58_000, max_weekly_pushes=5),
    "MLB": _policy(max_coupon_amount=80, reference_order_value=165, max_weekly_pushes=6,
                   sample_first_name="Gabriela"),
    "MLM": _policy(max_coupon_amount=500, reference_order_value=780, max_weekly_pushes=5,
                   sample_first_name="Alejandro"),
    "MLC": _policy(max_coupon_amount=25_000, reference_order_value=42_000, max_weekly_pushes=5),
    "MCO": _policy(max_coupon_amount=60_000, reference_order_value=190_000, max_weekly_pushes=5),
}
"""The company policy when the catalog has no `_policy.yaml` (or for what it does not override)."""

assert set(DEFAULT_POLICIES) == set(COUNTRIES), "every site of the domain needs a default policy"


class PolicyFile(BaseModel):
    """The shape of `_policy.yaml`: partial policies, merged over the defaults."""

    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    countries: dict[str, dict[str, Any]] = Field(default_factory=dict)


def merge_policy(code: str, overrides: PolicyFile | None) -> CountryPolicy:
    """The default policy of `code`, then the file's `defaults:`, then its `countries.<code>` values.

    Partial `quiet_hours` overrides are merged key by key, so `quiet_hours: {start: 21}` keeps the default end.
    Raises pydantic's ValidationError for a value the policy model refuses.
    """
    base = DEFAULT_POLICIES[code]
    if overrides is None:
        return base
    values = base.model_dump()
    for layer in (overrides.defaults, overrides.countries.get(code, {})):
        for key, value in layer.items():
            if key == "quiet_hours" and isinstance(value, dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
    return CountryPolicy.model_validate(values)


def merge_policies(overrides: PolicyFile | None) -> dict[str, CountryPolicy]:
    """Every country's policy with the overrides applied (see `merge_policy`)."""
    unknown = sorted(set(overrides.countries) - set(COUNTRIES)) if overrides else []
    if unknown:
        raise ValueError(f"unknown countries {unknown} under `countries:`; known: {', '.join(COUNTRIES)}")
    return {code: merge_policy(code, overrides) for code in DEFAULT_POLICIES}


def policy_path(root: Path) -> Path | None:
    """The override file of a catalog folder (or of a single catalog file's folder), if there is one."""
    folder = root if root.is_dir() else root.parent
    candidate = folder / POLICY_FILE
    return candidate if candidate.is_file() else None
