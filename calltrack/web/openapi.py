"""``GET /openapi.json``: the OpenAPI 3.1 description of every route the router serves.

Each route is described here by its name (the path as clients write it); a test checks that
the router and this description list the same (method, path) pairs, so neither drifts.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from calltrack.web.resource import Response, Router

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_ERROR = {"$ref": "#/components/responses/Error"}
_BEARER = [{"apiKey": []}]
# Query parameters as the handlers check them (params.integer bounds): generated requests that
# honour the document reach the handler's work instead of its 400.
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}
_CURSOR = {"type": "integer", "minimum": 1, "maximum": 2147483647}
_KEY = {"type": "string", "minLength": 1, "maxLength": 100}
_VALUE = {"type": "string", "minLength": 1, "maxLength": 200}
_MODELS = "first_touch|last_touch|last_non_direct|linear|time_decay|position_based|w_shaped|markov|shapley|lead_creation"


def _q(name: str, description: str, *, required: bool = False, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema or {"type": "string"}}


def _id(name: str = "id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _json(ref: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _list(key: str, ref: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {key: {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}}}
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


_VISIT_PARAMS = [
    _q("site", "the site key", required=True),
    _q("vid", "visitor id (issued when absent); 1-64 of A-Za-z0-9_.-"),
    _q("sid", "session id (issued when absent)"),
    _q("url", "landing page URL"),
    _q("ref", "referrer URL"),
    _q("consent", "0: the visitor has not consented to tracking; nothing is stored and a static number matching the source (or the site's own) is answered"),
    *[_q(f, f"{f} tag, stored cut to 200 characters") for f in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")],
    *[_q(f, "ad click id") for f in ("gclid", "gbraid", "wbraid", "msclkid", "yclid", "fbclid")],
]
_PUBLIC_ERRORS = {"400": _ERROR, "403": _ERROR, "404": _ERROR, "413": _ERROR, "429": _ERROR}
_ACCOUNT_ERRORS = {"400": _ERROR, "401": _ERROR, "404": _ERROR}
_WINDOW = [_q("since", "unix seconds or ISO 8601 (default: 7 days before until)"), _q("until", "unix seconds or ISO 8601 (default: now)")]

_DAYS = {"type": ["integer", "null"], "minimum": 1, "maximum": 36500}
_RETENTION = {
    "type": "object", "additionalProperties": False,
    "properties": {"recordings_days": _DAYS, "callers_days": _DAYS, "forms_days": _DAYS},
}
_ERASURE = {
    "type": "object",
    "properties": {"id": _INT, "at": _NUM, "actor": _STR, "matched_by": {"enum": ["phone", "email"]}, **{k: _INT for k in (
        "contacts", "leads", "calls", "forms", "touchpoints", "deliveries_cancelled", "blocklist_removed")}},
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/healthz"): {"summary": "Liveness and database check", "responses": {"200": _json("Health", "healthy"), "503": _json("Health", "the database does not answer")}},
    ("GET", "/metrics"): {"summary": "Prometheus metrics of the answering process", "responses": {"200": {"description": "text format 0.0.4", "content": {"text/plain": {"schema": _STR}}}}},
    ("GET", "/openapi.json"): {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}}}},
    ("GET", "/v1/number"): {
        "summary": "A tracking number for a visitor (records the visit, leases a pool number)",
        "security": [],
        "parameters": _VISIT_PARAMS,
        "responses": {"200": _json("NumberAnswer"), **_PUBLIC_ERRORS},
    },
    ("POST", "/v1/number"): {
        "summary": "The same with a JSON, text/plain JSON or form body",
        "security": [],
        "requestBody": _body("VisitRequest"),
        "responses": {"200": _json("NumberAnswer"), **_PUBLIC_ERRORS},
    },
    ("OPTIONS", "/v1/number"): {"summary": "CORS preflight (?site=)", "security": [], "parameters": [_q("site", "the site key", required=True)], "responses": {"204": {"description": "allowed"}, **_PUBLIC_ERRORS}},
    ("POST", "/v1/ping"): {
        "summary": "Heartbeat: renew the visitor's lease (never takes a new number)",
        "security": [],
        "requestBody": _body("PingRequest"),
        "responses": {"200": _json("NumberAnswer"), **_PUBLIC_ERRORS},
    },
    ("OPTIONS", "/v1/ping"): {"summary": "CORS preflight (?site=)", "security": [], "parameters": [_q("site", "the site key", required=True)], "responses": {"204": {"description": "allowed"}, **_PUBLIC_ERRORS}},
    ("POST", "/v1/forms"): {
        "summary": "A form submission (from ct.js with the site key, or server to server with an API key); stored once per id, tied to its lead",
        "security": [{}, {"apiKey": []}],
        "requestBody": _body("FormRequest"),
        "responses": {"201": _json("FormStored", "stored"), "200": _json("FormStored", "already stored (same id)"), **_PUBLIC_ERRORS},
    },
    ("OPTIONS", "/v1/forms"): {"summary": "CORS preflight (?site=)", "security": [], "parameters": [_q("site", "the site key", required=True)], "responses": {"204": {"description": "allowed"}, **_PUBLIC_ERRORS}},
    ("GET", "/v1/forms"): {"summary": "Recent form submissions", "parameters": [_q("limit", "1-1000, default 100", schema=_LIMIT)], "responses": {"200": _list("forms", "Form"), **_ACCOUNT_ERRORS}},
    **{
        ("POST", f"/v1/webhooks/twilio/{hook}"): {
            "summary": summary,
            "security": [],
            "description": "Twilio, SignalWire (X-Twilio-Signature over the public URL and the sorted form fields) or Telnyx TeXML "
            "(telnyx-signature-ed25519 + telnyx-timestamp). Answered after the event has committed; a retried delivery changes nothing.",
            "parameters": [{"name": "X-Twilio-Signature", "in": "header", "required": False, "schema": _STR}],
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/TwilioForm"}}}},
            "responses": {"200": {"description": "TwiML", "content": {"text/xml": {"schema": _STR}}}, "400": _ERROR, "403": _ERROR, "413": _ERROR, "415": _ERROR},
        }
        for hook, summary in (
            ("voice", "Incoming call: answers TwiML that forwards it to the number's target (Reject for blocklisted callers)"),
            ("status", "Call progress callback (the parent call, or the forwarded leg through its ParentCallSid)"),
            ("recording", "Recording status callback"),
        )
    },
    ("POST", "/v1/webhooks/telnyx"): {
        "summary": "Telnyx Call Control events (call.initiated, call.answered, call.hangup, call.recording.saved)",
        "security": [],
        "parameters": [
            {"name": "telnyx-signature-ed25519", "in": "header", "required": True, "schema": _STR},
            {"name": "telnyx-timestamp", "in": "header", "required": True, "schema": _STR},
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "stored, duplicate or ignored", "content": {"application/json": {"schema": {"type": "object", "properties": {
            "call_id": _INT, "duplicate": {"type": "boolean"}, "ignored": {"type": "boolean"}}}}}}, "400": _ERROR, "403": _ERROR, "413": _ERROR},
    },
    ("POST", "/v1/webhooks/calls"): {
        "summary": "Our signed JSON for Asterisk, FreeSWITCH or any PBX: call.started|ringing|answered|completed|recording",
        "security": [],
        "parameters": [{"name": "X-CT-Signature", "in": "header", "required": True, "description": "t=<unix>,v1=<hex HMAC-SHA256(secret, t + '.' + body)>", "schema": _STR}],
        "requestBody": _body("PbxEvent"),
        "responses": {"200": _json("PbxAnswer"), "400": _ERROR, "403": _ERROR, "413": _ERROR},
    },
    ("GET", "/v1/calls"): {
        "summary": "The account's calls, newest first",
        "parameters": [_q("from", "unix seconds or ISO 8601"), _q("to", "unix seconds or ISO 8601"), _q("cursor", "next_cursor of the previous page", schema=_CURSOR), _q("limit", "1-1000, default 100", schema=_LIMIT)],
        "responses": {"200": _list("calls", "Call"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/calls/{id}"): {"summary": "One call with its deliveries", "parameters": [_id()], "responses": {"200": _json("Call"), **_ACCOUNT_ERRORS}},
    ("GET", "/v1/calls/{id}/explain"): {
        "summary": "How the call was matched: method, confidence, lease, visitor, and the other visitors who held the number around then",
        "parameters": [_id()],
        "responses": {"200": _json("Explain"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/leads"): {
        "summary": "Leads, newest first (spam only with status=spam)",
        "parameters": [
            _q("from", "created at or after (unix seconds or ISO 8601)"), _q("to", "created before"), _q("source", "utm source"),
            _q("campaign", "campaign"), _q("channel", "channel"),
            _q("status", "stage", schema={"enum": ["new", "contacted", "mql", "sql", "customer", "nurturing", "lost", "spam"]}),
            _q("kind", "how it arrived", schema={"enum": ["call", "callback", "form"]}),
            _q("cursor", "next_cursor of the previous page", schema=_CURSOR), _q("limit", "1-1000, default 100", schema=_LIMIT),
        ],
        "responses": {"200": _list("leads", "Lead"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/leads/{id}"): {
        "summary": "One lead with its calls, forms and touchpoints in time order",
        "parameters": [_id()],
        "responses": {"200": _json("Lead"), **_ACCOUNT_ERRORS},
    },
    ("PATCH", "/v1/leads/{id}"): {
        "summary": "A sales outcome: stage (checked against the allowed moves; 409 lists them), owner, value and currency, loss reason, BANT, notes",
        "description": "BANT answers without a stage decide it: all four true → sql, any false → nurturing. A stage set here is not moved by automatic rules. Every change is kept in the lead's history.",
        "parameters": [_id()],
        "requestBody": _body("LeadOutcome"),
        "responses": {"200": _json("Lead"), "409": _ERROR, **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/owners"): {"summary": "The account's lead owners (managers) with their lead counts: all, open, customers (spam left out)", "responses": {"200": _list("owners", "Owner"), **_ACCOUNT_ERRORS}},
    ("POST", "/v1/owners"): {
        "summary": "Add a lead owner; new leads go round robin among the active ones unless a rule names one",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "properties": {"name": _VALUE, "email": _STR}, "required": ["name"]}}}},
        "responses": {"201": _json("Owner", "created"), "409": _ERROR, **_ACCOUNT_ERRORS},
    },
    ("PATCH", "/v1/owners/{id}"): {
        "summary": "Deactivate or reactivate an owner, or change their email",
        "parameters": [_id()],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"active": {"type": "boolean"}, "email": _NSTR}, "minProperties": 1, "additionalProperties": False}}}},
        "responses": {"200": _json("Owner"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/owner-rules"): {"summary": "Assignment rules, in the order they are tried", "responses": {"200": _list("rules", "OwnerRule"), **_ACCOUNT_ERRORS}},
    ("POST", "/v1/owner-rules"): {
        "summary": "Add an assignment rule: new leads matching 'when' go to the owner",
        "requestBody": _body("NewOwnerRule"),
        "responses": {"201": _json("OwnerRule", "created"), **_ACCOUNT_ERRORS},
    },
    ("DELETE", "/v1/owner-rules/{id}"): {"summary": "Remove an assignment rule", "parameters": [_id()], "responses": {"204": {"description": "removed"}, **_ACCOUNT_ERRORS}},
    ("GET", "/v1/lead-webhooks"): {"summary": "Outbound lead webhooks (the advertiser's CRM endpoints), with delivery counts by status", "responses": {"200": _list("webhooks", "LeadWebhook"), **_ACCOUNT_ERRORS}},
    ("POST", "/v1/lead-webhooks"): {
        "summary": "Register a CRM endpoint for lead.created, lead.qualified and/or lead.stage_changed; answers the signing secret, once",
        "requestBody": _body("NewLeadWebhook"),
        "responses": {"201": _json("LeadWebhook", "created (with 'secret')"), "409": _ERROR, **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/lead-webhooks/{id}"): {"summary": "One lead webhook", "parameters": [_id()], "responses": {"200": _json("LeadWebhook"), **_ACCOUNT_ERRORS}},
    ("DELETE", "/v1/lead-webhooks/{id}"): {"summary": "Stop a lead webhook; its pending deliveries are cancelled (the log stays)", "parameters": [_id()], "responses": {"200": {"description": "removed", "content": {"application/json": {"schema": {"type": "object", "properties": {
        "removed": {"type": "boolean"}, "cancelled_deliveries": _INT}, "required": ["removed"]}}}}, **_ACCOUNT_ERRORS}},
    ("GET", "/v1/lead-webhooks/{id}/deliveries"): {
        "summary": "The delivery log, newest first",
        "parameters": [
            _id(), _q("status", "pending, delivered, failed or cancelled", schema={"enum": ["pending", "delivered", "failed", "cancelled"]}),
            _q("lead_id", "one lead's events", schema=_CURSOR),
            _q("limit", "1-500, default 50", schema={"type": "integer", "minimum": 1, "maximum": 500}), _q("cursor", "next_cursor of the previous page", schema=_CURSOR),
        ],
        "responses": {"200": _list("deliveries", "LeadWebhookDelivery"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/lead-webhooks/{id}/deliveries/{delivery}"): {
        "summary": "One delivery: the body sent and every attempt (time, HTTP status or error, duration, start of the answer)",
        "parameters": [_id(), _id("delivery")],
        "responses": {"200": _json("LeadWebhookDelivery"), **_ACCOUNT_ERRORS},
    },
    ("POST", "/v1/lead-webhooks/{id}/deliveries/{delivery}/resend"): {
        "summary": "Send a delivery again (same body and id) with a fresh run of attempts",
        "parameters": [_id(), _id("delivery")],
        "responses": {"202": _json("LeadWebhookDelivery", "queued"), "409": _ERROR, **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/attribution"): {
        "summary": "Credit per channel (or source_medium, source, medium, campaign, keyword, landing_page, tracking_number) for the period's conversions, under one model or several side by side; JSON or CSV",
        "parameters": [
            _q("model", "one or more, comma-separated: first_touch, last_touch, last_non_direct, linear, time_decay, position_based, w_shaped, markov, shapley, lead_creation", required=True,
               schema={"type": "string", "pattern": f"^({_MODELS})(,({_MODELS}))*$"}),
            _q("stage", "lead, mql (default), sql or customer"), _q("from", "unix seconds or ISO 8601 (default: 30 days before to)"), _q("to", "default: now"),
            _q("level", "default channel"), _q("lookback_days", "1-365, default 30", schema={"type": "integer", "minimum": 1, "maximum": 365}),
            _q("half_life_days", "time_decay, default 7", schema={"type": "number", "minimum": 0.01, "maximum": 3650}),
            _q("first", "position_based, default 0.4", schema={"type": "number", "minimum": 0, "maximum": 1}),
            _q("last", "position_based, default 0.4", schema={"type": "number", "minimum": 0, "maximum": 1}), _q("order", "markov, 1-4, default 1", schema={"type": "integer", "minimum": 1, "maximum": 4}),
            _q("variant", "shapley: simplified (default) or ordered"), _q("ci", "true: bootstrap intervals for markov and shapley"),
            _q("samples", "bootstrap samples, 10-2000, default 200", schema={"type": "integer", "minimum": 10, "maximum": 2000}),
            _q("seed", "bootstrap seed, default 0", schema={"type": "integer", "minimum": 0, "maximum": 2147483647}),
            _q("format", "json (default) or csv"),
        ],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Attribution"}}, "text/csv": {"schema": {"type": "string"}}}}, **_ACCOUNT_ERRORS},
    },
    ("POST", "/v1/costs"): {
        "summary": "Import ad spend (CSV: date, source, medium, campaign, keyword, clicks, impressions, cost, currency); replaces the file's period for its sources; any bad line refuses the whole file",
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
        "responses": {"201": _json("CostImport", "imported"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/costs"): {
        "summary": "Ad spend rows and totals for days in [from, to]",
        "parameters": [_q("from", "YYYY-MM-DD (default: 30 days before to)"), _q("to", "YYYY-MM-DD (default: today)")],
        "responses": {"200": _json("Costs"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/pricing-models"): {"summary": "Prices of bought leads per click, lead or action, by source/medium/campaign", "responses": {"200": _list("pricing_models", "PricingModel"), **_ACCOUNT_ERRORS}},
    ("POST", "/v1/pricing-models"): {
        "summary": "Set the price of a source's (medium's, campaign's) clicks, leads or actions (a lead reaching a stage)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "properties": {
            "source": _KEY, "medium": _STR, "campaign": _STR, "model": {"enum": ["per_click", "per_lead", "per_action"]}, "price": _NUM,
            "stage": {"enum": ["mql", "sql", "customer"]}}, "required": ["source", "model", "price"]}}}},
        "responses": {"201": _json("PricingModel", "set"), **_ACCOUNT_ERRORS},
    },
    ("DELETE", "/v1/pricing-models/{id}"): {"summary": "Remove a price", "parameters": [_id()], "responses": {"204": {"description": "removed"}, **_ACCOUNT_ERRORS}},
    ("GET", "/v1/reports/campaigns"): {
        "summary": "The campaign report (also /v1/reports/campaigns.json, .csv, .html): per level value visits, calls, forms, leads, qualified, SQL, customers, cost, CPL, cost per qualified lead, CPA, revenue, ROI and attributed conversions, ranked by qualified leads; totals, funnel, daily series, alerts",
        "parameters": [
            _q("from", "first day, YYYY-MM-DD in the account's time zone (default: 29 days before to)"), _q("to", "last day (default: today)"),
            _q("level", "channel, source_medium, source, medium, campaign (default), keyword, landing_page, tracking_number"),
            _q("models", "attribution models side by side, comma-separated (default last_touch,linear,markov; none for none)"),
            _q("stage", "what the models credit: lead, mql (default), sql, customer"), _q("lookback_days", "1-365, default 30", schema={"type": "integer", "minimum": 1, "maximum": 365}),
            _q("margin", "gross margin share of revenue for ROI, 0-1, default 1", schema={"type": "number"}), _q("format", "json (default), csv or html"),
        ],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CampaignReport"}}, "text/csv": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}}}, **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/reports/operations"): {
        "summary": "Operations: speed to lead per owner and per channel, missed calls not called back, loss and spam reasons ranked, each source's lead quality by month, pool health",
        "parameters": [_q("from", "first day, YYYY-MM-DD (default: 29 days before to)"), _q("to", "last day (default: today)")],
        "responses": {"200": _json("OperationsReport"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/reports/plan"): {
        "summary": "Planning: what a budget should bring (clicks, leads, qualified, customers) and the budget a number of customers needs, from the paid history of the period or the rates given",
        "parameters": [
            _q("budget", "money to spend", schema={"type": "number", "exclusiveMinimum": 0, "maximum": 1e12}),
            _q("target_customers", "customers wanted", schema={"type": "number", "exclusiveMinimum": 0, "maximum": 1e9}),
            _q("from", "history from (default: 89 days before to)"), _q("to", "history to (default: today)"),
            _q("cpc", "cost per click instead of the history's", schema={"type": "number", "exclusiveMinimum": 0, "maximum": 1e6}),
            *[_q(k, what, schema={"type": "number", "exclusiveMinimum": 0, "maximum": 1}) for k, what in (
                ("lead_rate", "leads per click"), ("qualified_rate", "qualified per lead"), ("customer_rate", "customers per lead"))],
        ],
        "responses": {"200": _json("Plan"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/r/{token}"): {
        "summary": "The HTML campaign report through a read-only link made with `calltrack report link` (same parameters as /v1/reports/campaigns)",
        "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": _STR}}}, "400": _ERROR, "404": _ERROR},
    },
    ("GET", "/v1/account/retention"): {
        "summary": "Days the account keeps recordings, caller numbers and form fields (null: for good)",
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": _RETENTION}}}, **_ACCOUNT_ERRORS},
    },
    ("PATCH", "/v1/account/retention"): {
        "summary": "Change the retention: the fields given replace the current ones; older data is anonymised by the hourly purge (rows and counts stay)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _RETENTION | {"minProperties": 1}}}},
        "responses": {"200": {"description": "the settings now", "content": {"application/json": {"schema": _RETENTION}}}, **_ACCOUNT_ERRORS},
    },
    ("POST", "/v1/contacts/erase"): {
        "summary": "Erase a person (by phone, read in the account's region, or email): their personal data leaves every contact, call, form, lead, visit and webhook body of this account; counts, stages and values stay; the lead history keeps who changed what",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
            "properties": {"phone": {"type": "string", "maxLength": 64}, "email": {"type": "string", "maxLength": 254}}}}}},
        "responses": {"200": {"description": "erased", "content": {"application/json": {"schema": _ERASURE}}}, **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/contacts/erasures"): {
        "summary": "The erasures made, newest first: when, by whom (API key prefix or cli) and how much; nothing about the person",
        "parameters": [_q("limit", "1-1000, default 100", schema={"type": "integer", "minimum": 1, "maximum": 1000})],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"erasures": {"type": "array", "items": _ERASURE}}}}}}, **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/scoring/rules"): {"summary": "The active qualification rules and their version (0: the built-in defaults)", "responses": {"200": _json("ScoringRules"), **_ACCOUNT_ERRORS}},
    ("PUT", "/v1/scoring/rules"): {
        "summary": "New qualification rules (a new version; rules that do not parse answer 400 and the active version stays)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "properties": {"rules": {"type": "array"}, "thresholds": {"type": "object"}, "business_hours": {"type": "object"}}, "required": ["rules"]}}}},
        "responses": {"201": _json("ScoringRules", "stored as the next version"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/ct.js"): {"summary": "The number-swap script", "security": [], "responses": {"200": {"description": "JavaScript", "content": {"application/javascript": {"schema": _STR}}}, "304": {"description": "not modified"}}},
    ("GET", "/demo"): {"summary": "A demo landing page using ct.js", "security": [], "parameters": [_q("site", "site key (default: the demo site)")], "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": _STR}}}, "400": _ERROR, "404": _ERROR}},
    ("POST", "/demo"): {"summary": "The demo page's contact form target (ct.js has already captured the form)", "security": [], "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": _STR}}}, "404": _ERROR}},
    ("GET", "/v1/sites"): {"summary": "The account's sites", "responses": {"200": _list("sites", "Site"), **_ACCOUNT_ERRORS}},
    ("POST", "/v1/sites"): {"summary": "Add a site", "requestBody": _body("NewSite"), "responses": {"201": _json("Site", "created"), **_ACCOUNT_ERRORS}},
    ("GET", "/v1/sites/{id}"): {"summary": "One site", "parameters": [_id()], "responses": {"200": _json("Site"), **_ACCOUNT_ERRORS}},
    ("GET", "/v1/numbers"): {
        "summary": "Tracking numbers",
        "parameters": [_q("pool_id", "only this pool's", schema={"type": "integer"}), _q("include_retired", "true to include retired numbers")],
        "responses": {"200": _list("numbers", "Number"), **_ACCOUNT_ERRORS},
    },
    ("POST", "/v1/numbers"): {
        "summary": "Add numbers: one object or {numbers: [...]}, all or none",
        "requestBody": _body("NewNumber"),
        "responses": {"201": _list("numbers", "Number"), "409": _ERROR, **_ACCOUNT_ERRORS},
    },
    ("POST", "/v1/numbers/import"): {
        "summary": "Import a CSV (number, forward_to, pool, source, medium, campaign, keyword, placement), all or none",
        "parameters": [_q("site_id", "site whose forwarding number rows without forward_to take", schema={"type": "integer"})],
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
        "responses": {"201": {"description": "imported", "content": {"application/json": {"schema": {"type": "object", "properties": {
            "imported": _INT, "numbers": {"type": "array", "items": {"$ref": "#/components/schemas/Number"}}}, "required": ["imported", "numbers"]}}}}, "409": _ERROR, **_ACCOUNT_ERRORS},
    },
    ("POST", "/v1/numbers/{id}/retire"): {"summary": "Retire a number; its open lease ends", "parameters": [_id()], "responses": {"200": _json("Number"), **_ACCOUNT_ERRORS}},
    ("GET", "/v1/pools"): {"summary": "Pools", "parameters": [_q("site_id", "only this site's", schema={"type": "integer"})], "responses": {"200": _list("pools", "Pool"), **_ACCOUNT_ERRORS}},
    ("POST", "/v1/pools"): {"summary": "Create a pool", "requestBody": _body("PoolSettings"), "responses": {"201": _json("Pool", "created"), "409": _ERROR, **_ACCOUNT_ERRORS}},
    ("GET", "/v1/pools/{id}"): {"summary": "One pool", "parameters": [_id()], "responses": {"200": _json("Pool"), **_ACCOUNT_ERRORS}},
    ("PATCH", "/v1/pools/{id}"): {"summary": "Change a pool (retired: true retires it)", "parameters": [_id()], "requestBody": _body("PoolSettings"), "responses": {"200": _json("Pool"), "409": _ERROR, **_ACCOUNT_ERRORS}},
    ("GET", "/v1/pools/{id}/health"): {
        "summary": "Utilisation per step, peak concurrent leases, exhaustions, recommended size",
        "parameters": [_id(), *_WINDOW, _q("step", "seconds per utilisation step (60-86400, default 3600)", schema={"type": "integer", "minimum": 60, "maximum": 86400})],
        "responses": {"200": _json("PoolHealth"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/pools/{id}/simulate"): {
        "summary": "Replay the recorded visits against a candidate size and hold time",
        "parameters": [_id(), _q("size", "candidate number of numbers", required=True, schema={"type": "integer", "minimum": 0, "maximum": 100000}),
                       _q("hold_seconds", "candidate hold time (default: the pool's)", schema={"type": "integer", "minimum": 0, "maximum": 604800}), *_WINDOW],
        "responses": {"200": _json("PoolSimulation", "OK: exhausted_share is the share of requests that would have found the pool exhausted"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/leases"): {
        "summary": "The lease log, newest first",
        "parameters": [
            _q("pool_id", "only this pool's", schema={"type": "integer"}),
            _q("number", "only this number (E.164)"),
            _q("active_at", "only leases holding their number at this time"),
            _q("limit", "at most this many (1-1000, default 100)", schema=_LIMIT),
        ],
        "responses": {"200": _list("leases", "Lease"), **_ACCOUNT_ERRORS},
    },
    ("GET", "/v1/leases/{id}/events"): {"summary": "A lease's start, renewals and end", "parameters": [_id()], "responses": {"200": _json("LeaseEvents"), **_ACCOUNT_ERRORS}},
}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {"code": _STR, "message": _STR}, "required": ["code", "message"]}}},
    # Answers that used to be described by a sentence only: their shape, for clients and for the
    # schemathesis run (tests/security/test_schemathesis.py) that checks every answer against it.
    "Health": {"type": "object", "properties": {"status": {"enum": ["ok", "unhealthy"]}, "database": _STR, "db_queue": _INT}, "required": ["status", "database"]},
    "FormStored": {"type": "object", "properties": {"id": _INT, "duplicate": {"type": "boolean"}, "lead_id": {"type": ["integer", "null"]}}, "required": ["id", "duplicate"]},
    "Form": {
        "type": "object",
        "properties": {
            "id": _INT, "site_id": {"type": ["integer", "null"]}, "vid": _NSTR, "sid": _NSTR, "ts": _NUM, "url": _NSTR, "form_type": _NSTR,
            "fields": {"type": "object"}, "email": _NSTR, "phone": _NSTR, "name": _NSTR, "company": _NSTR, "message": _NSTR,
            "contact_id": {"type": ["integer", "null"]}, "lead_id": {"type": ["integer", "null"]},
        },
        "required": ["id", "ts", "fields"],
    },
    "PoolHealth": {
        "type": "object",
        "properties": {
            "pool": {"$ref": "#/components/schemas/Pool"}, "since": _NUM, "until": _NUM, "step": _INT, "size": _INT, "peak_concurrent": _INT,
            "exhausted": _INT, "leases": _INT, "busiest_hour_arrivals": _INT, "mean_lease_seconds": _NUM, "recommended_size": _INT,
            "utilisation": {"type": "array", "items": {"type": "object", "properties": {"start": _NUM, "peak_leases": _INT, "utilisation": _NUM}}},
        },
        "required": ["pool", "size", "utilisation"],
    },
    "PoolSimulation": {
        "type": "object",
        "properties": {
            "pool": {"$ref": "#/components/schemas/Pool"}, "since": _NUM, "until": _NUM, "size": _INT, "hold_seconds": _INT, "cooldown_seconds": _INT,
            "requests": _INT, "visitors": _INT, "exhausted_requests": _INT, "exhausted_share": _NUM, "peak_concurrent": _INT,
        },
        "required": ["pool", "size", "exhausted_share"],
    },
    "LeaseEvents": {
        "type": "object",
        "properties": {"lease_id": _INT, "events": {"type": "array", "items": {"type": "object", "properties": {"kind": _STR, "ts": _NUM}, "required": ["kind", "ts"]}}},
        "required": ["lease_id", "events"],
    },
    "ScoringRules": {"type": "object", "properties": {"version": _INT, "rules": {"type": "object"}, "note": _STR}, "required": ["version"]},
    "Attribution": {
        "type": "object",
        "properties": {
            "stage": _STR, "level": _STR, "from": _NUM, "to": _NUM, "lookback_days": _INT, "conversions": _NUM, "attributed": _NUM,
            "unattributed": _NUM, "value": _NUM, "touches": _INT, "persons": _INT,
            "results": {"type": "array", "items": {"type": "object", "properties": {"model": _STR, "rows": {"type": "array", "items": {"type": "object"}}}, "required": ["model", "rows"]}},
        },
        "required": ["stage", "level", "results"],
    },
    "Costs": {
        "type": "object",
        "properties": {
            "from": _STR, "to": _STR, "totals": {"type": "object", "properties": {"clicks": _INT, "impressions": _INT, "cost": _NUM}},
            "costs": {"type": "array", "items": {"type": "object", "properties": {
                "date": _STR, "source": _STR, "medium": _STR, "campaign": _STR, "keyword": _STR, "clicks": _INT, "impressions": _INT, "cost": _NUM}}},
        },
        "required": ["from", "to", "totals", "costs"],
    },
    "CostImport": {
        "type": "object",
        "properties": {"imported": _INT, "replaced": _INT, "from": _NSTR, "to": _NSTR, "sources": {"type": "array", "items": _STR}},
        "required": ["imported"],
    },
    "PricingModel": {
        "type": "object",
        "properties": {"id": _INT, "source": _STR, "medium": _STR, "campaign": _STR, "model": {"enum": ["per_click", "per_lead", "per_action"]}, "price": _NUM, "stage": _NSTR},
        "required": ["id", "source", "model", "price"],
    },
    "CampaignReport": {
        "type": "object",
        "properties": {
            "account": {"type": "object"}, "from": _STR, "to": _STR, "level": _STR, "models": {"type": "array", "items": _STR},
            "attribution_stage": _STR, "lookback_days": _INT, "margin": _NUM, "totals": {"type": "object"},
            "funnel": {"type": "array", "items": {"type": "object", "properties": {"stage": _STR, "count": _INT}}},
            "rows": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["from", "to", "level", "totals", "rows"],
    },
    "OperationsReport": {
        "type": "object",
        "properties": {
            "from": _STR, "to": _STR, "target_seconds": _NUM, "limit_seconds": _NUM, "speed_to_lead": {"type": "object"}, "missed_calls": {"type": "object"},
            "loss_reasons": {"type": "array"}, "spam_reasons": {"type": "array"}, "source_quality": {"type": "array"}, "pools": {"type": "array"},
        },
        "required": ["from", "to", "speed_to_lead", "missed_calls"],
    },
    "Plan": {
        "type": "object",
        "properties": {"from": _STR, "to": _STR, "currency": _NSTR, "history": {"type": "object"}, "rates": {"type": "object"}, "missing": {"type": "array"}},
        "required": ["from", "to", "rates"],
    },
    "NumberAnswer": {
        "type": "object",
        "properties": {
            "phoneNumber": {"type": "string", "description": "E.164"},
            "formattedPhoneNumber": {"type": "string", "description": "national format"},
            "ttl": {"type": "integer", "description": "seconds the number is held after the last request"},
            "vid": _STR,
            "sid": _STR,
            "lease": {"type": "boolean", "description": "false when the number is not one held for this visitor (bot, no pool, exhausted, no consent)"},
            "siteNumber": {"type": "string", "description": "the site's own number (E.164), the one to replace on the page"},
            "siteFormattedNumber": _STR,
        },
        "required": ["phoneNumber", "formattedPhoneNumber", "ttl", "lease"],
    },
    "VisitRequest": {"type": "object", "properties": {p["name"]: p["schema"] for p in _VISIT_PARAMS} | {"site": _KEY}, "required": ["site"]},
    "FormRequest": {
        "type": "object",
        "properties": {
            "site": _KEY, "vid": _STR, "sid": _STR, "url": _STR, "id": {"type": "string", "description": "the sender's id for this submission"},
            "form_type": {"type": "string", "description": "contact, callback, estimate, demo…; 'callback' makes a callback lead"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}, "description": "must hold an email or phone field"},
        },
        "required": ["site", "fields"],
    },
    "TwilioForm": {
        "type": "object",
        "properties": {k: _STR for k in ("AccountSid", "CallSid", "ParentCallSid", "From", "To", "CallStatus", "Direction", "SequenceNumber", "Timestamp", "CallDuration", "RecordingSid", "RecordingUrl", "RecordingStatus", "RecordingDuration")},
        "required": ["CallSid"],
    },
    "PbxEvent": {
        "type": "object",
        "properties": {
            "event": {"enum": ["call.started", "call.ringing", "call.answered", "call.completed", "call.recording"]},
            "call_id": _STR, "from": _STR, "to": _STR, "started_at": {"type": ["string", "number"]}, "answered_at": {"type": ["string", "number", "null"]},
            "ended_at": {"type": ["string", "number", "null"]}, "duration": _INT, "billsec": _INT,
            "disposition": {"enum": ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"]}, "recording_url": _NSTR, "caller_name": _NSTR,
        },
        "required": ["event", "call_id"],
    },
    "PbxAnswer": {
        "type": "object",
        "properties": {"call_id": _INT, "duplicate": {"type": "boolean"}, "status": _STR, "forward_to": _NSTR, "blocked": {"type": "boolean"}, "match": {"type": "object"}},
    },
    "Call": {
        "type": "object",
        "properties": {
            "id": _INT, "provider": _STR, "call_ref": _STR, "tracking_number": _NSTR, "caller": _NSTR, "caller_withheld": {"type": "boolean"},
            "status": _STR, "started_at": _NUM, "answered_at": {"type": ["number", "null"]}, "ended_at": {"type": ["number", "null"]},
            "duration": {"type": ["integer", "null"]}, "forwarded_to": _NSTR, "match": {"type": "object"}, "source": {"type": "object"},
            "contact_id": {"type": ["integer", "null"]}, "lead_id": {"type": ["integer", "null"]}, "spam_reason": _NSTR,
        },
    },
    "Explain": {
        "type": "object",
        "properties": {
            "call_id": _INT, "method": {"enum": ["static", "lease", "expired_lease", "repeat_caller", "overflow", "unmatched", None]},
            "confidence": {"type": ["number", "null"]}, "lease_id": {"type": ["integer", "null"]}, "vid": _NSTR, "source": {"type": "object"},
            "reason": _NSTR, "others": {"type": "array", "items": {"type": "object"}}, "events": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Lead": {
        "type": "object",
        "properties": {
            "id": _INT, "contact": {"type": "object"}, "kind": _STR, "form_type": _NSTR, "stage": _STR, "spam_reason": _NSTR,
            "created_at": _NUM, "last_activity_at": _NUM, "touches": _INT, "source": {"type": "object"},
            "timeline": {"type": "array", "items": {"type": "object"}, "description": "GET /v1/leads/{id} only"},
        },
    },
    "LeadOutcome": {
        "type": "object",
        "properties": {
            "stage": {"enum": ["new", "contacted", "mql", "sql", "customer", "nurturing", "lost", "spam"]},
            "owner": _NSTR, "value": {"type": ["number", "null"], "minimum": 0}, "currency": _NSTR, "loss_reason": _NSTR,
            "spam_reason": _NSTR, "notes": _NSTR,
            "bant": {"type": "object", "properties": {k: {"type": "boolean"} for k in ("budget", "authority", "need", "timing")}, "additionalProperties": False},
        },
        "additionalProperties": False,
    },
    "Owner": {
        "type": "object",
        "properties": {"id": _INT, "name": _STR, "email": _NSTR, "active": {"type": "boolean"}, "leads": _INT, "open": _INT, "customers": _INT},
    },
    "NewLeadWebhook": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1, "description": "http(s) URL of the CRM endpoint"}, "description": _STR,
            "events": {"type": "array", "items": {"enum": ["lead.created", "lead.qualified", "lead.stage_changed"]}, "description": "default: all"},
        },
        "required": ["url"],
    },
    "LeadWebhook": {
        "type": "object",
        "properties": {
            "id": _INT, "url": _STR, "events": {"type": "array", "items": _STR}, "description": _STR, "active": {"type": "boolean"},
            "created_at": _NUM, "disabled_at": {"type": ["number", "null"]}, "deliveries": {"type": "object"},
            "secret": {"type": "string", "description": "only when created"},
        },
    },
    "LeadWebhookDelivery": {
        "type": "object",
        "properties": {
            "id": _INT, "webhook_id": _INT, "lead_id": _INT, "event": _STR, "occurred_at": _NUM, "change": {"type": ["object", "null"]},
            "status": {"enum": ["pending", "delivered", "failed", "cancelled"]}, "attempts": _INT, "next_attempt_at": {"type": ["number", "null"]},
            "last_status": {"type": ["integer", "null"]}, "last_error": _NSTR, "delivered_at": {"type": ["number", "null"]}, "created_at": _NUM,
            "body": {"type": ["object", "null"]}, "attempt_log": {"type": "array"},
        },
    },
    "OwnerRule": {
        "type": "object",
        "properties": {"id": _INT, "priority": _INT, "owner": _NSTR, "owner_id": _INT, "when": {"type": "object"}},
    },
    "NewOwnerRule": {
        "type": "object",
        "properties": {
            "priority": {"type": "integer", "minimum": 0, "maximum": 1000000}, "owner": _VALUE, "owner_id": {"type": "integer", "minimum": 1},
            "when": {
                "type": "object", "minProperties": 1, "additionalProperties": False,
                "properties": {k: {"anyOf": [_VALUE, {"type": "array", "items": _VALUE, "minItems": 1}]} for k in ("channel", "source", "medium", "campaign", "kind", "form_type", "region", "country")},
                "description": "channel, source, medium, campaign, kind, form_type, region, country: a value or a list of values",
            },
        },
        "required": ["when"],
        "anyOf": [{"required": ["owner"]}, {"required": ["owner_id"]}],
    },
    "PingRequest": {"type": "object", "properties": {"site": _KEY, "vid": _STR, "sid": _STR}, "required": ["site", "vid"]},
    "Site": {
        "type": "object",
        "properties": {"id": _INT, "name": _STR, "site_key": _STR, "allowed_domains": {"type": "array", "items": _STR}, "own_number": _STR, "forward_to": _STR},
    },
    "NewSite": {
        "type": "object",
        "properties": {"name": _KEY, "allowed_domains": {"type": "array", "items": _STR, "minItems": 1}, "own_number": _STR, "forward_to": _STR},
        "required": ["name", "allowed_domains", "own_number"],
    },
    "Number": {
        "type": "object",
        "properties": {
            "id": _INT, "number": _STR, "kind": {"enum": ["static", "pool"]}, "pool_id": {"type": ["integer", "null"]}, "forward_to": _STR,
            "source": _NSTR, "medium": _NSTR, "campaign": _NSTR, "keyword": _NSTR, "placement": _NSTR, "status": {"enum": ["active", "retired"]},
        },
    },
    "NewNumber": {
        "type": "object",
        "properties": {
            "number": _STR, "pool_id": _INT, "forward_to": _STR, "site_id": _INT, "source": _STR, "medium": _STR, "campaign": _STR,
            "keyword": _STR, "placement": _STR, "numbers": {"type": "array", "items": {"type": "object"}},
        },
    },
    "PoolSettings": {
        "type": "object",
        "properties": {
            "site_id": _INT, "name": _KEY, "priority": {"type": "integer", "minimum": -1000000, "maximum": 1000000},
            "hold_seconds": {"type": "integer", "minimum": 60, "maximum": 604800}, "cooldown_seconds": {"type": "integer", "minimum": 0, "maximum": 604800}, "overflow_number": _NSTR,
            "rules": {"type": "object", "description": "{all: true} or conditions: channel, utm_source, utm_medium, utm_campaign, keyword, referrer_domain (string or list)"},
            "retired": {"const": True},
        },
    },
    "Pool": {
        "type": "object",
        "properties": {
            "id": _INT, "site_id": _INT, "name": _STR, "priority": _INT, "rules": {"type": "object"}, "hold_seconds": _INT,
            "cooldown_seconds": _INT, "overflow_number": _NSTR, "retired": {"type": "boolean"},
        },
    },
    "Lease": {
        "type": "object",
        "properties": {
            "id": _INT, "pool_id": _INT, "number": _STR, "vid": _STR, "sid": _STR, "touchpoint_id": {"type": ["integer", "null"]},
            "started_at": _NUM, "last_seen_at": _NUM, "expires_at": _NUM, "ended_at": {"type": ["number", "null"]}, "end_reason": _NSTR,
        },
    },
}


def openapi_document(router: Router, *, base_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes():
        op = OPERATIONS.get((route.method, route.name))
        if op is None:
            raise KeyError(f"no OpenAPI description for {route.method} {route.name}")
        entry = dict(op)
        if (route.method, route.name) in _PUBLIC_OR_OPS:
            entry.setdefault("security", [])
        paths.setdefault(route.name, {})[route.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "calltrack", "version": "1", "description": "Call tracking and lead attribution."},
        "servers": [{"url": base_url}],
        "security": _BEARER,
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "an account API key (ctk_…)"}},
            "responses": {"Error": {"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": SCHEMAS,
        },
    }


_PUBLIC_OR_OPS = {("GET", "/r/{token}"), ("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/ct.js"), ("GET", "/demo"), ("POST", "/demo")}


class OpenApiResource:
    def __init__(self, router: Router, base_url: str) -> None:
        self._router = router
        self._base_url = base_url
        self._doc: dict[str, Any] | None = None

    def register(self, router: Router) -> None:
        router.add("GET", r"/openapi\.json", self.document, name="/openapi.json")

    async def document(self, request: Request) -> Response:
        if self._doc is None:
            self._doc = openapi_document(self._router, base_url=self._base_url)
        return Response(200, self._doc, headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})
