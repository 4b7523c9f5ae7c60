"""One test per validation rule: the fixture campaign broken in exactly one way, and the problem that names it."""

from __future__ import annotations

import pytest

from tests.campaigns.conftest import BASE, CAMPAIGN_ID, campaign, country_file, where

ID = CAMPAIGN_ID


def test_the_fixture_campaign_is_valid(check):
    assert check(campaign()) == []


# (rule, changes to the fixture, the one field expected to be named, words the message must contain)
CASES = [
    ("unknown segment", {"audience.segments": ["active", "vip"]}, "audience.segments[1]",
     ["unknown lifecycle segment 'vip'", "at_risk"]),
    ("unknown region", {"audience.regions": ["SP"]}, "audience.regions[0]",
     ["unknown region 'SP' for MLA", "CABA"]),
    ("empty day range", {"audience.min_days_since_last_order": 60, "audience.max_days_since_last_order": 30},
     "audience.min_days_since_last_order", ["nobody is eligible"]),
    ("amount coupon above policy", {"coupon.values": [2000, 3500, 25000], "bau.coupon": 2000}, "coupon.values[2]",
     ["$ 25.000", "MLA policy maximum of $ 20.000"]),
    ("percent coupon above policy",
     {"coupon.kind": "percent", "coupon.values": [10, 15, 50], "coupon.max_discount": 10000, "bau.coupon": 10},
     "coupon.values[2]", ["50%", "maximum of 35%"]),
    ("percent coupon without a cap", {"coupon.kind": "percent", "coupon.values": [10, 15, 20], "bau.coupon": 10},
     "coupon.max_discount", ["needs max_discount"]),
    ("percent cap above policy",
     {"coupon.kind": "percent", "coupon.values": [10, 15, 20], "coupon.max_discount": 30000, "bau.coupon": 10},
     "coupon.max_discount", ["$ 30.000", "$ 20.000"]),
    ("cap on an amount coupon", {"coupon.max_discount": 5000}, "coupon.max_discount", ["only applies to percent"]),
    ("a none coupon that offers money", {"coupon.kind": "none", "coupon.values": [0, 1000], "bau.coupon": 0,
                                         "templates": [BASE["templates"][2]], "bau.template": "curiosidad"},
     "coupon.values[1]", ["kind none can only offer 0"]),
    ("duplicate coupon value", {"coupon.values": [2000, 3500, 2000]}, "coupon.values[2]", ["listed twice"]),
    ("budget below one minimal day", {"budget.monthly": 30000}, "budget.monthly",
     ["$ 30.000", "cannot cover one minimal day", "40 redemptions x $ 1.000", "= $ 40.000"]),
    ("currency of another country", {"budget.currency": "BRL"}, "budget.currency", ["MLA budgets are in ARS"]),
    ("unknown placeholder", {"templates.0.body": "Hola {nombre}, usalo ya."}, "templates[0].body",
     ["unknown placeholder {nombre}", "{first_name}"]),
    ("placeholder without its param", {"templates.2.body": "Hasta {installments} cuotas, {first_name}."},
     "templates[2].body", ["uses {installments} but params.installments is not set"]),
    ("malformed braces", {"templates.2.title": "¿Ya viste tu cupón {first_name?"}, "templates[2].title",
     ["malformed braces"]),
    ("format spec in a placeholder", {"templates.2.title": "¿Ya viste tu cupón, {first_name:>20}?"},
     "templates[2].title", ["format spec"]),
    ("title too long once rendered", {"templates.1.title": "Envío gratis + {coupon} de regalo en {category} hoy"},
     "templates[1].title", ["renders to 65 characters", "above the 50", "accesorios para vehículos"]),
    ("body too long once rendered", {"templates.2.body": "Te espera en tu cuenta, {first_name}. " * 5},
     "templates[2].body", ["above the 150 a push body may have"]),
    ("{coupon} with a no-coupon arm", {"coupon.values": [0, 2000, 3500, 5000], "templates": [BASE["templates"][0],
                                       BASE["templates"][2]], "bau.template": "curiosidad"},
     "templates[0].title", ["uses {coupon} but the campaign can send no coupon"]),
    ("duplicate template id", {"templates.2.id": "urgencia", "bau.template": "beneficio"}, "templates[2].id",
     ["duplicate template id 'urgencia'"]),
    ("hour in quiet hours", {"send_window.hours": [9, 12, 19, 23]}, "send_window.hours[3]",
     ["hour 23 falls in MLA's quiet hours (22:00-07:59)"]),
    ("duplicate weekday", {"send_window.weekdays": ["tue", "thu", "tue"]}, "send_window.weekdays[2]",
     ["listed twice"]),
    ("frequency option above the campaign cap", {"frequency.options": [1, 2, 3]}, "frequency.options[2]",
     ["3 pushes a week is above the campaign's own weekly_cap of 2"]),
    ("campaign cap above the country cap", {"frequency.options": [1, 2, 3], "frequency.weekly_cap": 6},
     "frequency.weekly_cap", ["weekly_cap 6 is above MLA's cap of 5"]),
    ("end before start", {"schedule.end": "2026-08-31"}, "schedule.end",
     ["end 2026-08-31 is before start 2026-09-01"]),
    ("shares that do not sum to 1", {"shares.bandit": 0.40}, "shares", ["= 0.95", "must sum to 1"]),
    ("holdout below the minimum", {"shares.holdout": 0.02, "shares.bandit": 0.53}, "shares.holdout",
     ["holdout 0.02 is below the minimum of 0.05"]),
    ("BAU coupon off the ladder", {"bau.coupon": 3000}, "bau.coupon", ["3000 is not on the coupon ladder"]),
    ("BAU template unknown", {"bau.template": "promo"}, "bau.template",
     ["unknown template 'promo'", "urgencia, beneficio, curiosidad"]),
    ("BAU hour outside the window", {"bau.hour": 21}, "bau.hour", ["hour 21 is not in send_window.hours"]),
    ("BAU weekday outside the window", {"bau.weekday": "mon"}, "bau.weekday",
     ["'mon' is not in send_window.weekdays"]),
    ("BAU frequency outside the options", {"bau.frequency": 3}, "bau.frequency",
     ["3 is not in frequency.options"]),
    ("email channel activated", {"channel": "email"}, "channel", ["channel 'email' is not yet supported"]),
]


