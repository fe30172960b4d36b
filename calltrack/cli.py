"""The ``calltrack`` command.

Commands that change data run the same service code as the HTTP API, on the calling thread
(a synchronous DBPool), so the CLI and the API validate alike. ``serve`` runs the reactor.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from twisted.internet import defer

from calltrack.accounts.service import AccountError
from calltrack.accounts.store import list_accounts_txn
from calltrack.app import App, build_app
from calltrack.config import CalltrackConfig, ConfigError, load_config
from calltrack.db.engine import create_engine, is_sqlite
from calltrack.db.migrate import current_revision, head_revision, upgrade
from calltrack.numbers.inputs import InvalidInput, new_number_from_json, parse_number_csv, pool_settings
from calltrack.numbers.resources import health_json, simulation_json
from calltrack.numbers.store import Conflict, NotFound
from calltrack.phones import format_national
from calltrack.reports import export_cli
from calltrack.simulate import add_parser as add_simulate_parser

logger = logging.getLogger("calltrack")


class CliError(Exception):
    """A message for the user; the command exits with status 2."""


class WallClock:
    """The real clock, for commands that run without a reactor."""

    def seconds(self) -> float:
        return time.time()

    def callLater(self, delay: float, f: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        raise RuntimeError("the CLI runs no timers")


def run_now(coro: Any) -> Any:
    """Run a service coroutine whose database work is synchronous, and return its result."""
    results: list[Any] = []
    defer.ensureDeferred(coro).addBoth(results.append)
    if not results:  # pragma: no cover - only if something waited on the reactor
        raise RuntimeError("the operation did not complete synchronously")
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def _open_app(config: CalltrackConfig) -> App:
    engine = create_engine(config.database.url)
    rev, head = current_revision(engine), head_revision()
    if rev != head:
        raise CliError(f"the database is at revision {rev or 'none'}, not {head}: run `calltrack db upgrade` first")
    return build_app(config, reactor=None, clock=WallClock(), engine=engine, synchronous_db=True)


def _account(app: App, account_id: int | None) -> Any:
    if account_id is None:
        accounts = app.db.run_sync("list_accounts", list_accounts_txn)
        if len(accounts) != 1:
            raise CliError("give --account ID" + (" (there are several accounts)" if accounts else " (create one with `calltrack account create`)"))
        return accounts[0]
    account = run_now(app.accounts.get_account(account_id))
    if account is None:
        raise CliError(f"no account {account_id}")
    return account


@contextmanager
def _text_file(path: str) -> Iterator[TextIO]:
    """An input file (CSV, JSON) opened as UTF-8; an unreadable, mis-encoded or broken file is
    one clean error for the user, whichever command reads it and however far it got."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}") from None
    with handle:
        try:
            yield handle
        except UnicodeDecodeError:
            raise CliError(f"{path} is not UTF-8 text; convert it first (e.g. iconv -f latin1 -t utf-8)") from None
        except csv.Error as e:
            raise CliError(f"{path}: not a readable CSV ({e})") from None


def _print(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False) if as_json else text)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# -- commands ----------------------------------------------------------------------------------


def cmd_db_upgrade(config: CalltrackConfig, args: argparse.Namespace) -> None:
    engine = create_engine(config.database.url)
    upgrade(engine)
    print(f"database at revision {current_revision(engine)}")


