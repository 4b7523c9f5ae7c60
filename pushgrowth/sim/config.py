"""Configuration and calibration of the synthetic marketplace.

Base rates follow public orders of magnitude for large marketplaces and push programs (see the README's
"Assumptions of the World"): marketing push open rates of a few percent, under 1% of registered users buying on
a given day, take rates around 13% of GMV, and coupons large enough to wipe out the margin of an order that
would have happened anyway.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pushgrowth.domain import COUNTRIES


class CountryCalibration(BaseModel):
    """How one country's users behave on average; individual users vary around these numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size_weight: float = Field(1.0, gt=0, description="Relative population size against the other countries.")
    aov: float = Field(gt=0, description="Average order value, local currency.")
    take_rate: float = Field(0.13, gt=0, lt=1, description="Marketplace margin on GMV.")
    daily_order_rate: float = Field(0.012, gt=0, lt=1, description="Mean daily order probability, engaged user.")
    daily_sessions: float = Field(0.45, gt=0, description="Mean sessions per day, engaged user.")
    open_logit: float = Field(-3.35, description="Push open log-odds of an average user at a neutral hour.")
    convert_logit: float = Field(-2.6, description="Log-odds that an opened push causes an order.")
    optout_rate: float = Field(0.0015, ge=0, lt=1, description="Opt-out probability per push within tolerance.")
    push_opt_in_app: float = Field(0.72, ge=0, le=1, description="Share of app users accepting pushes.")
    mp_user_share: float = Field(0.5, ge=0, le=1)
    android_share: float = Field(0.62, ge=0, le=1)
    ios_share: float = Field(0.22, ge=0, le=1)
    signup_rate: float = Field(0.0006, ge=0, lt=0.05, description="New users per day, share of population.")
    payday_days: tuple[int, ...] = Field((1, 2, 3, 4, 5), description="Days of month with payday demand.")
    payday_boost: float = Field(1.25, ge=1)


DEFAULT_CALIBRATION: dict[str, CountryCalibration] = {
    "MLA": CountryCalibration(
        size_weight=0.6, aov=58_000.0, daily_order_rate=0.011, open_logit=-3.2, convert_logit=-2.5,
        mp_user_share=0.62, android_share=0.70, ios_share=0.16, payday_days=(1, 2, 3, 4, 5, 30, 31),
        payday_boost=1.30,
    ),
    "MLB": CountryCalibration(
        size_weight=1.4, aov=165.0, daily_order_rate=0.012, open_logit=-3.4, convert_logit=-2.6,
        mp_user_share=0.48, android_share=0.74, ios_share=0.14, payday_days=(5, 6, 7, 20), payday_boost=1.20,
    ),
    "MLM": CountryCalibration(
        size_weight=1.0, aov=780.0, daily_order_rate=0.010, open_logit=-3.3, convert_logit=-2.65,
        mp_user_share=0.38, android_share=0.68, ios_share=0.20, payday_days=(1, 14, 15, 16, 29, 30, 31),
        payday_boost=1.25,
    ),
    "MLC": CountryCalibration(size_weight=0.4, aov=42_000.0, android_share=0.58, ios_share=0.30),
    "MCO": CountryCalibration(size_weight=0.5, aov=190_000.0, android_share=0.72, ios_share=0.16,
                              payday_days=(1, 15, 16, 30, 31)),
}


class WorldConfig(BaseModel):
    """Everything that determines a World: with the same config the World produces the same data, bit for bit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 7
    start_date: dt.date = dt.date(2026, 9, 1)
    users: dict[str, int] = Field(description="Registered users per country at the start date.")
    calibration: dict[str, CountryCalibration] = Field(default_factory=lambda: dict(DEFAULT_CALIBRATION))

    @field_validator("users")
    @classmethod
    def _known_countries(cls, users: dict[str, int]) -> dict[str, int]:
        for code, n in users.items():
            if code not in COUNTRIES:
                raise ValueError(f"users: unknown country {code!r}; known: {', '.join(COUNTRIES)}")
            if n < 1:
                raise ValueError(f"users.{code}: needs at least one user, got {n}")
        return users

    @property
    def countries(self) -> tuple[str, ...]:
        return tuple(self.users)

    def country_calibration(self, code: str) -> CountryCalibration:
        return self.calibration.get(code) or DEFAULT_CALIBRATION[code]

    @classmethod
    def build(
        cls,
        countries: tuple[str, ...] | list[str] = ("MLA", "MLB", "MLM"),
        users: int = 5_000,
        seed: int = 7,
        start_date: dt.date | None = None,
        sized: bool = True,
    ) -> WorldConfig:
        """A config with `users` per country on average; with `sized`, countries keep their relative sizes.

        Raises ValueError naming any country the World has no calibration for."""
        unknown = [c for c in countries if c not in DEFAULT_CALIBRATION]
        if unknown or not countries:
            raise ValueError(f"countries {unknown or list(countries)}: the World simulates "
                             f"{', '.join(sorted(DEFAULT_CALIBRATION))} (give at least one)")
        weights = {c: (DEFAULT_CALIBRATION[c].size_weight if sized else 1.0) for c in countries}
        mean_weight = sum(weights.values()) / len(weights)
        sizes = {c: max(1, round(users * w / mean_weight)) for c, w in weights.items()}
        extra = {"start_date": start_date} if start_date else {}
        return cls(seed=seed, users=sizes, **extra)
