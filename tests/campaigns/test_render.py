"""Rendering pushes: local money formats, placeholders, and refusals that would send broken text."""

from __future__ import annotations

import pytest

from pushgrowth.campaigns import Campaign, format_coupon, format_money, render
from pushgrowth.campaigns.wording import TemplateSyntaxError, placeholders
from tests.campaigns.conftest import campaign


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (5000, "ARS", "$ 5.000"), (15000.0, "ARS", "$ 15.000"), (1234567.5, "ARS", "$ 1.234.567,50"),
    (20, "BRL", "R$ 20"), (12.5, "BRL", "R$ 12,50"), (1500, "MXN", "$ 1,500"), (99.5, "MXN", "$ 99.50"),
    (0, "CLP", "$ 0"),
])
def test_money_in_each_sites_format(amount, currency, text):
    assert format_money(amount, currency) == text


def test_coupon_text_by_kind():
    assert format_coupon("percent", 15, "ARS") == "15%"
    assert format_coupon("percent", 12.5, "BRL") == "12,5%"
    assert format_coupon("amount", 20, "BRL") == "R$ 20"
    with pytest.raises(ValueError, match="no text"):
        format_coupon("none", 0, "ARS")
    with pytest.raises(ValueError, match="no money format"):
        format_money(1, "USD")


def test_render_fills_every_placeholder():
    c = Campaign.model_validate(campaign())
    push = render("urgencia", c, 5000, "Lucía", "home")
    assert push.title == "Lucía, tu cupón de $ 5.000 vence hoy"
    assert push.body == "Usalo en compras desde $ 30.000 con envío gratis."
    body = render(c.templates[1], c, 2000, "Lucía", "electronics").body
    assert body == "Elegí electrónica y recibilo gratis en tu casa."


def test_render_in_portuguese_with_percent_coupons_and_params():
    c = Campaign.model_validate(campaign(**{
        "id": "mlb-x", "country": "MLB", "budget.currency": "BRL", "coupon.kind": "percent",
        "coupon.values": [10, 15], "coupon.max_discount": 50, "bau.coupon": 10,
        "params": {"installments": 10, "cashback": 15, "min_purchase": 79},
        "templates.0.body": "Em até {installments}x, {cashback} de volta e frete grátis desde {min_purchase} "
                            "em {category}.",
    }))
    push = render("urgencia", c, 15, "João", "toys")
    assert push.title == "João, tu cupón de 15% vence hoy"
    assert push.body == "Em até 10x, 15% de volta e frete grátis desde R$ 79 em brinquedos."


def test_render_refuses_what_would_send_broken_text():
    c = Campaign.model_validate(campaign(**{"coupon.values": [0, 2000]}))
    with pytest.raises(ValueError, match=r"no value for placeholder\(s\) \{coupon\}"):
        render("urgencia", c, 0, "Lucía", "home")
    with pytest.raises(ValueError, match="not on the ladder"):
        render("urgencia", c, 2500, "Lucía", "home")
    with pytest.raises(KeyError, match="has no template 'promo'"):
        render("promo", c, 2000, "Lucía", "home")
    assert render("curiosidad", c, 0, "Lucía", "home").body == "Te espera en tu cuenta, Lucía."


def test_placeholders_are_parsed_strictly():
    assert placeholders("{first_name}, {coupon} en {category}") == ("first_name", "coupon", "category")
    assert placeholders("sin llaves {{literal}}") == ()
    with pytest.raises(TemplateSyntaxError, match="malformed"):
        placeholders("roto {first_name")
    with pytest.raises(TemplateSyntaxError, match="format spec"):
        placeholders("{coupon!r}")