def cmd_account_create(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    try:
        account, key = run_now(
            app.accounts.create_account(args.name, timezone=args.timezone, currency=args.currency, default_region=args.region)
        )
    except AccountError as e:
        raise CliError(str(e)) from None
    _print(
        {"id": account.id, "name": account.name, "api_key": key},
        args.json,
        f"account {account.id} created: {account.name}\nAPI key (shown once, keep it): {key}",
    )


def cmd_site_add(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    try:
        site = run_now(
            app.accounts.add_site(
                account, name=args.name, allowed_domains=args.domain, own_number=args.number, forward_to=args.forward_to
            )
        )
    except AccountError as e:
        raise CliError(str(e)) from None
    from calltrack.accounts.resources import site_json

    _print(
        site_json(site),
        args.json,
        f"site {site.id} added: {site.name}\nsite key: {site.site_key}\n"
        f'embed: <script src="{config.http.public_base_url}/ct.js" data-site="{site.site_key}" async></script>',
    )


def _pools_by_name(app: App, account_id: int) -> dict[str, Any]:
    return {p.name: p for p in run_now(app.numbers.list_pools(account_id))}


def _site_forward(app: App, account_id: int, site_id: int | None, pool: Any = None) -> str | None:
    sid = site_id if site_id is not None else (pool.site_id if pool is not None else None)
    if sid is None:
        return None
    site = run_now(app.accounts.get_site(account_id, sid))
    if site is None:
        raise CliError(f"no site {sid} in this account")
    return site.forward_to


def cmd_numbers_add(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    pools = _pools_by_name(app, account.id)
    pool = None
    if args.pool:
        pool = pools.get(args.pool) or next((p for p in pools.values() if str(p.id) == args.pool), None)
        if pool is None:
            raise CliError(f"no pool {args.pool!r}")
    forward = args.forward_to or _site_forward(app, account.id, args.site, pool)
    new = []
    for number in args.numbers:
        body: dict[str, Any] = {"number": number}
        if pool is not None:
            body["pool_id"] = pool.id
        for f in ("source", "medium", "campaign", "keyword", "placement"):
            if getattr(args, f):
                body[f] = getattr(args, f)
        try:
            new.append(
                new_number_from_json(
                    body, region=account.default_region, pools_by_id={p.id: p for p in pools.values()}, default_forward=forward
                )
            )
        except InvalidInput as e:
            raise CliError(f"{number}: {e}") from None
    try:
        added = run_now(app.numbers.add_numbers(account.id, new))
    except Conflict as e:
        raise CliError(str(e)) from None
    _print([n.to_json() for n in added], args.json, "\n".join(f"added {n.id}: {n.e164} ({n.kind})" for n in added))


def cmd_numbers_import(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    with _text_file(args.file) as handle:
        text = handle.read()
    try:
        new = parse_number_csv(
            text,
            region=account.default_region,
            pools_by_name=_pools_by_name(app, account.id),
            default_forward=args.forward_to or _site_forward(app, account.id, args.site),
        )
        added = run_now(app.numbers.add_numbers(account.id, new))
    except (InvalidInput, Conflict) as e:
        raise CliError(f"{args.file}: {e}") from None
    _print({"imported": len(added)}, args.json, f"imported {len(added)} numbers from {args.file}")


def cmd_numbers_list(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    numbers = run_now(app.numbers.list_numbers(account.id, include_retired=args.all))
    pools = {p.id: p.name for p in run_now(app.numbers.list_pools(account.id))}
    lines = [f"{'id':>5}  {'number':<16} {'kind':<7} {'pool/source':<30} {'forwards to':<16} status"]
    for n in numbers:
        what = pools.get(n.pool_id, "") if n.kind == "pool" else " / ".join(x for x in (n.source, n.medium, n.campaign, n.placement) if x)
        lines.append(f"{n.id:>5}  {n.e164:<16} {n.kind:<7} {what[:30]:<30} {n.forward_to:<16} {n.status}")
    _print([n.to_json() for n in numbers], args.json, "\n".join(lines))


def cmd_numbers_retire(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    try:
        number = run_now(app.numbers.retire_number(account.id, args.number_id))
    except NotFound:
        raise CliError(f"no number {args.number_id} in this account") from None
    _print(number.to_json(), args.json, f"retired {number.e164}")


def _parse_rule_args(rules: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rule in rules:
        key, sep, value = rule.partition("=")
        if not sep:
            raise CliError(f"--rule {rule!r}: write key=value, e.g. channel=paid_search or utm_source=google,bing")
        out[key.strip()] = [v.strip() for v in value.split(",")]
    return out or {"all": True}


def cmd_pools_create(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    body: dict[str, Any] = {"name": args.name, "site_id": args.site, "rules": _parse_rule_args(args.rule)}
    for key in ("priority", "hold_seconds", "cooldown_seconds", "overflow_number"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    try:
        settings = pool_settings(body, region=account.default_region, creating=True)
    except InvalidInput as e:
        raise CliError(str(e)) from None
    site = run_now(app.accounts.get_site(account.id, settings.pop("site_id")))
    if site is None:
        raise CliError(f"no site {args.site} in this account")
    try:
        pool = run_now(app.numbers.create_pool(account.id, site, **settings))
    except Conflict as e:
        raise CliError(str(e)) from None
    _print(pool.to_json(), args.json, f"pool {pool.id} created: {pool.name} rules={json.dumps(pool.rules.to_json())} hold={pool.hold_seconds}s")


def cmd_pools_list(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    pools = run_now(app.numbers.list_pools(account.id))
    lines = [f"{'id':>4}  {'site':>4}  {'prio':>4}  {'name':<20} {'hold':>6} {'cool':>6}  rules"]
    for p in pools:
        lines.append(
            f"{p.id:>4}  {p.site_id:>4}  {p.priority:>4}  {p.name[:20]:<20} {p.hold_seconds:>6} {p.cooldown_seconds:>6}  "
            f"{json.dumps(p.rules.to_json())}{'  (retired)' if p.retired else ''}"
        )
    _print([p.to_json() for p in pools], args.json, "\n".join(lines))


def cmd_pools_status(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    until = time.time()
    since = until - args.days * 86400
    pools = [p for p in run_now(app.numbers.list_pools(account.id)) if not p.retired]
    if args.pool is not None:
        pools = [p for p in pools if p.id == args.pool]
        if not pools:
            raise CliError(f"no pool {args.pool} in this account")
    reports = []
    lines = []
    for p in pools:
        pool, health = run_now(app.numbers.pool_health(account.id, p.id, since=since, until=until, step=args.step))
        reports.append(health_json(pool, health, since, until, args.step))
        advice = "ok"
        if health.recommended_size > health.size:
            advice = f"add {health.recommended_size - health.size} numbers"
        elif health.size > 2 * max(health.recommended_size, 1):
            advice = f"could release {health.size - health.recommended_size} numbers"
        lines.append(
            f"pool {pool.id} {pool.name!r}: {health.size} numbers, peak {health.peak_concurrent} held at once, "
            f"{health.leases} leases, {health.exhausted} exhausted, mean lease {health.mean_lease_seconds / 60:.1f} min, "
            f"recommended size {health.recommended_size} ({advice})"
        )
        busy = [pt for pt in health.series if pt.peak_leases]
        for pt in busy[-args.rows :]:
            bar = "#" * round(pt.utilisation * 40)
            lines.append(f"  {_when(pt.start)}  {pt.peak_leases:>4} held  {pt.utilisation:6.1%} {bar}")
    _print(reports, args.json, "\n".join(lines) or "no pools")


def cmd_pools_simulate(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    until = time.time()
    since = until - args.days * 86400
    rows = []
    for size in args.size:
        try:
            pool, result = run_now(
                app.numbers.simulate_pool(account.id, args.pool, size=size, hold_seconds=args.hold_seconds, since=since, until=until)
            )
        except NotFound:
            raise CliError(f"no pool {args.pool} in this account") from None
        rows.append(simulation_json(pool, result, since, until))
    lines = [f"replaying {rows[0]['requests']} requests of {rows[0]['visitors']} visitors (last {args.days:g} days)"]
    for r in rows:
        lines.append(
            f"  size {r['size']:>4}, hold {r['hold_seconds'] / 60:.0f} min: {r['exhausted_share']:.2%} of requests "
            f"exhausted ({r['exhausted_requests']}), peak {r['peak_concurrent']}"
        )
    _print(rows, args.json, "\n".join(lines))


def cmd_leases_list(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    filters: dict[str, Any] = {"limit": args.limit}
    if args.pool is not None:
        filters["pool_id"] = args.pool
    if args.active:
        filters["active_at"] = time.time()
    if args.number:
        filters["number"] = args.number
    leases = run_now(app.numbers.leases(account.id, **filters))
    lines = [f"{'id':>6}  {'number':<16} {'visitor':<18} {'started':<19}  {'last seen':<19}  {'ends':<19}  end"]
    for lease in leases:
        ends = lease.ended_at if lease.ended_at is not None else lease.expires_at
        lines.append(
            f"{lease.id:>6}  {format_national(lease.number):<16} {lease.vid[:18]:<18} {_when(lease.started_at)}  "
            f"{_when(lease.last_seen_at)}  {_when(ends)}  {lease.end_reason or 'open'}"
        )
    _print([lease.to_json() for lease in leases], args.json, "\n".join(lines))


def cmd_telephony_add(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    try:
        cred = run_now(
            app.telephony.add_credential(
                account.id, args.provider, provider_account=args.account_sid, secret=args.secret, record_calls=args.record
            )
        )
    except ValueError as e:
        raise CliError(str(e)) from None
    base = config.http.public_base_url.rstrip("/")
    hooks = {
        "twilio": [f"{base}/v1/webhooks/twilio/voice (Voice URL, POST)", f"{base}/v1/webhooks/twilio/status (Status callback URL)"],
        "telnyx": [f"{base}/v1/webhooks/telnyx (Call Control webhook URL)", f"{base}/v1/webhooks/twilio/voice (TeXML voice URL)"],
        "pbx": [f"{base}/v1/webhooks/calls (sign with X-CT-Signature, see README)"],
    }[cred.provider]
    shown = {"id": cred.id, "provider": cred.provider, "provider_account": cred.provider_account, "record_calls": cred.record_calls, "webhooks": hooks}
    text = f"added {cred.provider} credential {cred.id} to account {account.id}\npoint the provider at:\n  " + "\n  ".join(hooks)
    if cred.provider == "pbx" and not args.secret:
        shown["secret"] = cred.secret
        text += f"\nsigning secret (shown once): {cred.secret}"
    _print(shown, args.json, text)


def cmd_telephony_list(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    creds = [c for c in run_now(app.telephony.credentials_of(account.id))]
    rows = [{"id": c.id, "provider": c.provider, "provider_account": c.provider_account, "record_calls": c.record_calls} for c in creds]
    _print(rows, args.json, "\n".join(f"{r['id']}: {r['provider']} {r['provider_account'] or ''}{' (records calls)' if r['record_calls'] else ''}" for r in rows) or "no credentials")


def cmd_calls_import(config: CalltrackConfig, args: argparse.Namespace) -> None:
    """PBX call logs (CDR CSV) in bulk: each row one completed call, stored once (a re-import
    finds the same calls), matched and tied to leads like a webhook."""
    from zoneinfo import ZoneInfo

    from calltrack.telephony.cdr import CdrProblem, read_cdr

    app = _open_app(config)
    account = _account(app, args.account)
    try:
        tz = ZoneInfo(args.timezone or account.timezone)
    except (ValueError, KeyError):
        raise CliError(f"unknown time zone {args.timezone!r} (an IANA name such as America/New_York)") from None
    problems: list[CdrProblem] = []
    with _text_file(args.file) as handle:

        def events() -> Any:  # streamed: a year of CDRs is never all in memory
            for item in read_cdr(handle, tz=tz):
                if isinstance(item, CdrProblem):
                    problems.append(item)
                else:
                    yield item

        results = app.telephony.ingest_many_sync(account.id, account.default_region, events(), now=time.time(), keep=False)
    imported, duplicates, methods = results
    summary = {
        "imported": imported, "duplicates": duplicates, "rejected": len(problems), "matched": methods,
        "problems": [{"line": p.line, "message": p.message} for p in problems[:100]],
    }
    text = f"imported {imported} calls, {duplicates} already stored, {len(problems)} rows rejected"
    if methods:
        text += "\nmatched: " + ", ".join(f"{k} {v}" for k, v in sorted(methods.items()))
    for p in problems[:20]:
        text += f"\n  line {p.line}: {p.message}"
    _print(summary, args.json, text)


def cmd_telephony_revoke(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    if not run_now(app.telephony.revoke_credential(account.id, args.id)):
        raise CliError(f"account {account.id} has no active credential {args.id}")
    _print({"revoked": args.id}, args.json, f"revoked credential {args.id}; running servers stop accepting it within 30 s")


def cmd_calls_list(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    calls = run_now(app.telephony.list_calls(account.id, limit=args.limit))
    _print(
        [c.to_json() for c in calls],
        args.json,
        "\n".join(
            f"{c.id}: {_when(c.started_at)} {c.caller or ('withheld' if c.caller_withheld else '?')} → {c.tracking_number or '?'} "
            f"{c.status} {c.duration or 0}s {c.match_method or '-'} {c.source.get('channel') or ''} {c.source.get('campaign') or ''}"
            for c in calls
        ) or "no calls",
    )


def cmd_calls_block(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.phones import InvalidPhoneNumber, to_e164

    app = _open_app(config)
    account = _account(app, args.account)
    try:
        phone = to_e164(args.phone, account.default_region)
    except InvalidPhoneNumber as e:
        raise CliError(str(e)) from None
    run_now(app.telephony.block_caller(account.id, phone, args.reason or ""))
    _print({"blocked": phone}, args.json, f"blocked {phone}: their calls are rejected and their leads are spam")


def cmd_leads_import_outcomes(config: CalltrackConfig, args: argparse.Namespace) -> None:
    """A CRM's export of what became of the leads, applied row by row like PATCH /v1/leads/{id}."""
    from calltrack.leads.contacts import normalise_email, read_caller
    from calltrack.leads.outcomes import OutcomeProblem, read_outcomes_csv
    from calltrack.leads.store import LeadNotFound
    from calltrack.scoring.stages import InvalidOutcome, InvalidTransition

    app = _open_app(config)
    account = _account(app, args.account)
    applied = 0
    problems: list[dict[str, Any]] = []
    with _text_file(args.file) as handle:
        for item in read_outcomes_csv(handle):
            if isinstance(item, OutcomeProblem):
                problems.append({"line": item.line, "message": item.message})
                continue
            lead_id = item.lead_id or app.leads.find_sync(
                account.id,
                phone=read_caller(item.phone, account.default_region).e164 if item.phone else None,
                email=normalise_email(item.email),
            )
            if lead_id is None:
                problems.append({"line": item.line, "message": "no lead of this account has that phone or email"})
                continue
            try:
                app.leads.update_sync(account.id, lead_id, item.outcome, actor=f"csv:{Path(args.file).name}"[:64], now=time.time())
                applied += 1
            except LeadNotFound:
                problems.append({"line": item.line, "message": f"no lead {lead_id} in this account"})
            except (InvalidTransition, InvalidOutcome) as e:
                problems.append({"line": item.line, "message": str(e)})
    text = f"applied {applied} outcomes, {len(problems)} rows refused"
    for p in problems[:20]:
        text += f"\n  line {p['line']}: {p['message']}"
    _print({"applied": applied, "refused": len(problems), "problems": problems[:100]}, args.json, text)


def _owner_named(app: App, account_id: int, name: str) -> Any:
    owner = run_now(app.owners.by_name(account_id, name))
    if owner is None:
        raise CliError(f"no owner named {name!r} (see `calltrack owners list`)")
    return owner


def cmd_owners_add(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.leads.owner_store import OwnerError

    app = _open_app(config)
    account = _account(app, args.account)
    try:
        owner = run_now(app.owners.add(account.id, args.name.strip(), args.email))
    except OwnerError as e:
        raise CliError(str(e)) from None
    _print(owner.to_json(), args.json, f"added owner {owner.id}: {owner.name}; new leads now go round robin among the active owners")


def cmd_owners_list(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    found = run_now(app.owners.list(account.id))
    rules = run_now(app.owners.rules(account.id))
    names = {o["id"]: o["name"] for o in found}
    text = "\n".join(
        f"{o['id']}: {o['name']}{'' if o['active'] else ' (inactive)'}  leads {o['leads']}, open {o['open']}, customers {o['customers']}" for o in found
    ) or "no owners"
    for r in rules:
        text += f"\nrule {r.id} (priority {r.priority}): {r.to_json()['when']} → {names.get(r.owner_id)}"
    _print({"owners": found, "rules": [r.to_json(names.get(r.owner_id)) for r in rules]}, args.json, text)


def cmd_owners_active(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    owner = _owner_named(app, account.id, args.name)
    updated = run_now(app.owners.update(account.id, owner.id, {"active": args.active}))
    _print(updated.to_json(), args.json, f"{updated.name} is {'active' if updated.active else 'inactive'}")


def cmd_owners_rule(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.leads.assignment import InvalidRule

    app = _open_app(config)
    account = _account(app, args.account)
    owner = _owner_named(app, account.id, args.owner)
    when: dict[str, list[str]] = {}
    for item in args.when:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise CliError(f"--when {item!r}: write key=value[,value…], e.g. source=google")
        when.setdefault(key.strip(), []).extend(v.strip() for v in values.split(",") if v.strip())
    try:
        rule = run_now(app.owners.add_rule(account.id, args.priority, when, owner.id))
    except InvalidRule as e:
        raise CliError(str(e)) from None
    _print(rule.to_json(owner.name), args.json, f"rule {rule.id}: leads with {rule.to_json()['when']} go to {owner.name}")


def cmd_scoring_show(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    version, document = run_now(app.scoring.rules(account.id))
    _print({"version": version, "rules": document}, args.json, f"version {version}{' (built-in defaults)' if version == 0 else ''}\n" + json.dumps(document, indent=2))


def cmd_scoring_set(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.scoring.rules import InvalidRules

    app = _open_app(config)
    account = _account(app, args.account)
    try:
        with _text_file(args.file) as handle:
            document = json.loads(handle.read())
    except ValueError as e:
        raise CliError(f"{args.file} is not JSON: {e}") from None
    try:
        version = run_now(app.scoring.set_rules(account.id, document))
    except InvalidRules as e:
        raise CliError(f"{args.file}: {e}; the active version stays") from None
    _print({"version": version}, args.json, f"rules stored as version {version}; run `calltrack scoring backfill` to re-score past leads")


def cmd_webhooks_add(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.leads.outbox import InvalidWebhook
    from calltrack.leads.outbox_store import OutboxConflict

    app = _open_app(config)
    account = _account(app, args.account)
    events = args.events.split(",") if args.events else None
    try:
        webhook, secret = run_now(app.outbox.add(account.id, args.url, events, args.description or ""))
    except (InvalidWebhook, OutboxConflict) as e:
        raise CliError(str(e)) from None
    text = (
        f"lead webhook {webhook.id}: {webhook.url} ({', '.join(webhook.events)})\n"
        f"  signing secret (shown once; verify X-CT-Signature with it): {secret}\n"
        "  a running `calltrack serve` starts delivering within a second"
    )
    _print(webhook.to_json() | {"secret": secret}, args.json, text)


def cmd_webhooks_list(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    found = run_now(app.outbox.list(account.id))
    text = "\n".join(
        f"{w.id}: {w.url}{'' if w.active else ' (removed)'}  {', '.join(w.events)}  "
        + (", ".join(f"{k} {v}" for k, v in sorted(w.counts.items())) or "no deliveries yet")
        for w in found
    ) or "no lead webhooks"
    _print({"webhooks": [w.to_json() for w in found]}, args.json, text)


def cmd_webhooks_remove(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.leads.outbox_store import OutboxError

    app = _open_app(config)
    account = _account(app, args.account)
    try:
        cancelled = run_now(app.outbox.remove(account.id, args.id))
    except OutboxError as e:
        raise CliError(str(e)) from None
    _print({"removed": True, "cancelled_deliveries": cancelled}, args.json, f"removed lead webhook {args.id}; {cancelled} pending deliveries cancelled")


def cmd_webhooks_deliveries(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.leads.outbox_store import OutboxError

    app = _open_app(config)
    account = _account(app, args.account)
    try:
        found = run_now(app.outbox.deliveries(account.id, args.id, status=args.status, limit=args.limit))
    except OutboxError as e:
        raise CliError(str(e)) from None
    text = "\n".join(
        f"{d['id']}: {d['event']} lead {d['lead_id']}  {d['status']} after {d['attempts']} attempts"
        + (f"  last: {d['last_error']}" if d["last_error"] else "")
        + (f"  next at {_when(d['next_attempt_at'])}" if d["next_attempt_at"] else "")
        for d in found
    ) or "no deliveries"
    _print({"deliveries": found}, args.json, text)


def cmd_webhooks_resend(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.leads.outbox_store import OutboxConflict, OutboxError

    app = _open_app(config)
    account = _account(app, args.account)
    try:
        found = run_now(app.outbox.resend(account.id, args.id, args.delivery))
    except (OutboxError, OutboxConflict) as e:
        raise CliError(str(e)) from None
    _print(found, args.json, f"delivery {found['id']} queued again; a running `calltrack serve` sends it")


def cmd_attribute(config: CalltrackConfig, args: argparse.Namespace) -> None:
    """Credit per channel (or another level) for a period's conversions, under one or more models."""
    from tqdm import tqdm  # here, not at the top: the rest of the CLI does not need it

    from calltrack.attribution.resources import read_query
    from calltrack.reports.spreadsheet import frame_to_csv
    from calltrack.web.errors import ApiError

    app = _open_app(config)
    account = _account(app, args.account)
    raw = {
        "model": args.model, "stage": args.stage, "from": args.since, "to": args.until, "level": args.level,
        "lookback_days": args.lookback_days, "half_life_days": args.half_life_days, "first": args.first, "last": args.last,
        "order": args.order, "variant": args.variant, "ci": "true" if args.ci else "false", "samples": args.samples, "seed": args.seed,
    }
    try:
        query = read_query({k: str(v) for k, v in raw.items() if v is not None}, time.time())
    except ApiError as e:
        raise CliError(e.message) from None
    progress = sys.stderr.isatty() and not args.json
    with tqdm(desc="reading touches", unit=" touches", file=sys.stderr, disable=not progress, leave=False) as bar:
        try:
            result = app.attribution.attribute_sync(account.id, query, on_rows=bar.update)
        except ValueError as e:
            raise CliError(str(e)) from None
    fmt = "json" if args.json else args.format
    if fmt == "csv":
        payload = frame_to_csv(result.long_frame())
    elif fmt == "json":
        payload = (json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n").encode()
    else:
        payload = (_attribution_table(result) + "\n").encode()
    if args.out:
        Path(args.out).write_bytes(payload)
        print(f"wrote {args.out} ({result.conversions} conversions, {len(query.models)} models)")
    else:
        sys.stdout.write(payload.decode())


def _attribution_table(result: Any) -> str:
    q = result.query
    lines = [
        f"{q.stage} conversions {_when(q.since)} to {_when(q.until)} UTC: {result.conversions} "
        f"({result.conversions - result.attributed} with no touch in their {q.lookback_days}-day window), "
        f"value {result.value:,.2f}; {result.touches} touches of {result.persons} people"
    ]
    for r in result.results:
        lines.append(f"\n{r.model}:")
        width = max([len(q.level), *(len(str(i)) for i in r.frame.index)]) + 2
        ci = "low" in r.frame.columns
        lines.append(f"  {q.level:<{width}}{'conversions':>12}{'value':>14}" + (f"{'95% low':>10}{'95% high':>10}" if ci else ""))
        for idx, row in r.frame.sort_values("conversions", ascending=False).iterrows():
            line = f"  {str(idx):<{width}}{row['conversions']:>12.2f}{row['value']:>14,.2f}"
            if ci:
                line += f"{row['low']:>10.2f}{row['high']:>10.2f}"
            lines.append(line)
    return "\n".join(lines)


def cmd_costs_import(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.reports.costs import CostProblem

    app = _open_app(config)
    account = _account(app, args.account)
    with _text_file(args.file) as handle:
        text = handle.read()
    try:
        result = run_now(app.costs.import_csv(account.id, text, currency=account.currency))
    except CostProblem as e:
        lines = "\n".join(f"  line {line}: {msg}" for line, msg in e.problems[:20])
        raise CliError(f"{len(e.problems)} rows refused, nothing imported:\n{lines}") from None
    _print(result, args.json, f"imported {result['imported']} cost rows ({result['from']} to {result['to']}, {', '.join(result['sources'])}); "
           f"{result['replaced']} rows of that period replaced")


def cmd_costs_list(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    first, last = _report_days(account, args.since, args.until, 31)
    rows = run_now(app.costs.costs(account.id, first.isoformat(), last.isoformat()))
    keys = ("date", "source", "medium", "campaign", "keyword", "clicks", "impressions", "cost")
    text = "\n".join(f"{r[0]}  {r[1]} / {r[2] or '-'}  {r[3] or '-'}  {r[4] or ''}  clicks {r[5]}  cost {r[7]:,.2f}" for r in rows) or "no costs in that period"
    text += f"\ntotal: {sum(r[7] for r in rows):,.2f} {account.currency}, {sum(r[5] for r in rows)} clicks"
    _print({"costs": [dict(zip(keys, r, strict=True)) for r in rows]}, args.json, text)


def cmd_costs_price(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    doc = {"source": args.source, "medium": args.medium, "campaign": args.campaign, "model": args.model, "price": args.price, "stage": args.stage}
    try:
        pricing_id, model = run_now(app.costs.set_price(account.id, {k: v for k, v in doc.items() if v is not None}))
    except ValueError as e:
        raise CliError(str(e)) from None
    prices = run_now(app.costs.prices(account.id))
    text = "\n".join(f"{i}: {p.source} / {p.medium or '*'} / {p.campaign or '*'}  {p.model}{' (' + p.stage + ')' if p.stage else ''} {p.price:,.2f}" for i, p in prices)
    _print({"id": pricing_id, **model.to_json()}, args.json, text)


def cmd_report(config: CalltrackConfig, args: argparse.Namespace) -> None:
    """The campaign report as an HTML page, CSV or JSON."""
    from calltrack.reports import render
    from calltrack.reports.resources import read_report_query
    from calltrack.reports.service import account_today
    from calltrack.web.errors import ApiError

    app = _open_app(config)
    account = _account(app, args.account)
    raw = {"from": args.since, "to": args.until, "level": args.level, "models": args.models, "stage": args.stage,
           "lookback_days": args.lookback_days, "margin": args.margin}
    now = time.time()
    try:
        query = read_report_query({k: str(v) for k, v in raw.items() if v is not None}, today=account_today(account, now))
    except ApiError as e:
        raise CliError(e.message) from None
    report = app.reports.campaigns_sync(account, query, now=now)
    fmt = "json" if args.json else args.format
    body = render.to_html(report) if fmt == "html" else render.to_csv(report) if fmt == "csv" else render.to_json_bytes(report) + b"\n"
    if args.out:
        Path(args.out).write_bytes(body)
        t = report.total
        print(f"wrote {args.out}: {query.first} to {query.last}, {int(t['leads'])} leads, {int(t['qualified'])} qualified, cost {t['cost']:,.2f} {account.currency}")
    else:
        sys.stdout.write(body.decode("utf-8"))


def cmd_report_link(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    token = app.reports.add_link_sync(account.id, label=args.label or "", now=time.time(), days=args.days)
    url = f"{config.http.public_base_url.rstrip('/')}/r/{token}"
    _print({"url": url, "expires_in_days": args.days}, args.json,
           f"{url}\n  read-only, {'for ' + str(args.days) + ' days' if args.days else 'until revoked'}; add ?from=YYYY-MM-DD&to=…&level=… to change the view")


def _report_days(account: Any, since: str | None, until: str | None, default_days: int) -> tuple[Any, Any]:
    """--from/--to as whole days in the account's zone, checked as the API checks them."""
    from calltrack.reports.service import MAX_DAYS, account_today
    from calltrack.web import params
    from calltrack.web.errors import ApiError

    try:
        return params.day_range({"from": since, "to": until}, today=account_today(account, time.time()), default_days=default_days, max_days=MAX_DAYS)
    except ApiError as e:
        raise CliError(e.message.replace("'from'", "--from").replace("'to'", "--to")) from None


def cmd_report_ops(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    first, last = _report_days(account, args.since, args.until, 30)
    body = run_now(app.reports.operations(account, first, last))
    lines = [f"operations {body['from']} to {body['to']}"]
    for key in ("by_owner", "by_channel"):
        lines.append(f"speed to lead {key.replace('_', ' ')}:")
        for r in body["speed_to_lead"][key]:
            name = r.get("owner", r.get("channel"))
            lines.append(f"  {name}: {r['leads']} leads, {r['answered']} answered, median {r['median_seconds']} s, on time {r['on_time_share']:.0%}, past the limit {r['past_limit']}")
    m = body["missed_calls"]
    lines.append(f"missed calls: {m['missed']}, not called back: {m['not_called_back']}")
    lines += [f"lost: {r['reason']} {r['leads']}" for r in body["loss_reasons"]] + [f"spam: {r['reason']} {r['leads']}" for r in body["spam_reasons"]]
    lines += [f"pool {p['name']}: size {p['size']}, peak {p['peak_concurrent']}, exhausted {p['exhausted']}, recommended {p['recommended_size']}" for p in body["pools"]]
    _print(body, args.json, "\n".join(lines))


def cmd_plan(config: CalltrackConfig, args: argparse.Namespace) -> None:
    app = _open_app(config)
    account = _account(app, args.account)
    if args.budget is None and args.target_customers is None:
        raise CliError("give --budget and/or --target-customers")
    overrides = {k: v for k, v in (("cpc", args.cpc), ("lead_rate", args.lead_rate), ("qualified_rate", args.qualified_rate), ("customer_rate", args.customer_rate)) if v is not None}
    if any(v <= 0 for v in overrides.values()) or any(v is not None and v <= 0 for v in (args.budget, args.target_customers)):
        raise CliError("budgets, targets and rates must be above 0")
    first, last = _report_days(account, args.since, args.until, 90)
    body = run_now(app.reports.plan(account, first, last, budget=args.budget, target_customers=args.target_customers, overrides=overrides))
    lines = [f"rates ({'given or ' if overrides else ''}from {body['from']} to {body['to']}): " + ", ".join(f"{k} {v:.4g}" if v is not None else f"{k} unknown" for k, v in body["rates"].items())]
    if "budget" in body:
        b = body["budget"]
        lines.append(f"{b['budget']:,.2f} {body['currency']} → {b['clicks']} clicks → {b['leads']} leads → {b['qualified']} qualified → {b['customers']} customers")
    if "target" in body:
        t = body["target"]
        lines.append(f"{t['customers']:g} customers need {t['leads']} leads, {t['clicks']} clicks, a budget of {t['budget']} {body['currency']}")
    if body["missing"]:
        lines.append("unknown (no paid history; give them): " + ", ".join(body["missing"]))
    _print(body, args.json, "\n".join(lines))


def cmd_account_retention(config: CalltrackConfig, args: argparse.Namespace) -> None:
    """Show the account's retention, or change the kinds given (days, or 'keep')."""
    from calltrack.privacy.rules import InvalidRetention, read_days_argument

    app = _open_app(config)
    account = _account(app, args.account)
    given = {f"{kind}_days": getattr(args, f"{kind}_days") for kind in ("recordings", "callers", "forms")}
    try:
        changes = {name: read_days_argument(text, name) for name, text in given.items() if text is not None}
        retention = run_now(app.privacy.set_retention(account.id, changes)) if changes else run_now(app.privacy.retention(account.id))
    except InvalidRetention as e:
        raise CliError(str(e)) from None
    shown = retention.to_json()
    lines = [f"{kind}: " + (f"{shown[kind + '_days']} days" if shown[kind + "_days"] is not None else "kept") for kind in ("recordings", "callers", "forms")]
    if changes:
        lines.append("a running `calltrack serve` purges within the hour; `calltrack retention purge` does it now")
    _print(shown, args.json, "\n".join(lines))


def cmd_retention_purge(config: CalltrackConfig, args: argparse.Namespace) -> None:
    """Anonymise now what the retention settings say is too old (every account with a setting,
    or one)."""
    app = _open_app(config)
    account_id = _account(app, args.account).id if args.account is not None else None
    done = run_now(app.privacy.purge(account_id))
    text = "\n".join(
        f"account {acc}: " + (", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "nothing to do") for acc, kinds in sorted(done.items())
    ) or "no account has a retention setting (calltrack account retention)"
    _print({str(acc): kinds for acc, kinds in done.items()}, args.json, text)


def cmd_contacts_erase(config: CalltrackConfig, args: argparse.Namespace) -> None:
    """Erase one person's personal data from the account (like POST /v1/contacts/erase)."""
    from calltrack.privacy.service import InvalidPerson

    app = _open_app(config)
    account = _account(app, args.account)
    try:
        erasure = run_now(app.privacy.erase(account, phone=args.phone, email=args.email, actor="cli"))
    except InvalidPerson as e:
        raise CliError(str(e)) from None
    if erasure is None:
        raise CliError(f"account {account.id} has no such person")
    c = erasure.counts
    _print(
        erasure.to_json(), args.json,
        f"erasure {erasure.id}: {c['contacts']} contacts, {c['leads']} leads, {c['calls']} calls, {c['forms']} forms, "
        f"{c['touchpoints']} visits, {c['deliveries_cancelled']} pending webhook deliveries cancelled, {c['blocklist_removed']} blocklist entries removed",
    )


def cmd_scoring_backfill(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from tqdm import tqdm

    app = _open_app(config)
    account = _account(app, args.account)
    with tqdm(unit=" leads", disable=args.json or not sys.stderr.isatty(), file=sys.stderr) as bar:
        version, scored, promoted = app.scoring.backfill_sync(account.id, progress=bar.update, now=time.time())
    _print(
        {"version": version, "scored": scored, "promoted": promoted}, args.json,
        f"scored {scored} leads with rules version {version}; {promoted} promoted to MQL",
    )


def cmd_demo_seed(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.demo import seed_demo

    app = _open_app(config)
    result = seed_demo(app, base_url=config.http.public_base_url)
    _print(result, args.json, result["text"])


# -- serving -----------------------------------------------------------------------------------


def cmd_serve(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.logs import route_twisted_logs, setup_logging
    from calltrack.server import serve, serve_workers

    setup_logging(config.logging.level, config.logging.format)
    route_twisted_logs()
    bind = args.bind or config.http.bind
    port = args.port if args.port is not None else config.http.port
    if args.inherit_fd is not None:
        serve(config, inherited_fd=args.inherit_fd)
        return
    engine = create_engine(config.database.url)
    if current_revision(engine) != head_revision():
        raise CliError("the database schema is not current: run `calltrack db upgrade` first")
    engine.dispose()
    if args.workers > 1:
        if is_sqlite(config.database.url):
            raise CliError("--workers > 1 needs PostgreSQL (CALLTRACK_DATABASE_URL=postgresql+psycopg://…); SQLite has one writer")
        serve_workers(config, bind=bind, port=port, workers=args.workers, config_path=args.config)
    else:
        serve(config, bind=bind, port=port)


# -- argument parsing --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calltrack", description="Call tracking and lead attribution.")
    parser.add_argument("--config", help="TOML config file (default: $CALLTRACK_CONFIG; env vars CALLTRACK_* override)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve HTTP")
    p.add_argument("--port", type=int)
    p.add_argument("--bind")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port (PostgreSQL only)")
    p.add_argument("--inherit-fd", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    acc = sub.add_parser("account", help="accounts").add_subparsers(dest="account_command", required=True)
    p = acc.add_parser("create", help="create an account and its first API key")
    p.add_argument("name")
    p.add_argument("--timezone", default="UTC")
    p.add_argument("--currency", default="USD")
    p.add_argument("--region", default="US", help="country for numbers written without +country code")
    p.set_defaults(func=cmd_account_create)

    site = sub.add_parser("site", help="sites").add_subparsers(dest="site_command", required=True)
    p = site.add_parser("add", help="add a site")
    p.add_argument("--account", type=int)
    p.add_argument("--name", required=True)
    p.add_argument("--domain", action="append", required=True, help="allowed domain (repeat for several)")
    p.add_argument("--number", required=True, help="the site's own phone number, the one ct.js replaces")
    p.add_argument("--forward-to", help="where tracking numbers forward (default: --number)")
    p.set_defaults(func=cmd_site_add)

    nums = sub.add_parser("numbers", help="tracking numbers").add_subparsers(dest="numbers_command", required=True)
    p = nums.add_parser("add", help="add numbers (to a pool, or static with their source)")
    p.add_argument("numbers", nargs="+")
    p.add_argument("--account", type=int)
    p.add_argument("--pool", help="pool name or id")
    p.add_argument("--site", type=int, help="take the forwarding number from this site")
    p.add_argument("--forward-to")
    for f in ("source", "medium", "campaign", "keyword", "placement"):
        p.add_argument(f"--{f}")
    p.set_defaults(func=cmd_numbers_add)
    p = nums.add_parser("import", help="import a CSV (number, forward_to, pool, source, medium, campaign, keyword, placement)")
    p.add_argument("file")
    p.add_argument("--account", type=int)
    p.add_argument("--site", type=int)
    p.add_argument("--forward-to")
    p.set_defaults(func=cmd_numbers_import)
    p = nums.add_parser("list", help="list numbers")
    p.add_argument("--account", type=int)
    p.add_argument("--all", action="store_true", help="include retired numbers")
    p.set_defaults(func=cmd_numbers_list)
    p = nums.add_parser("retire", help="retire a number (its open lease ends)")
    p.add_argument("number_id", type=int)
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_numbers_retire)

    pools = sub.add_parser("pools", help="number pools").add_subparsers(dest="pools_command", required=True)
    p = pools.add_parser("create", help="create a pool")
    p.add_argument("--account", type=int)
    p.add_argument("--site", type=int, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--rule", action="append", default=[], help="key=value[,value]: channel, utm_source, utm_medium, utm_campaign, keyword, referrer_domain (none: all visitors)")
    p.add_argument("--priority", type=int)
    p.add_argument("--hold-seconds", type=int)
    p.add_argument("--cooldown-seconds", type=int)
    p.add_argument("--overflow-number")
    p.set_defaults(func=cmd_pools_create)
    p = pools.add_parser("list", help="list pools")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_pools_list)
    p = pools.add_parser("status", help="pool health: utilisation, peak, exhaustion, recommended size")
    p.add_argument("pool", type=int, nargs="?")
    p.add_argument("--account", type=int)
    p.add_argument("--days", type=float, default=7)
    p.add_argument("--step", type=int, default=3600)
    p.add_argument("--rows", type=int, default=24, help="busiest recent steps to show")
    p.set_defaults(func=cmd_pools_status)
    p = pools.add_parser("simulate", help="replay recorded visits against candidate pool sizes")
    p.add_argument("pool", type=int)
    p.add_argument("--size", type=int, action="append", required=True, help="candidate size (repeat to compare)")
    p.add_argument("--hold-seconds", type=int)
    p.add_argument("--account", type=int)
    p.add_argument("--days", type=float, default=7)
    p.set_defaults(func=cmd_pools_simulate)

    leases = sub.add_parser("leases", help="the lease log").add_subparsers(dest="leases_command", required=True)
    p = leases.add_parser("list", help="recent leases, newest first")
    p.add_argument("--account", type=int)
    p.add_argument("--pool", type=int)
    p.add_argument("--number")
    p.add_argument("--active", action="store_true", help="only leases holding their number now")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_leases_list)

    tel = sub.add_parser("telephony", help="provider secrets for call webhooks").add_subparsers(dest="telephony_command", required=True)
    p = tel.add_parser("add", help="register a provider secret (Twilio auth token, Telnyx public key) or make a PBX signing secret")
    p.add_argument("provider", choices=["twilio", "telnyx", "pbx"])
    p.add_argument("--account-sid", help="Twilio: the AccountSid the token belongs to")
    p.add_argument("--secret", help="Twilio auth token, Telnyx public key (base64); PBX: made for you when absent")
    p.add_argument("--record", action="store_true", help="record forwarded calls (Twilio)")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_telephony_add)
    p = tel.add_parser("revoke", help="revoke a provider credential (deliveries signed with it are refused)")
    p.add_argument("id", type=int)
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_telephony_revoke)
    p = tel.add_parser("list", help="the account's provider credentials (never their secrets)")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_telephony_list)

    calls = sub.add_parser("calls", help="calls").add_subparsers(dest="calls_command", required=True)
    p = calls.add_parser("import", help="import PBX call logs (Asterisk CDR CSV, with or without a header row)")
    p.add_argument("file")
    p.add_argument("--timezone", help="time zone of the CDR times (default: the account's)")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_calls_import)
    p = calls.add_parser("list", help="recent calls, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_calls_list)
    p = calls.add_parser("block", help="block a caller: their calls are rejected and their leads are spam")
    p.add_argument("phone")
    p.add_argument("--reason")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_calls_block)

    leads = sub.add_parser("leads", help="leads").add_subparsers(dest="leads_command", required=True)
    p = leads.add_parser("import-outcomes", help="apply a CRM export (lead_id or phone/email, stage, value, currency, loss_reason, owner, notes, budget/authority/need/timing)")
    p.add_argument("file")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_leads_import_outcomes)

    own = sub.add_parser("owners", help="lead owners (managers) and assignment rules").add_subparsers(dest="owners_command", required=True)
    p = own.add_parser("add", help="add an owner; new leads go round robin among the active owners")
    p.add_argument("name")
    p.add_argument("--email")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_owners_add)
    p = own.add_parser("list", help="owners with their lead counts, and the rules")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_owners_list)
    for verb, active in (("deactivate", False), ("activate", True)):
        p = own.add_parser(verb, help=f"{verb} an owner")
        p.add_argument("name")
        p.add_argument("--account", type=int)
        p.set_defaults(func=cmd_owners_active, active=active)
    p = own.add_parser("rule", help="new leads matching every --when go to OWNER (channel, source, medium, campaign, kind, form_type, region, country)")
    p.add_argument("owner")
    p.add_argument("--when", action="append", required=True, metavar="KEY=VALUE[,VALUE]")
    p.add_argument("--priority", type=int, default=100)
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_owners_rule)

    wh = sub.add_parser("lead-webhooks", help="outbound lead webhooks to a CRM, and their delivery log").add_subparsers(dest="webhooks_command", required=True)
    p = wh.add_parser("add", help="post lead events to URL, signed (prints the secret once)")
    p.add_argument("url")
    p.add_argument("--events", help="comma-separated: lead.created, lead.qualified, lead.stage_changed (default: all)")
    p.add_argument("--description")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_webhooks_add)
    p = wh.add_parser("list", help="the endpoints with their delivery counts")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_webhooks_list)
    p = wh.add_parser("remove", help="stop an endpoint; its pending deliveries are cancelled")
    p.add_argument("id", type=int)
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_webhooks_remove)
    p = wh.add_parser("deliveries", help="an endpoint's delivery log, newest first")
    p.add_argument("id", type=int)
    p.add_argument("--status", choices=["pending", "delivered", "failed", "cancelled"])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_webhooks_deliveries)
    p = wh.add_parser("resend", help="send a delivery again (same body and id)")
    p.add_argument("id", type=int, help="the endpoint")
    p.add_argument("delivery", type=int)
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_webhooks_resend)

    p = sub.add_parser("attribute", help="credit per channel, campaign, keyword… for a period's conversions under attribution models")
    p.add_argument("--model", required=True, help="one or more, comma-separated: first_touch, last_touch, last_non_direct, linear, time_decay, position_based, w_shaped, markov, shapley, lead_creation")
    p.add_argument("--stage", default="mql", choices=["lead", "mql", "sql", "customer"], help="what counts as a conversion (default mql)")
    p.add_argument("--from", dest="since", help="start, ISO 8601 or unix seconds (default: 30 days before --to)")
    p.add_argument("--to", dest="until", help="end (default: now)")
    p.add_argument("--level", default="channel", help="channel, source_medium, source, medium, campaign, keyword, landing_page, tracking_number")
    p.add_argument("--lookback-days", type=int, default=30)
    p.add_argument("--half-life-days", type=float, help="time_decay (default 7)")
    p.add_argument("--first", type=float, help="position_based: the first touch's share (default 0.4)")
    p.add_argument("--last", type=float, help="position_based: the last touch's share (default 0.4)")
    p.add_argument("--order", type=int, help="markov: the chain's order (default 1)")
    p.add_argument("--variant", choices=["simplified", "ordered"], help="shapley (default simplified)")
    p.add_argument("--ci", action="store_true", help="bootstrap intervals for markov and shapley")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--out", help="write to this file instead of the terminal")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_attribute)

    co = sub.add_parser("costs", help="ad spend and bought-lead prices").add_subparsers(dest="costs_command", required=True)
    p = co.add_parser("import", help="import a cost CSV (date, source, medium, campaign, keyword, clicks, impressions, cost, currency); replaces its period for its sources")
    p.add_argument("file")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_costs_import)
    p = co.add_parser("list", help="cost rows of a period")
    p.add_argument("--from", dest="since", help="YYYY-MM-DD (default: 30 days before --to)")
    p.add_argument("--to", dest="until", help="YYYY-MM-DD (default: today)")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_costs_list)
    p = co.add_parser("price", help="set the price of a source's clicks, leads or actions (bought leads)")
    p.add_argument("source")
    p.add_argument("--model", required=True, choices=["per_click", "per_lead", "per_action"])
    p.add_argument("--price", required=True, type=float)
    p.add_argument("--stage", choices=["mql", "sql", "customer"], help="per_action: the stage that is paid for")
    p.add_argument("--medium")
    p.add_argument("--campaign")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_costs_price)

    export_cli.register(sub)
    p = sub.add_parser("report", help="the campaign report (visits, calls, forms, leads, qualified, customers, cost, CPL, ROI, attribution) as HTML, CSV or JSON")
    p.add_argument("--format", choices=["html", "csv", "json"], default="html")
    p.add_argument("--out", help="write to this file instead of the terminal")
    p.add_argument("--from", dest="since", help="first day, YYYY-MM-DD in the account's time zone (default: 29 days before --to)")
    p.add_argument("--to", dest="until", help="last day (default: today)")
    p.add_argument("--level", default="campaign", help="channel, source_medium, source, medium, campaign, keyword, landing_page, tracking_number")
    p.add_argument("--models", help="attribution models side by side (default last_touch,linear,markov; none for none)")
    p.add_argument("--stage", help="what the models credit: lead, mql (default), sql, customer")
    p.add_argument("--lookback-days", type=int)
    p.add_argument("--margin", type=float, help="gross margin share of revenue for ROI (default 1)")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("report-link", help="a read-only link to the HTML report, for a browser")
    p.add_argument("--days", type=int, default=90, help="valid for this many days (0: until revoked; default 90)")
    p.add_argument("--label")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_report_link)

    p = sub.add_parser("report-ops", help="speed to lead per owner and channel, missed calls not called back, loss/spam reasons, source quality, pool health")
    p.add_argument("--from", dest="since")
    p.add_argument("--to", dest="until")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_report_ops)
    p = sub.add_parser("plan", help="what a budget brings, and the budget a number of customers needs (from the paid history, or rates given)")
    p.add_argument("--budget", type=float)
    p.add_argument("--target-customers", type=float)
    p.add_argument("--cpc", type=float)
    p.add_argument("--lead-rate", type=float)
    p.add_argument("--qualified-rate", type=float)
    p.add_argument("--customer-rate", type=float)
    p.add_argument("--from", dest="since", help="history from (default: 89 days before --to)")
    p.add_argument("--to", dest="until")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_plan)

    p = acc.add_parser("retention", help="days to keep recordings, caller numbers and form fields (shows them when no option is given)")
    for kind, what in (("recordings", "call recordings"), ("callers", "caller numbers, after a number's last call"), ("forms", "form fields")):
        p.add_argument(f"--{kind}-days", dest=f"{kind}_days", metavar="DAYS|keep", help=f"keep {what} this many days ('keep': for good)")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_account_retention)
    ret = sub.add_parser("retention", help="the retention purge").add_subparsers(dest="retention_command", required=True)
    p = ret.add_parser("purge", help="anonymise now what each account's retention says is too old (a running server does it hourly)")
    p.add_argument("--account", type=int, help="only this account (default: every account with a setting)")
    p.set_defaults(func=cmd_retention_purge)
    con = sub.add_parser("contacts", help="people").add_subparsers(dest="contacts_command", required=True)
    p = con.add_parser("erase", help="erase a person's personal data from the account (calls, forms, leads, visits, webhook bodies); counts stay")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="read in the account's region")
    who.add_argument("--email")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_contacts_erase)

    sc = sub.add_parser("scoring", help="qualification rules and scores").add_subparsers(dest="scoring_command", required=True)
    p = sc.add_parser("show", help="the active rules and their version")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_scoring_show)
    p = sc.add_parser("set", help="store a rules JSON file as the next version (the active one stays if it does not parse)")
    p.add_argument("file")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_scoring_set)
    p = sc.add_parser("backfill", help="re-score every lead of the account with the active rules")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_scoring_backfill)

    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="demo_command", required=True)
    demo.add_parser("seed", help="create the demo account, site, pool and numbers if the database has none").set_defaults(func=cmd_demo_seed)
    add_simulate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        args.func(config, args)
    except (CliError, ConfigError) as e:
        print(f"calltrack: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
