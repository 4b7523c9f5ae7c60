"""The landing-zone contract: the raw extract tables, their columns and what each column means.

The company's extract jobs (or the World, in simulation) deliver, per country and local date, one Parquet file
per table and then a completion marker. Everything downstream (raw assets, dbt sources, Great Expectations
suites, the README) reads the schemas from here, so there is one definition of each table.

Dates are the user's *local* calendar date: a country's extract for 2026-09-01 holds the events that happened
on 2026-09-01 in each user's own time zone. Timestamps come twice: `*_utc` (timezone-aware UTC) and `*_local`
(naive wall-clock time in the user's zone). Money is in the country's currency.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS_UTC = pa.timestamp("us", tz="UTC")
TS_LOCAL = pa.timestamp("us")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    @property
    def file_name(self) -> str:
        return f"{self.name}.parquet"


def _c(name: str, type_: pa.DataType, description: str, nullable: bool = False) -> Column:
    return Column(name, type_, description, nullable)


USERS = Table(
    "users",
    "Snapshot of every registered user at the end of the local day (the CRM export).",
    (
        _c("snapshot_date", pa.date32(), "Local date of the snapshot."),
        _c("user_id", pa.int64(), "Marketplace user id, unique within the country."),
        _c("country", pa.string(), "Site code (MLA, MLB, MLM, ...)."),
        _c("first_name", pa.string(), "First name, used to personalize wording."),
        _c("signup_date", pa.date32(), "Local date of registration."),
        _c("platform", pa.string(), "Main device: android, ios or web."),
        _c("region", pa.string(), "Region (state or province) code."),
        _c("timezone", pa.string(), "IANA time zone of the user's region."),
        _c("push_opt_in", pa.bool_(), "Whether the user currently accepts marketing pushes."),
        _c("mp_user", pa.bool_(), "Whether the user has an active Mercado Pago account."),
        _c("category_interest", pa.string(), "Category the user browses most."),
        _c("lifetime_orders", pa.int32(), "Orders placed since signup."),
        _c("lifetime_gmv", pa.float64(), "Gross merchandise value since signup, local currency."),
        _c("last_session_date", pa.date32(), "Local date of the latest session; null if none.", True),
        _c("last_order_date", pa.date32(), "Local date of the latest order; null if none.", True),
        _c("usual_active_hour", pa.float64(), "The CRM's activity summary: circular mean local hour (0-24) of "
           "the user's sessions, weighted over about 90 days (app analytics); null without sessions.", True),
        _c("weekend_activity_share", pa.float64(), "The CRM's activity summary: share of the user's sessions on "
           "Saturdays and Sundays, weighted over about 90 days; null without sessions.", True),
    ),
    ("snapshot_date", "user_id"),
)

SESSIONS = Table(
    "sessions",
    "App and web sessions started during the local day.",
    (
        _c("session_id", pa.int64(), "Session id."),
        _c("user_id", pa.int64(), "User who started the session."),
        _c("started_at_utc", TS_UTC, "Start time, UTC."),
        _c("started_at_local", TS_LOCAL, "Start time in the user's time zone."),
        _c("platform", pa.string(), "android, ios or web."),
        _c("category", pa.string(), "Category browsed most in the session."),
    ),
    ("session_id",),
)

ORDERS = Table(
    "orders",
    "Orders placed during the local day (paid orders only).",
    (
        _c("order_id", pa.int64(), "Order id."),
        _c("user_id", pa.int64(), "Buyer."),
        _c("created_at_utc", TS_UTC, "Time of purchase, UTC."),
        _c("created_at_local", TS_LOCAL, "Time of purchase in the buyer's time zone."),
        _c("gmv", pa.float64(), "Gross merchandise value before coupon discounts, local currency."),
        _c("currency", pa.string(), "ISO currency code."),
        _c("category", pa.string(), "Main category of the order."),
    ),
    ("order_id",),
)

PUSH_SENDS = Table(
    "push_sends",
    "Send log of the delivery system: one row per push it attempted during the local day.",
    (
        _c("send_id", pa.int64(), "Send id."),
        _c("trace_id", pa.string(), "Trace id of the decision that produced the push."),
        _c("idempotency_key", pa.string(), "Idempotency key given by pushgrowth; never delivered twice."),
        _c("user_id", pa.int64(), "Recipient."),
        _c("campaign_id", pa.string(), "Campaign."),
        _c("template_id", pa.string(), "Wording template."),
        _c("coupon_code", pa.string(), "Coupon attached to the push; null if none.", True),
        _c("sent_at_utc", TS_UTC, "Time of the attempt, UTC."),
        _c("sent_at_local", TS_LOCAL, "Time of the attempt in the recipient's time zone."),
        _c("status", pa.string(), "delivered or failed."),
        _c("failure_reason", pa.string(), "Why a push failed (not_opted_in, invalid_token, expired, ...).", True),
    ),
    ("send_id",),
)

PUSH_EVENTS = Table(
    "push_events",
    "Engagement events on delivered pushes during the local day.",
    (
        _c("event_id", pa.int64(), "Event id."),
        _c("send_id", pa.int64(), "Send the event belongs to."),
        _c("trace_id", pa.string(), "Trace id of the decision."),
        _c("user_id", pa.int64(), "Recipient."),
        _c("event_type", pa.string(), "open (the user tapped the push)."),
        _c("event_at_utc", TS_UTC, "Time of the event, UTC."),
        _c("event_at_local", TS_LOCAL, "Time of the event in the recipient's time zone."),
    ),
    ("event_id",),
)

COUPON_REDEMPTIONS = Table(
    "coupon_redemptions",
    "Coupons applied to orders during the local day; the discount is the coupon's cost before co-funding.",
    (
        _c("redemption_id", pa.int64(), "Redemption id."),
        _c("order_id", pa.int64(), "Order the coupon was applied to."),
        _c("user_id", pa.int64(), "Buyer."),
        _c("trace_id", pa.string(), "Trace id of the push that carried the coupon."),
        _c("campaign_id", pa.string(), "Campaign that issued the coupon."),
        _c("coupon_code", pa.string(), "Coupon code."),
        _c("discount_amount", pa.float64(), "Discount granted, local currency."),
        _c("redeemed_at_utc", TS_UTC, "Time of redemption, UTC."),
        _c("country", pa.string(), "Site code."),
    ),
    ("redemption_id",),
)

OPT_OUTS = Table(
    "opt_outs",
    "Users who turned marketing pushes off during the local day.",
    (
        _c("user_id", pa.int64(), "User who opted out."),
        _c("opted_out_at_utc", TS_UTC, "Time of the opt-out, UTC."),
        _c("channel", pa.string(), "Channel turned off (push)."),
        _c("trace_id", pa.string(), "Trace id of the push that preceded the opt-out; null if none.", True),
    ),
    ("user_id", "channel"),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (USERS, SESSIONS, ORDERS, PUSH_SENDS, PUSH_EVENTS, COUPON_REDEMPTIONS, OPT_OUTS)
}

MARKER = "_SUCCESS"
"""Completion marker, written last: a JSON manifest of the drop (row count and sha256 of every file)."""


def empty_table(name: str) -> pa.Table:
    return TABLES[name].schema.empty_table()
