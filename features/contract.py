"""The raw-data contract (``shared/DATA_CONTRACT.md`` v1) as typed constants.

One place names every table, column, Arrow type and enumeration, so the simulator writes exactly
what the validator checks and nobody re-types a list of vendor types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

import pyarrow as pa

VendorType = Literal[
    "photographer",
    "videographer",
    "venue",
    "florist",
    "caterer",
    "planner",
    "dj_band",
    "baker",
    "hair_makeup",
    "stationer",
    "other",
]
SubscriptionTier = Literal["starter", "professional", "scale", "enterprise"]
CoreFeature = Literal[
    "client_management",
    "form_builder",
    "journey_automation",
    "analytics",
    "document_library",
    "payments",
    "calendar",
    "reviews",
]
TicketCategory = Literal["technical", "billing", "onboarding", "feature_request", "complaint"]
BillingEventType = Literal[
    "payment_succeeded",
    "payment_failed",
    "card_expiring",
    "plan_upgraded",
    "plan_downgraded",
    "refund",
]
MilestoneType = Literal[
    "account_setup",
    "first_client",
    "first_form",
    "first_journey",
    "ten_clients",
    "first_automation",
]
InterventionType = Literal[
    "email_sequence",
    "in_app_message",
    "phone_call",
    "feature_tour",
    "personalized_support",
]

VENDOR_TYPES: Final = get_args(VendorType)
SUBSCRIPTION_TIERS: Final = get_args(SubscriptionTier)
CORE_FEATURES: Final = get_args(CoreFeature)
TICKET_CATEGORIES: Final = get_args(TicketCategory)
BILLING_EVENT_TYPES: Final = get_args(BillingEventType)
MILESTONE_TYPES: Final = get_args(MilestoneType)
INTERVENTION_TYPES: Final = get_args(InterventionType)

# ISO 3166-1 alpha-2 codes of the southern hemisphere, where the wedding season is Oct-Apr.
SOUTHERN_HEMISPHERE_COUNTRIES: Final = frozenset(
    {
        "AU",
        "NZ",
        "ZA",
        "AR",
        "CL",
        "BR",
        "UY",
        "PY",
        "BO",
        "PE",
        "NA",
        "BW",
        "LS",
        "SZ",
        "MZ",
        "ZW",
        "MG",
        "MU",
        "FJ",
        "PG",
    }
)
# All officially assigned ISO 3166-1 alpha-2 codes.
ISO_COUNTRY_CODES: Final = frozenset(
    [
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
    ]
)

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """A contract table: columns with Arrow types, which are nullable, and if it is required."""

    name: str
    columns: tuple[tuple[str, pa.DataType], ...]
    nullable: frozenset[str] = frozenset()
    required: bool = True

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c, t, nullable=c in self.nullable) for c, t in self.columns])

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


SUPPLIERS = TableSpec(
    "suppliers",
    (
        ("supplier_id", pa.string()),
        ("business_name", pa.string()),
        ("first_name", pa.string()),
        ("email", pa.string()),
        ("vendor_type", pa.string()),
        ("subscription_tier", pa.string()),
        ("monthly_revenue", pa.float64()),
        ("country", pa.string()),
        ("signup_at", TIMESTAMP),
        ("cs_agent_id", pa.string()),
    ),
    nullable=frozenset({"business_name", "first_name", "email", "cs_agent_id"}),
)
ACTIVITY_DAILY = TableSpec(
    "activity_daily",
    (
        ("supplier_id", pa.string()),
        ("date", pa.date32()),
        ("logins", pa.int64()),
        ("session_minutes", pa.float64()),
    ),
)
FEATURE_USAGE_DAILY = TableSpec(
    "feature_usage_daily",
    (
        ("supplier_id", pa.string()),
        ("date", pa.date32()),
        ("feature_key", pa.string()),
        ("uses", pa.int64()),
    ),
)
CLIENTS_DAILY = TableSpec(
    "clients_daily",
    (
        ("supplier_id", pa.string()),
        ("date", pa.date32()),
        ("total_clients", pa.int64()),
        ("active_clients_30d", pa.int64()),
    ),
)
SUPPORT_TICKETS = TableSpec(
    "support_tickets",
    (
        ("ticket_id", pa.string()),
        ("supplier_id", pa.string()),
        ("created_at", TIMESTAMP),
        ("resolved_at", TIMESTAMP),
        ("category", pa.string()),
        ("satisfaction_rating", pa.int64()),
    ),
    nullable=frozenset({"resolved_at", "satisfaction_rating"}),
)
BILLING_EVENTS = TableSpec(
    "billing_events",
    (
        ("event_id", pa.string()),
        ("supplier_id", pa.string()),
        ("occurred_at", TIMESTAMP),
        ("event_type", pa.string()),
        ("amount", pa.float64()),
    ),
)
MILESTONES = TableSpec(
    "milestones",
    (("supplier_id", pa.string()), ("milestone_type", pa.string()), ("achieved_at", TIMESTAMP)),
)
CANCELLATIONS = TableSpec(
    "cancellations",
    (("supplier_id", pa.string()), ("cancelled_at", TIMESTAMP), ("reason", pa.string())),
    nullable=frozenset({"reason"}),
)
INTERVENTIONS_LOG = TableSpec(
    "interventions_log",
    (("supplier_id", pa.string()), ("sent_at", TIMESTAMP), ("intervention_type", pa.string())),
    required=False,
)

TABLES: Final[tuple[TableSpec, ...]] = (
    SUPPLIERS,
    ACTIVITY_DAILY,
    FEATURE_USAGE_DAILY,
    CLIENTS_DAILY,
    SUPPORT_TICKETS,
    BILLING_EVENTS,
    MILESTONES,
    CANCELLATIONS,
    INTERVENTIONS_LOG,
)
TABLES_BY_NAME: Final = {t.name: t for t in TABLES}
# The tables of one row per supplier and day whose every rule is about the row alone (no
# uniqueness across rows): an incremental build validates only their rows after the last day it
# built, the rows before having been validated by the builds that stored them. The other tables
# are small and always validated whole (ticket and event ids are unique across all days).
DAILY_TABLES: Final = frozenset(
    {ACTIVITY_DAILY.name, FEATURE_USAGE_DAILY.name, CLIENTS_DAILY.name}
)
