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
    # A visitor's leases, open or ended: the number endpoint finds the open one (a handful of
    # rows per visitor; ended_at filters), and erasure re-keys them all. One index for both, so
    # a lease costs the number endpoint no more index writes than it did before erasure existed.
    sa.Index("ix_leases_visitor", "site_id", "vid"),
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
    sa.Column("company", sa.String(200)),
    sa.Column("message", sa.Text),
    # What the form is for ('contact', 'callback', 'estimate', 'demo'…), as the page says.
    sa.Column("form_type", sa.String(64)),
    sa.Column("contact_id", sa.ForeignKey("contacts.id")),
    sa.Column("lead_id", sa.ForeignKey("leads.id")),
    sa.UniqueConstraint("site_id", "client_ref"),
    sa.Index("ix_form_submissions_account_ts", "account_id", "ts"),
    sa.Index("ix_form_submissions_visitor", "site_id", "vid"),
    sa.Index("ix_form_submissions_lead", "lead_id"),
)

# -- calls, contacts and leads (issue 4) ------------------------------------------------------

telephony_credentials = sa.Table(
    "telephony_credentials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    # 'twilio' (also SignalWire), 'telnyx' (Call Control and TeXML) or 'pbx' (our signed JSON).
    sa.Column("provider", sa.String(8), nullable=False),
    # The provider's id of the tenant's account (Twilio AccountSid), which finds the secret
    # before the signature is checked; null where the provider sends none.
    sa.Column("provider_account", sa.String(64)),
    # Twilio auth token, Telnyx public key (base64) or our HMAC secret. Kept in clear because
    # checking a signature needs it; never logged or shown again after it is set.
    sa.Column("secret", sa.String(200), nullable=False),
    # Record forwarded calls (Twilio <Dial record=…>).
    sa.Column("record_calls", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("revoked_at", Time),
    sa.Index("ix_telephony_credentials_provider_account", "provider", "provider_account"),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("phone", Phone),
    sa.Column("email", sa.String(254)),
    sa.Column("name", sa.String(200)),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    # Set when this contact turned out to be the same person as another (a form brought the
    # phone of one and the email of the other): everything it had now points there.
    sa.Column("merged_into", sa.Integer),
    # One person per phone and per email in an account (NULLs do not collide).
    sa.UniqueConstraint("account_id", "phone"),
    sa.UniqueConstraint("account_id", "email"),
)

contact_visitors = sa.Table(
    "contact_visitors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.ForeignKey("contacts.id"), nullable=False, index=True),
    sa.Column("site_id", sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("vid", sa.String(64), nullable=False),
    sa.Column("linked_at", Time, nullable=False),
    # A visitor id is one person's: the first contact to claim it keeps it.
    sa.UniqueConstraint("site_id", "vid"),
)

leads = sa.Table(
    "leads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("contact_id", sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("site_id", sa.ForeignKey("sites.id")),
    # How it arrived: 'call', 'callback' or 'form'; a form's own type in form_type.
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("form_type", sa.String(64)),
    # Lifecycle stage; issue 5 moves it beyond 'new'. 'spam' leaves every count.
    sa.Column("stage", sa.String(16), nullable=False, server_default="new"),
    sa.Column("spam_reason", sa.String(64)),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("last_activity_at", Time, nullable=False),
    # Calls and forms that joined the lead, the first included.
    sa.Column("touches", sa.Integer, nullable=False, server_default="1"),
    # The source snapshot: what brought the person, as known when the lead was created.
    sa.Column("match_method", sa.String(16)),
    sa.Column("channel", sa.String(32)),
    sa.Column("source", sa.String(200)),
    sa.Column("medium", sa.String(200)),
    sa.Column("campaign", sa.String(200)),
    sa.Column("keyword", sa.String(200)),
    sa.Column("placement", sa.String(200)),
    sa.Column("number_id", sa.Integer),
    sa.Column("touchpoint_id", sa.Integer),
    sa.Column("vid", sa.String(64)),
    # Sales outcomes (PATCH /v1/leads/{id}, calltrack leads import-outcomes).
    sa.Column("owner", sa.String(200)),
    sa.Column("value", sa.Numeric(14, 2, asdecimal=False)),
    sa.Column("currency", sa.String(3)),
    sa.Column("loss_reason", sa.String(200)),
    # JSON {budget, authority, need, timing: bool}.
    sa.Column("bant", sa.Text),
    sa.Column("notes", sa.Text),
    sa.Column("converted_at", Time),
    sa.Column("stage_changed_at", Time),
    # 'system' or 'sales': a stage sales set is not moved by automatic scoring.
    sa.Column("stage_set_by", sa.String(8), nullable=False, server_default="system"),
    # Speed to lead: the first answered call after the lead appeared, or the first move to a
    # stage that means somebody got hold of the person.
    sa.Column("first_response_at", Time),
    # Qualification (scoring/rules.py): the score under rule version scored_version.
    sa.Column("score", sa.Integer),
    sa.Column("temperature", sa.String(4)),
    sa.Column("score_flags", sa.String(400)),
    sa.Column("scored_version", sa.Integer),
    sa.Column("scored_at", Time),
    sa.Index("ix_leads_account_created", "account_id", "created_at"),
    sa.Index("ix_leads_contact_activity", "contact_id", "last_activity_at"),
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("provider", sa.String(8), nullable=False),
    # The provider's call id (CallSid, call_session_id, the PBX's uniqueid).
    sa.Column("call_ref", sa.String(128), nullable=False),
    # The number dialled, and the tracking number it is (null when unknown to us).
    sa.Column("tracking_number", Phone),
    sa.Column("number_id", sa.ForeignKey("tracking_numbers.id")),
    sa.Column("site_id", sa.ForeignKey("sites.id")),
    sa.Column("pool_id", sa.Integer),
    # The caller in E.164; null when withheld (then caller_withheld) or unreadable.
    sa.Column("caller", Phone),
    sa.Column("caller_withheld", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("caller_name", sa.String(200)),
    sa.Column("caller_city", sa.String(200)),
    sa.Column("caller_region", sa.String(200)),
    sa.Column("caller_country", sa.String(2)),
    sa.Column("direction", sa.String(16), nullable=False, server_default="inbound"),
    # Only moves forward: see telephony/events.py STATUS_RANK.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("answered_at", Time),
    sa.Column("ended_at", Time),
    # Talk time in seconds.
    sa.Column("duration", sa.Integer),
    sa.Column("recording_url", sa.String(2048)),
    sa.Column("recording_duration", sa.Integer),
    sa.Column("forwarded_to", Phone),
    # How the call was tied to its source: 'static', 'lease', 'expired_lease',
    # 'repeat_caller', 'overflow', 'unmatched'; null until the number dialled is known.
    sa.Column("match_method", sa.String(16)),
    sa.Column("match_confidence", sa.Float),
    sa.Column("lease_id", sa.Integer),
    sa.Column("vid", sa.String(64)),
    sa.Column("touchpoint_id", sa.Integer),
    sa.Column("channel", sa.String(32)),
    sa.Column("source", sa.String(200)),
    sa.Column("medium", sa.String(200)),
    sa.Column("campaign", sa.String(200)),
    sa.Column("keyword", sa.String(200)),
    sa.Column("placement", sa.String(200)),
    # JSON: the whole matching story (candidates, other visitors holding the number…).
    sa.Column("explain", sa.Text),
    sa.Column("contact_id", sa.ForeignKey("contacts.id")),
    sa.Column("lead_id", sa.ForeignKey("leads.id")),
    sa.Column("spam_reason", sa.String(64)),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.UniqueConstraint("account_id", "provider", "call_ref"),
    sa.Index("ix_calls_account_started", "account_id", "started_at"),
    sa.Index("ix_calls_caller_number", "account_id", "caller", "number_id", "started_at"),
    sa.Index("ix_calls_lease", "lease_id"),
    sa.Index("ix_calls_lead", "lead_id"),
    sa.Index("ix_calls_visitor", "site_id", "vid"),
)

call_events = sa.Table(
    "call_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("call_id", sa.ForeignKey("calls.id"), nullable=False),
    # The delivery's id within its call: a retried or duplicated delivery is refused here.
    sa.Column("event_ref", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16)),
    sa.Column("occurred_at", Time),
    sa.Column("received_at", Time, nullable=False),
    # JSON of the provider-neutral event (numbers as sent, no signature, no secret).
    sa.Column("payload", sa.Text, nullable=False),
    sa.UniqueConstraint("call_id", "event_ref"),
)

caller_blocklist = sa.Table(
    "caller_blocklist",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("phone", Phone, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("account_id", "phone"),
)

lead_events = sa.Table(
    "lead_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lead_id", sa.ForeignKey("leads.id"), nullable=False, index=True),
    sa.Column("ts", Time, nullable=False),
    # What changed: 'stage', 'owner', 'value', 'currency', 'loss_reason', 'bant', 'notes'.
    sa.Column("field", sa.String(16), nullable=False),
    sa.Column("old", sa.Text),
    sa.Column("new", sa.Text),
    # Who or what: 'api', 'csv', 'cli', 'system' (ingestion, spam rules).
    sa.Column("actor", sa.String(64), nullable=False),
)

owners = sa.Table(
    "owners",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    # The manager's name, as leads.owner holds it.
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254)),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Round robin: each assignment takes the account's next turn number; the active manager
    # with the lowest (never assigned first) gets the next lead.
    sa.Column("last_turn", sa.Integer),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("account_id", "name"),
)

