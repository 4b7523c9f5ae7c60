"""Shared vocabulary of the platform: countries, value propositions, tones, segments and the push plan.

Every part (the World, the campaign catalog, allocation, the bandit) speaks these names, so they live in one
plain module with no dependencies beyond the standard library.

A decision is a *weekly push plan* for one (user, campaign): a coupon, a wording template (which carries a
value proposition and a tone), a local send hour, an anchor weekday and a frequency of 1-3 pushes in the next
seven days. `plan_send_offsets` turns the weekday and the frequency into the day offsets of the sends, so that
allocation (which writes the outbox) and the World's oracle (which values a plan) agree exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PLAN_DAYS = 7
"""A plan covers the seven days starting on its decision date; the campaign does not re-decide the user before."""

ATTRIBUTION_DAYS = 3
"""An order counts as caused by a push when it happens within this many days after the push was opened."""

COUPON_VALIDITY_DAYS = 7
"""A coupon sent with a push can be redeemed on any order during this many days after the send."""

MATURITY_DAYS = PLAN_DAYS + ATTRIBUTION_DAYS
"""A decision's outcomes are final (mature) this many days after its decision date."""

FREQUENCIES = (1, 2, 3)
"""Pushes per plan (per week) a campaign may choose."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

VALUE_PROPOSITIONS = (
    "free_shipping",
    "installments",
    "mp_cashback",
    "category_discount",
    "cart_reminder",
    "browse_reminder",
    "loyalty",
)
"""What a campaign offers or reminds of; users have hidden, heterogeneous affinities for each."""

TONES = ("urgency", "benefit", "personal", "social_proof", "curiosity")
"""How a wording template speaks; users have hidden affinities for each."""

CATEGORIES = (
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "supermarket",
    "toys",
    "auto_parts",
    "health",
    "books",
)

PLATFORMS = ("android", "ios", "web")

LIFECYCLE_SEGMENTS = ("new", "active", "at_risk", "dormant", "churned")
"""Derived from behaviour by the `lifecycle_segments` dbt model; never drawn by the World."""

COUPON_KINDS = ("none", "amount", "percent")

GROUPS = ("holdout", "bau", "bandit")

OBJECTIVES = ("open", "conversion", "net_revenue")


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    timezone: str
    weight: float


@dataclass(frozen=True)
class Country:
    """A marketplace site: its currency, language and the regions (with their time zones) users live in."""

    code: str
    name: str
    currency: str
    language: str
    regions: tuple[Region, ...] = field(default_factory=tuple)

    @property
    def timezones(self) -> tuple[str, ...]:
        return tuple(sorted({r.timezone for r in self.regions}))


def _regions(*rows: tuple[str, str, str, float]) -> tuple[Region, ...]:
    return tuple(Region(code, name, tz, weight) for code, name, tz, weight in rows)


COUNTRIES: dict[str, Country] = {
    "MLA": Country(
        "MLA",
        "Argentina",
        "ARS",
        "es",
        _regions(
            ("BA", "Buenos Aires", "America/Argentina/Buenos_Aires", 0.46),
            ("CABA", "Ciudad de Buenos Aires", "America/Argentina/Buenos_Aires", 0.16),
            ("CBA", "Córdoba", "America/Argentina/Cordoba", 0.10),
            ("SF", "Santa Fe", "America/Argentina/Cordoba", 0.09),
            ("MZA", "Mendoza", "America/Argentina/Mendoza", 0.05),
            ("TUC", "Tucumán", "America/Argentina/Tucuman", 0.04),
            ("SAL", "Salta", "America/Argentina/Salta", 0.03),
            ("NQN", "Neuquén", "America/Argentina/Salta", 0.03),
            ("USH", "Tierra del Fuego", "America/Argentina/Ushuaia", 0.04),
        ),
    ),
    "MLB": Country(
        "MLB",
        "Brasil",
        "BRL",
        "pt",
        _regions(
            ("SP", "São Paulo", "America/Sao_Paulo", 0.30),
            ("RJ", "Rio de Janeiro", "America/Sao_Paulo", 0.12),
            ("MG", "Minas Gerais", "America/Sao_Paulo", 0.11),
            ("PR", "Paraná", "America/Sao_Paulo", 0.07),
            ("RS", "Rio Grande do Sul", "America/Sao_Paulo", 0.07),
            ("BA", "Bahia", "America/Bahia", 0.07),
            ("PE", "Pernambuco", "America/Recife", 0.05),
            ("CE", "Ceará", "America/Fortaleza", 0.05),
            ("PA", "Pará", "America/Belem", 0.04),
            ("AM", "Amazonas", "America/Manaus", 0.04),
            ("MT", "Mato Grosso", "America/Cuiaba", 0.03),
            ("MS", "Mato Grosso do Sul", "America/Campo_Grande", 0.02),
            ("AC", "Acre", "America/Rio_Branco", 0.02),
            ("FN", "Fernando de Noronha", "America/Noronha", 0.01),
        ),
    ),
    "MLM": Country(
        "MLM",
        "México",
        "MXN",
        "es",
        _regions(
            ("CDMX", "Ciudad de México", "America/Mexico_City", 0.22),
            ("MEX", "Estado de México", "America/Mexico_City", 0.15),
            ("JAL", "Jalisco", "America/Mexico_City", 0.09),
            ("NL", "Nuevo León", "America/Monterrey", 0.08),
            ("PUE", "Puebla", "America/Mexico_City", 0.06),
            ("VER", "Veracruz", "America/Mexico_City", 0.06),
            ("GTO", "Guanajuato", "America/Mexico_City", 0.05),
            ("BC", "Baja California", "America/Tijuana", 0.06),
            ("SON", "Sonora", "America/Hermosillo", 0.04),
            ("CHIH", "Chihuahua", "America/Chihuahua", 0.05),
            ("SIN", "Sinaloa", "America/Mazatlan", 0.04),
            ("QROO", "Quintana Roo", "America/Cancun", 0.04),
            ("YUC", "Yucatán", "America/Merida", 0.06),
        ),
    ),
    "MLC": Country(
        "MLC",
        "Chile",
        "CLP",
        "es",
        _regions(
            ("RM", "Región Metropolitana", "America/Santiago", 0.62),
            ("VAL", "Valparaíso", "America/Santiago", 0.14),
            ("BIO", "Biobío", "America/Santiago", 0.14),
            ("MAG", "Magallanes", "America/Punta_Arenas", 0.10),
        ),
    ),
    "MCO": Country(
        "MCO",
        "Colombia",
        "COP",
        "es",
        _regions(
            ("BOG", "Bogotá", "America/Bogota", 0.45),
            ("ANT", "Antioquia", "America/Bogota", 0.25),
            ("VAC", "Valle del Cauca", "America/Bogota", 0.20),
            ("ATL", "Atlántico", "America/Bogota", 0.10),
        ),
    ),
}


USD_PER_UNIT: dict[str, float] = {"ARS": 0.00075, "BRL": 0.18, "MXN": 0.055, "CLP": 0.00105, "COP": 0.00025}
"""Fixed reporting exchange rates (USD per unit of local currency), used only to pool results across countries;
every per-country figure stays in local currency."""


def country(code: str) -> Country:
    """The country with this site code, or a ValueError that lists the known ones."""
    try:
        return COUNTRIES[code]
    except KeyError:
        raise ValueError(f"unknown country {code!r}; known: {', '.join(COUNTRIES)}") from None


def plan_send_offsets(decision_date: dt.date, send_weekday: int, frequency: int) -> tuple[int, ...]:
    """Day offsets (from the decision date, each in 0..6) of the pushes of a weekly plan.

    The first push goes on the next `send_weekday` (0 = Monday) on or after the decision date; further pushes
    are spread evenly over the week (every 3 days for two pushes, every 2 days for three), wrapping within the
    seven days of the plan so that no push falls outside it.
    """
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be one of {FREQUENCIES}, got {frequency}")
    if not 0 <= send_weekday <= 6:
        raise ValueError(f"send_weekday must be 0 (Monday) to 6 (Sunday), got {send_weekday}")
    first = (send_weekday - decision_date.weekday()) % PLAN_DAYS
    spacing = PLAN_DAYS // frequency if frequency > 1 else 0
    return tuple(sorted({(first + k * spacing) % PLAN_DAYS for k in range(frequency)}))


@dataclass(frozen=True)
class ActionSpace:
    """The options of one campaign along the five decision dimensions; a joint action picks one of each.

    Templates are (template_id, tone) pairs; the value proposition is the campaign's own. Hours are local send
    hours already cleared of quiet hours, weekdays are 0 (Monday) to 6.
    """

    value_proposition: str
    coupon_kind: str
    coupon_values: tuple[float, ...]
    templates: tuple[tuple[str, str], ...]
    hours: tuple[int, ...]
    weekdays: tuple[int, ...]
    frequencies: tuple[int, ...]
    coupon_cap: float = 0.0

    @property
    def size(self) -> int:
        return (len(self.coupon_values) * len(self.templates) * len(self.hours) * len(self.weekdays)
                * len(self.frequencies))

    def joint_actions(self) -> pd.DataFrame:
        """Every joint action as a row with the World's action columns (and `template_id`)."""
        import itertools

        import pandas as pd

        rows = itertools.product(self.coupon_values, self.templates, self.hours, self.weekdays, self.frequencies)
        frame = pd.DataFrame(
            [(c, t[0], t[1], h, w, f) for c, t, h, w, f in rows],
            columns=["coupon_value", "template_id", "tone", "send_hour", "send_weekday", "frequency"],
        )
        frame.insert(0, "coupon_kind", [self.coupon_kind if v > 0 else "none" for v in frame["coupon_value"]])
        frame["coupon_cap"] = self.coupon_cap
        frame["value_proposition"] = self.value_proposition
        return frame
