"""The tables, as SQLAlchemy Core. One MetaData; Alembic migrations must produce exactly this.

Conventions (checked by tests/db/test_migrations.py):
- times are UTC unix seconds in a double (``*_at`` and ``ts``): identical on SQLite and
  PostgreSQL, cheap to compare in the hot paths, and pandas reads them with one ``to_datetime``;
- phone numbers are E.164 strings;
- nothing is deleted: numbers and pools are retired, leases are ended, and every lease change
  is appended to ``lease_events``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

Time = sa.Float  # UTC unix seconds
Phone = sa.String(16)  # E.164: '+' and at most 15 digits

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # Region used to read national-format numbers (ISO 3166 alpha-2, e.g. "US").
    sa.Column("default_region", sa.String(2), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    # The first characters of the key, shown in listings so a key can be recognised.
    sa.Column("prefix", sa.String(16), nullable=False),
    # SHA-256 of the whole key. Keys carry 192 random bits, so a fast hash is enough.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("revoked_at", Time),
)

sites = sa.Table(
    "sites",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("site_key", sa.String(40), nullable=False, unique=True),
    # JSON list of host names; a host also allows its subdomains.
    sa.Column("allowed_domains", sa.Text, nullable=False),
    # The number printed on the site, which ct.js replaces.
    sa.Column("own_number", Phone, nullable=False),
    # Where the site's calls go when no tracking number says otherwise.
    sa.Column("forward_to", Phone, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

pools = sa.Table(
    "pools",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("site_id", sa.ForeignKey("sites.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    # Lower runs first; the first pool whose rules match the visit serves it.
    sa.Column("priority", sa.Integer, nullable=False),
    # JSON object of match rules, see numbers/rules.py:PoolRules.
    sa.Column("rules", sa.Text, nullable=False),
    sa.Column("hold_seconds", sa.Integer, nullable=False),
    sa.Column("cooldown_seconds", sa.Integer, nullable=False),
    sa.Column("overflow_number", Phone),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("retired_at", Time),
    sa.UniqueConstraint("site_id", "name"),
)

tracking_numbers = sa.Table(
    "tracking_numbers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("e164", Phone, nullable=False, unique=True),
    # 'static' (carries its own source) or 'pool' (gets its source from the lease).
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("pool_id", sa.ForeignKey("pools.id")),
    sa.Column("forward_to", Phone, nullable=False),
    sa.Column("source", sa.String(200)),
    sa.Column("medium", sa.String(200)),
    sa.Column("campaign", sa.String(200)),
    sa.Column("keyword", sa.String(200)),
    # Offline placement (billboard, print ad, radio spot…) for static numbers.
    sa.Column("placement", sa.String(200)),
    # 'active' or 'retired'.
    sa.Column("status", sa.String(8), nullable=False),
    # Pool numbers: the moment the number may be leased again (lease end plus cool-down).
    sa.Column("free_at", Time, nullable=False, server_default="0"),
    # Pool numbers: when the number was last handed out; the least recent goes first.
    sa.Column("last_leased_at", Time, nullable=False, server_default="0"),
    sa.Column("current_lease_id", sa.Integer),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("retired_at", Time),
    sa.Index("ix_tracking_numbers_pool_lru", "pool_id", "status", "last_leased_at"),
)

touchpoints = sa.Table(
    "touchpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("site_id", sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("vid", sa.String(64), nullable=False),
    sa.Column("sid", sa.String(64), nullable=False),
    sa.Column("ts", Time, nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("url", sa.String(2048)),
    sa.Column("referrer", sa.String(2048)),
    sa.Column("utm_source", sa.String(200)),
    sa.Column("utm_medium", sa.String(200)),
    sa.Column("utm_campaign", sa.String(200)),
    sa.Column("utm_term", sa.String(200)),
    sa.Column("utm_content", sa.String(200)),
    sa.Column("gclid", sa.String(200)),
    sa.Column("gbraid", sa.String(200)),
    sa.Column("wbraid", sa.String(200)),
    sa.Column("msclkid", sa.String(200)),
    sa.Column("yclid", sa.String(200)),
    sa.Column("fbclid", sa.String(200)),
    sa.Column("pool_id", sa.Integer),
    # Digest of what makes a touch distinct (session, tags, click ids, outside referrer):
    # a page view that brings nothing new is not recorded again.
    sa.Column("sig", sa.String(32), nullable=False),
    sa.Index("ix_touchpoints_visitor", "site_id", "vid", "ts"),
    sa.Index("ix_touchpoints_account_ts", "account_id", "ts"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("site_id", sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("pool_id", sa.ForeignKey("pools.id"), nullable=False),
    sa.Column("number_id", sa.ForeignKey("tracking_numbers.id"), nullable=False),
    sa.Column("vid", sa.String(64), nullable=False),
    sa.Column("sid", sa.String(64), nullable=False),
    sa.Column("touchpoint_id", sa.Integer),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("last_seen_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    # Null while the lease holds its number.
    sa.Column("ended_at", Time),
    # 'expired', 'released' (the visitor left), 'retired' (the number was retired).
    sa.Column("end_reason", sa.String(16)),
    # The database itself refuses a second open lease on one number, whatever process asks.
    sa.Index(
        "uq_leases_open_number",
        "number_id",
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    ),
    sa.Index(
        "ix_leases_open_visitor",
        "site_id",
        "vid",
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    ),
    sa.Index("ix_leases_number_started", "number_id", "started_at"),
    sa.Index("ix_leases_pool_started", "pool_id", "started_at"),
)

lease_events = sa.Table(
    "lease_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lease_id", sa.ForeignKey("leases.id"), nullable=False, index=True),
    # 'start', 'renew', 'expire', 'release', 'retire'.
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("ts", Time, nullable=False),
    # The lease's deadline after this event.
    sa.Column("expires_at", Time, nullable=False),
)

pool_exhaustions = sa.Table(
    "pool_exhaustions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pool_id", sa.ForeignKey("pools.id"), nullable=False),
    sa.Column("site_id", sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("vid", sa.String(64), nullable=False),
    sa.Column("ts", Time, nullable=False),
    sa.Index("ix_pool_exhaustions_pool_ts", "pool_id", "ts"),
)

form_submissions = sa.Table(
    "form_submissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("site_id", sa.ForeignKey("sites.id"), nullable=False),
    # The sender's id for this submission (ct.js makes one per submit): a retried or
    # replayed post finds the stored one instead of adding another.
    sa.Column("client_ref", sa.String(64), nullable=False),
    sa.Column("vid", sa.String(64)),
    sa.Column("sid", sa.String(64)),
    sa.Column("ts", Time, nullable=False),
    sa.Column("url", sa.String(2048)),
    # JSON object of the submitted fields (strings), passwords and card numbers excluded.
    sa.Column("fields", sa.Text, nullable=False),
    sa.Column("email", sa.String(254)),
    sa.Column("phone", Phone),
    sa.Column("name", sa.String(200)),
    sa.UniqueConstraint("site_id", "client_ref"),
    sa.Index("ix_form_submissions_account_ts", "account_id", "ts"),
    sa.Index("ix_form_submissions_visitor", "site_id", "vid"),
)
