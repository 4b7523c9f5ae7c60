"""The shape of a campaign: pydantic models that read the YAML catalog and refuse anything they do not know.

The models check types, ranges and the shared vocabulary of `pushgrowth.domain`; rules that need the company
policy or other campaigns (coupon limits, quiet hours, caps across campaigns, ...) live in `validation.py`, so
that one file can be read as the list of what "valid" means. `extra="forbid"` everywhere: a misspelt key in a
reviewed file must fail, not be silently ignored.
"""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pushgrowth.campaigns.country_policy import CountryPolicy
from pushgrowth.domain import (
    CATEGORIES,
    COUNTRIES,
    COUPON_KINDS,
    COUPON_VALIDITY_DAYS,
    FREQUENCIES,
    LIFECYCLE_SEGMENTS,
    OBJECTIVES,
    PLATFORMS,
    TONES,
    VALUE_PROPOSITIONS,
    WEEKDAYS,
    ActionSpace,
)

CHANNELS = ("push", "email", "in_app")
"""Channels the schema accepts; only `push` can be active or paused for now (see validation)."""

STATUSES = ("draft", "active", "paused")


def _one_of(options: tuple[str, ...], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in options:
            raise ValueError(f"unknown {what} {value!r}; expected one of: {', '.join(options)}")
        return value

    return AfterValidator(check)


def _frequency(value: int) -> int:
    if value not in FREQUENCIES:
        raise ValueError(f"frequency {value} is not one of {', '.join(map(str, FREQUENCIES))} pushes per week")
    return value


Slug = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)]
CountryCode = Annotated[str, _one_of(tuple(COUNTRIES), "country")]
Channel = Annotated[str, _one_of(CHANNELS, "channel")]
ValueProposition = Annotated[str, _one_of(VALUE_PROPOSITIONS, "value proposition")]
Segment = Annotated[str, _one_of(LIFECYCLE_SEGMENTS, "lifecycle segment")]
Platform = Annotated[str, _one_of(PLATFORMS, "platform")]
Category = Annotated[str, _one_of(CATEGORIES, "category")]
Tone = Annotated[str, _one_of(TONES, "tone")]
CouponKind = Annotated[str, _one_of(COUPON_KINDS, "coupon kind")]
Weekday = Annotated[str, _one_of(WEEKDAYS, "weekday")]
Objective = Annotated[str, _one_of(OBJECTIVES, "objective")]
Status = Annotated[str, _one_of(STATUSES, "status")]
Hour = Annotated[int, Field(ge=0, le=23)]
Frequency = Annotated[int, AfterValidator(_frequency)]
Share = Annotated[float, Field(ge=0, le=1)]
Money = Annotated[float, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Audience(_Model):
    """Who is eligible: the lifecycle segments, narrowed by optional rules on the user's profile.

    Every rule matches a column of the `user_features` mart: `categories` is the user's single
    `category_interest`, so campaigns on different categories reach different users.
    """

    segments: list[Segment] = Field(min_length=1)
    platforms: list[Platform] | None = Field(None, min_length=1)
    regions: list[str] | None = Field(None, min_length=1, description="Region codes of the country.")
    categories: list[Category] | None = Field(None, min_length=1)
    mp_user: bool | None = None
    min_lifetime_orders: int | None = Field(None, ge=0)
    min_days_since_last_order: int | None = Field(None, ge=0)
    max_days_since_last_order: int | None = Field(None, ge=0)


class Coupon(_Model):
    """The coupon ladder: each value is an arm the bandit may pick; 0 means "no coupon" and costs nothing."""

    kind: CouponKind
    values: list[Money] = Field(min_length=1, description="Amounts in local currency, or percentages.")
    max_discount: Money | None = Field(None, gt=0, description="Cap of a percent coupon, local currency.")
    cost_share: float = Field(1.0, gt=0, le=1, description="Share of the discount the marketplace pays.")
    limit_per_user: int = Field(1, ge=1, le=10, description="Redemptions per user per month.")
    validity_days: int = Field(COUPON_VALIDITY_DAYS, ge=1, le=30)


class Params(_Model):
    """Values the wording may quote: `{installments}`, `{cashback}` (a percent), `{min_purchase}` (money)."""

    installments: int | None = Field(None, ge=2, le=36)
    cashback: float | None = Field(None, gt=0, le=100)
    min_purchase: Money | None = Field(None, gt=0)


class Template(_Model):
    """One wording of the campaign: its tone is an action dimension the bandit learns about."""

    id: Slug
    tone: Tone
    title: str = Field(min_length=1)
    body: str = Field(min_length=1)


class SendWindow(_Model):
    """Local hours and weekdays the campaign may send at; each is an action option."""

    hours: list[Hour] = Field(min_length=1)
    weekdays: list[Weekday] = Field(min_length=1)


class FrequencyRule(_Model):
    options: list[Frequency] = Field(min_length=1, description="Pushes per weekly plan the bandit may choose.")
    weekly_cap: int = Field(ge=1, description="Most pushes one user gets from this campaign in a week.")


class Budget(_Model):
    monthly: Money = Field(description="Coupon spend a calendar month (the marketplace's share), local currency.")
    currency: str


class Schedule(_Model):
    start: dt.date
    end: dt.date | None = Field(None, description="Last day the campaign runs (inclusive); none for open-ended.")
    status: Status


DEFAULT_SALT = "pushgrowth"


class Shares(_Model):
    """How a campaign's eligible users are split, by a stable hash of (user, campaign, salt)."""

    holdout: Share
    bau: Share
    bandit: Share
    salt: str = Field(DEFAULT_SALT, min_length=1,
                      description="The salt of the group hash. A new salt reshuffles who is in which group, so it "
                                  "is refused for a campaign already running (see `loader.refuse_running_changes`).")


class BauDefaults(_Model):
    """The business-as-usual plan: what the CRM team sent before the bandit, and still sends to the BAU group."""

    coupon: Money
    template: str
    hour: Hour
    weekday: Weekday
    frequency: Frequency


class Campaign(_Model):
    """A recurring campaign: who may receive it, the options the bandit chooses from, the money it may spend."""

    id: Slug
    country: CountryCode
    channel: Channel = "push"
    name: str = Field(min_length=1)
    owner: str | None = Field(None, description="Team or person accountable for the campaign.")
    value_proposition: ValueProposition
    objective: Objective
    audience: Audience
    coupon: Coupon
    params: Params = Params()
    templates: list[Template] = Field(min_length=1)
    send_window: SendWindow
    frequency: FrequencyRule
    budget: Budget
    schedule: Schedule
    shares: Shares
    bau: BauDefaults

    @property
    def currency(self) -> str:
        return COUNTRIES[self.country].currency

    @property
    def weekday_numbers(self) -> tuple[int, ...]:
        """Send weekdays as 0 (Monday) to 6, the convention of `domain.plan_send_offsets`."""
        return tuple(WEEKDAYS.index(d) for d in self.send_window.weekdays)

    @property
    def joint_action_count(self) -> int:
        """How many distinct weekly plans the bandit chooses from: the product of the five dimensions."""
        return (len(self.coupon.values) * len(self.templates) * len(self.send_window.hours)
                * len(self.send_window.weekdays) * len(self.frequency.options))

    def template(self, template_id: str) -> Template:
        for tpl in self.templates:
            if tpl.id == template_id:
                return tpl
        raise KeyError(f"campaign {self.id} has no template {template_id!r}; "
                       f"it has {', '.join(t.id for t in self.templates)}")

    def action_space(self) -> ActionSpace:
        """The campaign's options in the form the bandit, allocation and the World's oracle share."""
        return ActionSpace(
            value_proposition=self.value_proposition,
            coupon_kind=self.coupon.kind,
            coupon_values=tuple(float(v) for v in self.coupon.values),
            templates=tuple((t.id, t.tone) for t in self.templates),
            hours=tuple(self.send_window.hours),
            weekdays=self.weekday_numbers,
            frequencies=tuple(self.frequency.options),
            coupon_cap=float(self.coupon.max_discount or 0.0),
        )

    def runs_on(self, day: dt.date) -> bool:
        """Whether the schedule covers `day` (status aside)."""
        return self.schedule.start <= day and (self.schedule.end is None or day <= self.schedule.end)

    def is_active(self, day: dt.date) -> bool:
        return self.schedule.status == "active" and self.runs_on(day)


class Catalog(_Model):
    """The validated catalog: campaigns from every file, the policy they were checked against, and a version.

    `version` is a hash of the files' names and contents (see `loader.catalog_hash`), so a decision logged
    with it can be traced to the exact campaign definitions that produced it.
    """

    campaigns: tuple[Campaign, ...]
    policies: dict[str, CountryPolicy]
    version: str
    root: Path
    files: dict[str, str] = Field(default_factory=dict, description="campaign id -> file it is defined in")

    @property
    def countries(self) -> tuple[str, ...]:
        return tuple(sorted({c.country for c in self.campaigns}))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.campaigns)

    def get(self, campaign_id: str) -> Campaign:
        """The campaign with this id; a KeyError naming the closest ids otherwise."""
        for campaign in self.campaigns:
            if campaign.id == campaign_id:
                return campaign
        close = difflib.get_close_matches(campaign_id, self.ids, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown campaign id {campaign_id!r}{hint}")

    def by_country(self, country: str) -> tuple[Campaign, ...]:
        return tuple(c for c in self.campaigns if c.country == country)

    def active(self, on: dt.date, country: str | None = None) -> tuple[Campaign, ...]:
        """Campaigns with status `active` whose schedule covers `on` (optionally of one country)."""
        return tuple(c for c in self.campaigns if c.is_active(on) and (country is None or c.country == country))


CATALOG_FILE_KEYS = ("country", "description", "campaigns")
"""Top-level keys of a catalog file: an optional `country` every campaign must belong to, and `campaigns`."""

__all__ = ["CHANNELS", "STATUSES", "Audience", "BauDefaults", "Budget", "Campaign", "Catalog", "Coupon",
           "FrequencyRule", "Params", "Schedule", "SendWindow", "Shares", "Template"]
