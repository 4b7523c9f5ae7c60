"""Push wording: the placeholder vocabulary, local money formats and the rendering of a template.

Templates are reviewed in YAML long before a push is sent, so everything a template may mention is a fixed,
small set of placeholders whose values are known at decision time. Validation renders every template with
typical values to catch pushes that would be cut by the phone; allocation renders them with the user's values.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pushgrowth.domain import CATEGORIES, COUNTRIES

if TYPE_CHECKING:
    from pushgrowth.campaigns.schema import Campaign, Template

PLACEHOLDERS = ("first_name", "coupon", "category", "installments", "cashback", "min_purchase")
"""Every placeholder a template may use, written as `{name}`."""

PARAM_PLACEHOLDERS = ("installments", "cashback", "min_purchase")
"""Placeholders whose value comes from the campaign's `params`; using one without its param is a problem."""

# symbol, thousands separator, decimal separator: how each site writes prices in its own apps
MONEY_FORMATS: dict[str, tuple[str, str, str]] = {
    "ARS": ("$", ".", ","),
    "BRL": ("R$", ".", ","),
    "MXN": ("$", ",", "."),
    "CLP": ("$", ".", ","),
    "COP": ("$", ".", ","),
}

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "es": {
        "electronics": "electrónica", "fashion": "moda", "home": "hogar", "beauty": "belleza",
        "sports": "deportes", "supermarket": "supermercado", "toys": "juguetes",
        "auto_parts": "accesorios para vehículos", "health": "salud", "books": "libros",
    },
    "pt": {
        "electronics": "eletrônicos", "fashion": "moda", "home": "casa", "beauty": "beleza",
        "sports": "esportes", "supermarket": "supermercado", "toys": "brinquedos",
        "auto_parts": "acessórios para veículos", "health": "saúde", "books": "livros",
    },
}


class TemplateSyntaxError(ValueError):
    """A template text that `str.format` could not read (an unbalanced brace, a format spec, ...)."""


@dataclass(frozen=True)
class RenderedPush:
    """The text a phone shows: a title and a body."""

    title: str
    body: str


def _number(value: float, thousands: str, decimal: str) -> str:
    whole = round(value, 2).is_integer()
    text = f"{value:,.0f}" if whole else f"{value:,.2f}"
    return text.translate(str.maketrans({",": thousands, ".": decimal}))


def format_money(amount: float, currency: str) -> str:
    """`$ 5.000` (ARS), `R$ 20` (BRL), `$ 1,500` (MXN): the site's own price format, decimals only if any."""
    try:
        symbol, thousands, decimal = MONEY_FORMATS[currency]
    except KeyError:
        raise ValueError(f"no money format for currency {currency!r}; known: {', '.join(MONEY_FORMATS)}") from None
    return f"{symbol} {_number(float(amount), thousands, decimal)}"


def format_percent(value: float, currency: str = "ARS") -> str:
    """`15%`; a fractional percentage uses the site's decimal separator (`12,5%` in ARS, `12.5%` in MXN)."""
    decimal = MONEY_FORMATS.get(currency, MONEY_FORMATS["ARS"])[2]
    return f"{float(value):g}".replace(".", decimal) + "%"


def format_coupon(kind: str, value: float, currency: str) -> str:
    """How a coupon reads in a push: an amount in local money (`R$ 20`) or a percentage (`15%`)."""
    if kind == "percent":
        return format_percent(value, currency)
    if kind == "amount":
        return format_money(value, currency)
    raise ValueError(f"a {kind!r} coupon has no text; only amount and percent coupons can be shown")


def category_label(category: str, language: str) -> str:
    """The category as users read it in their language (lower case, to sit inside a sentence)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    return CATEGORY_LABELS[language][category]


def placeholders(text: str) -> tuple[str, ...]:
    """The placeholder names a template text uses, in order; raises TemplateSyntaxError on malformed braces.

    Only bare `{name}` fields are accepted: a format spec, a conversion or an attribute access would let the
    wording depend on things validation cannot check.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateSyntaxError(f"malformed braces ({exc}); write a literal brace as {{{{ or }}}}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise TemplateSyntaxError(f"placeholder {{{shown}}} has a format spec or conversion; write {{{name}}}")
        names.append(name)
    return tuple(names)


def placeholder_values(campaign: Campaign, coupon_value: float, first_name: str, category: str) -> dict[str, str]:
    """The text of every placeholder the campaign can fill (params it lacks are left out)."""
    country = COUNTRIES[campaign.country]
    values = {"first_name": first_name, "category": category_label(category, country.language)}
    if coupon_value > 0 and campaign.coupon.kind != "none":
        values["coupon"] = format_coupon(campaign.coupon.kind, coupon_value, country.currency)
    params = campaign.params
    if params.installments is not None:
        values["installments"] = str(params.installments)
    if params.cashback is not None:
        values["cashback"] = format_percent(params.cashback, country.currency)
    if params.min_purchase is not None:
        values["min_purchase"] = format_money(params.min_purchase, country.currency)
    return values


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with its placeholders replaced; a KeyError names a placeholder without a value."""
    missing = [name for name in placeholders(text) if name not in values]
    if missing:
        raise KeyError(f"no value for placeholder(s) {', '.join('{' + m + '}' for m in missing)}")
    return text.format_map(values)


def render(
    template: Template | str, campaign: Campaign, coupon_value: float, user_first_name: str, category: str,
) -> RenderedPush:
    """The push a user would receive: `template` (or its id) of `campaign` filled with the user's values.

    `coupon_value` must be on the campaign's ladder; a template that mentions `{coupon}` cannot be sent without
    a coupon (validation keeps such templates out of campaigns whose ladder offers 0).
    """
    tpl = campaign.template(template) if isinstance(template, str) else template
    if coupon_value not in campaign.coupon.values:
        raise ValueError(f"coupon value {coupon_value:g} is not on the ladder of {campaign.id}: "
                         f"{[float(v) for v in campaign.coupon.values]}")
    values = placeholder_values(campaign, coupon_value, user_first_name, category)
    try:
        return RenderedPush(fill(tpl.title, values), fill(tpl.body, values))
    except KeyError as exc:
        raise ValueError(f"{campaign.id}: template {tpl.id!r} with coupon {coupon_value:g}: "
                         f"{exc.args[0]}") from None