@pytest.mark.parametrize(("rule", "changes", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_names_the_campaign_and_the_field(check, rule, changes, field, words):
    problems = check(campaign(**changes))
    assert where(problems) == [(ID, field)], [str(p) for p in problems]
    for word in words:
        assert word in problems[0].message, problems[0].message
    assert problems[0].file.endswith("MLA.yaml") and problems[0].line is not None


def test_send_window_empty_after_quiet_hours(check):
    problems = check(campaign(**{"send_window.hours": [22, 23, 6], "bau.hour": 22}))
    assert where(problems) == [(ID, "send_window.hours")]
    assert "send window is empty after MLA's quiet hours (22:00-07:59)" in problems[0].message


def test_the_longest_category_counts_only_if_the_audience_can_have_it(check):
    title = {"templates.1.title": "Envío gratis + {coupon} de regalo en {category} hoy"}
    assert check(campaign(**title, **{"audience.categories": ["home"]})) == []


def test_draft_campaigns_may_use_channels_that_are_not_shipped_yet(check):
    assert check(campaign(**{"channel": "in_app", "schedule.status": "draft"})) == []


def test_campaign_country_must_match_the_file(check):
    other = campaign(**{"id": "mlb-test", "country": "MLB", "budget.currency": "BRL",
                        "coupon.values": [10, 20, 30], "bau.coupon": 20, "params.min_purchase": 79})
    problems = check(files={"MLA.yaml": country_file("MLA", campaign(), other)})
    assert where(problems) == [("mlb-test", "country")]
    assert "campaign country MLB is not the file's country MLA" in problems[0].message


def test_duplicate_ids_across_files_are_reported_in_both(check):
    problems = check(files={"MLA.yaml": country_file("MLA", campaign()),
                            "MLA-temporada.yaml": country_file("MLA", campaign(name="Otra"))})
    assert sorted((p.file.rsplit("/", 1)[-1], p.campaign_id, p.field) for p in problems) == [
        ("MLA-temporada.yaml", ID, "id"), ("MLA.yaml", ID, "id")]
    assert all("duplicate campaign id; also defined in" in p.message for p in problems)


def _twin(**changes):
    base = {"id": "mla-test-envio-gratis-2", "frequency.options": [1, 2, 3], "frequency.weekly_cap": 3}
    return campaign(**{**base, **changes})


def test_overlapping_campaigns_whose_caps_exceed_the_country_cap(check):
    first = campaign(**{"frequency.options": [1, 2, 3], "frequency.weekly_cap": 3})
    problems = check(first, _twin(**{"audience.segments": ["at_risk", "dormant"]}))
    assert where(problems) == [(ID, "frequency.weekly_cap"), ("mla-test-envio-gratis-2", "frequency.weekly_cap")]
    message = problems[0].message
    for words in ("overlaps mla-test-envio-gratis-2 (3)", "same value proposition (free_shipping)",
                  "segment at_risk", "add up to 6", "MLA's cap of 5"):
        assert words in message, message


@pytest.mark.parametrize("changes", [
    {"audience.segments": ["new"]},
    {"value_proposition": "cart_reminder"},
    {"schedule.start": "2027-01-01", "schedule.end": None},
    {"schedule.status": "paused"},
    {"frequency.options": [1, 2], "frequency.weekly_cap": 2},
], ids=["no shared segment", "another value proposition", "schedules apart", "paused", "caps within"])
def test_campaigns_that_do_not_overlap_may_add_up_to_more(check, changes):
    first = campaign(**{"frequency.options": [1, 2, 3], "frequency.weekly_cap": 3})
    assert check(first, _twin(**changes)) == []


def test_audiences_split_by_platform_or_category_do_not_overlap(check):
    first = campaign(**{"frequency.options": [1, 2, 3], "frequency.weekly_cap": 3,
                        "audience.platforms": ["android"], "audience.categories": ["home"]})
    assert check(first, _twin(**{"audience.platforms": ["ios", "web"]})) == []
    assert check(first, _twin(**{"audience.categories": ["fashion"]})) == []
    both = check(first, _twin(**{"audience.categories": ["home", "fashion"]}))
    assert [p.field for p in both] == ["frequency.weekly_cap", "frequency.weekly_cap"]


def test_three_campaigns_overlapping_on_one_segment_are_reported_together(check):
    caps = {"frequency.options": [1, 2], "frequency.weekly_cap": 2}
    trio = [campaign(**caps), campaign(**{**caps, "id": "mla-b", "audience.segments": ["at_risk"]}),
            campaign(**{**caps, "id": "mla-c", "audience.segments": ["at_risk", "dormant"]})]
    problems = check(*trio)
    assert sorted(p.campaign_id for p in problems) == ["mla-b", "mla-c", ID]
    assert all("add up to 6" in p.message for p in problems)