owner_rules = sa.Table(
    "owner_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    # Lower first; the first matching rule whose owner is active decides.
    sa.Column("priority", sa.Integer, nullable=False),
    # JSON object: condition → accepted values (leads/assignment.py).
    sa.Column("conditions", sa.Text, nullable=False),
    sa.Column("owner_id", sa.ForeignKey("owners.id"), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

scoring_rules = sa.Table(
    "scoring_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    # 1, 2, 3… per account; the newest is active, the older ones say how old scores were made.
    sa.Column("version", sa.Integer, nullable=False),
    # The rule document (JSON), as accepted.
    sa.Column("rules", sa.Text, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("account_id", "version"),
)

# -- outbound lead webhooks (leads/outbox*.py) --------------------------------------------------

lead_webhooks = sa.Table(
    "lead_webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("url", sa.String(2000), nullable=False),
    # HMAC-SHA256 key for X-CT-Signature; in clear because we sign with it (shown once).
    sa.Column("secret", sa.String(100), nullable=False),
    # The events it wants, comma-wrapped (",lead.created,lead.qualified,") so that one
    # LIKE finds the subscribers of an event inside the transaction that caused it.
    sa.Column("events", sa.String(200), nullable=False),
    sa.Column("description", sa.String(200), nullable=False, server_default=""),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("disabled_at", Time),
)

# The outbox: one row per (event, endpoint), written in the transaction that made the event,
# so an event is never lost and never sent for a change that rolled back.
lead_webhook_deliveries = sa.Table(
    "lead_webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("webhook_id", sa.ForeignKey("lead_webhooks.id"), nullable=False),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("lead_id", sa.ForeignKey("leads.id"), nullable=False),
    # 'lead.created', 'lead.qualified', 'lead.stage_changed'.
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("occurred_at", Time, nullable=False),
    # JSON of the change ({"from": "new", "to": "mql", "by": "api"}), when there is one.
    sa.Column("detail", sa.Text),
    # 'pending' → 'delivered', or 'failed' after the last attempt, or 'cancelled' when the
    # endpoint was removed. A pending row is due at next_attempt_at; a dispatcher claims it
    # by moving next_attempt_at past its attempt's timeout.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Time),
    # The JSON sent, fixed at the first attempt so that every retry sends the same bytes.
    sa.Column("body", sa.Text),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String(300)),
    sa.Column("delivered_at", Time),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("ix_lead_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_lead_webhook_deliveries_webhook", "webhook_id", "id"),
)

lead_webhook_attempts = sa.Table(
    "lead_webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.ForeignKey("lead_webhook_deliveries.id"), nullable=False, index=True),
    sa.Column("at", Time, nullable=False),
    # The HTTP status, or none when there was no answer (error says why: timeout, refused…).
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.String(300)),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("response_excerpt", sa.String(500)),
)

# -- ad spend (reports/costs*.py) ---------------------------------------------------------------

ad_costs = sa.Table(
    "ad_costs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    # The ad platform's day, in the account's time zone (YYYY-MM-DD sorts as text).
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("medium", sa.String(200), nullable=False, server_default=""),
    sa.Column("campaign", sa.String(200), nullable=False, server_default=""),
    sa.Column("keyword", sa.String(200), nullable=False, server_default=""),
    sa.Column("clicks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("impressions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cost", sa.Numeric(14, 2, asdecimal=False), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("imported_at", Time, nullable=False),
    sa.UniqueConstraint("account_id", "day", "source", "medium", "campaign", "keyword"),
)

# Bought leads: a price per click, lead or action instead of (or beside) imported spend.
pricing_models = sa.Table(
    "pricing_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("medium", sa.String(200), nullable=False, server_default=""),
    sa.Column("campaign", sa.String(200), nullable=False, server_default=""),
    # 'per_click', 'per_lead' or 'per_action' (a lead reaching stage).
    sa.Column("model", sa.String(16), nullable=False),
    sa.Column("stage", sa.String(16)),
    sa.Column("price", sa.Numeric(14, 2, asdecimal=False), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("account_id", "source", "medium", "campaign"),
)

# Read-only links to an account's report (a browser cannot send the API key's header, and an
# API key in a URL would end up in logs and histories): the token is stored hashed.
report_links = sa.Table(
    "report_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time),
    sa.Column("revoked_at", Time),
)

# -- privacy (privacy/*.py) ---------------------------------------------------------------------

# Per-account retention: days to keep recordings, caller numbers and form fields; null keeps
# them. The purge (privacy/service.py) anonymises what is older, row by row, keeping the rows.
privacy_retention = sa.Table(
    "privacy_retention",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, unique=True),
    sa.Column("recordings_days", sa.Integer),
    sa.Column("callers_days", sa.Integer),
    sa.Column("forms_days", sa.Integer),
    sa.Column("updated_at", Time, nullable=False),
)

# One row per erasure of a person (POST /v1/contacts/erase, calltrack contacts erase): when, by
# whom and how much was erased. No personal data: not the phone or email asked for, nor a hash.
privacy_erasures = sa.Table(
    "privacy_erasures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("at", Time, nullable=False),
    # 'api:<key prefix>' or 'cli'.
    sa.Column("actor", sa.String(64), nullable=False),
    # What identified the person: 'phone' or 'email'.
    sa.Column("matched_by", sa.String(8), nullable=False),
    # JSON {contacts, leads, calls, forms, touchpoints, deliveries_cancelled, blocklist_removed}.
    sa.Column("counts", sa.Text, nullable=False),
)
