"""``calltrack export …``: conversions for ad platforms and leads for CRMs.

    calltrack export google-ads --conversion-name "Qualified lead" --stage mql --from 2026-01-01 --to 2026-02-01 --out gclid.csv
    calltrack export enhanced-conversions --conversion-name "Qualified lead" --stage mql --out ec.csv
    calltrack export microsoft-ads --conversion-name "Qualified lead" --stage mql --out msclkid.csv
    calltrack export ga4 --measurement-id G-XXXXXXX --api-secret SECRET --stage lead [--validate | --dry-run]
    calltrack export leads --format csv|json --from 2026-01-01 --out leads.csv

Dates without a time zone are the account's (``--from 2026-01-01`` is midnight there); the
period is [from, to) and defaults to the 30 days before now (GA4: the last 72 hours, all GA4
accepts). Without ``--out`` the file goes to standard output and the summary to standard
error. Rules and formats: calltrack/reports/exports.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from calltrack.config import CalltrackConfig
from calltrack.reports import export_store, exports
from calltrack.reports.exports import ExportError

STAGE_HELP = "lead (created), mql, sql or customer (first reached); default mql"
PERIOD_HELP = "start: 2026-01-31, 2026-01-31T09:00 (the account's time zone unless it ends in Z or an offset) or unix seconds"


def _cli() -> Any:
    # Imported here: calltrack.cli imports this module to build its parser.
    from calltrack import cli

    return cli


def register(sub: Any) -> None:
    """Add ``export`` and its subcommands to the ``calltrack`` parser."""
    ex = sub.add_parser("export", help="conversions for Google Ads, Microsoft Ads and GA4; leads for CRMs").add_subparsers(
        dest="export_command", required=True
    )
    for name, func, platform, what in (
        ("google-ads", cmd_google_ads, "Google Ads", "Google Ads click conversions (gclid/gbraid/wbraid) for a file import"),
        ("enhanced-conversions", cmd_enhanced, "Google Ads", "Google Ads enhanced conversions for leads: hashed email and phone"),
        ("microsoft-ads", cmd_microsoft, "Microsoft Advertising", "Microsoft Advertising offline conversions (msclkid), Bulk API CSV"),
    ):
        p = ex.add_parser(name, help=what)
        p.add_argument("--conversion-name", help=f"(required) the conversion {'goal' if 'Microsoft' in platform else 'action'}'s name in {platform}, exactly")
        _conversion_options(p)
        p.add_argument("--out", help="write the file here (default: standard output)")
        p.set_defaults(func=func)
    p = ex.add_parser("ga4", help="post GA4 Measurement Protocol events (needs a _ga or ga_client_id form field)")
    p.add_argument("--measurement-id", help="(required unless --dry-run) G-XXXXXXX")
    p.add_argument("--api-secret", help="(required unless --dry-run) the stream's Measurement Protocol API secret")
    p.add_argument("--event-name", help="default by stage: generate_lead, qualify_lead (mql, sql), close_convert_lead (customer)")
    p.add_argument("--validate", action="store_true", help="post to /debug/mp/collect: GA4 checks the events and records nothing")
    p.add_argument("--dry-run", action="store_true", help="print the request bodies, send nothing")
    p.add_argument("--base-url", help="default https://www.google-analytics.com (a local server, for tests)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    _conversion_options(p, default_days="the last 72 hours")
    p.set_defaults(func=cmd_ga4)
    p = ex.add_parser("leads", help="the period's leads (not spam) for a CRM, CSV or JSON")
    p.add_argument("--format", default="csv", help="csv (default) or json")
    p.add_argument("--from", dest="since", help=PERIOD_HELP + "; default 30 days before --to")
    p.add_argument("--to", dest="until", help="end (excluded), same forms; default now")
    p.add_argument("--out", help="write the file here (default: standard output)")
    p.add_argument("--account", type=int)
    p.set_defaults(func=cmd_leads)


def _conversion_options(p: argparse.ArgumentParser, default_days: str = "30 days before --to") -> None:
    p.add_argument("--stage", default="mql", help=STAGE_HELP)
    p.add_argument("--from", dest="since", help=PERIOD_HELP + f"; default {default_days}")
    p.add_argument("--to", dest="until", help="end (excluded), same forms; default now")
    p.add_argument("--value", help="one value for every conversion (default: each lead's value, blank when it has none)")
    p.add_argument("--account", type=int)


def _setup(config: CalltrackConfig, args: argparse.Namespace) -> tuple[Any, int, str, str]:
    cli = _cli()
    app = cli._open_app(config)
    account = cli._account(app, args.account)
    tz, currency = app.db.run_sync("export_account", export_store.account_settings_txn, account.id)
    return app, account.id, tz, currency


def _conversions(config: CalltrackConfig, args: argparse.Namespace, *, default_days: int = 30) -> tuple[list[exports.Conversion], str, dict[str, Any]]:
    try:
        stage = exports.read_stage(args.stage)
        value = exports.read_value(args.value)
    except ExportError as e:
        raise _cli().CliError(str(e)) from None
    app, account_id, tz, _ = _setup(config, args)
    try:
        since, until = exports.read_period(args.since, args.until, tz=tz, now=time.time(), default_days=default_days)
    except ExportError as e:
        raise _cli().CliError(str(e)) from None
    found = app.db.run_sync("export_conversions", export_store.conversions_txn, account_id, stage, since, until)
    info = {"stage": stage, "from": exports.iso(since), "to": exports.iso(until), "timezone": tz, "conversions": len(found), "value": value}
    return found, tz, info


def _deliver(args: argparse.Namespace, export: exports.Export, info: dict[str, Any], what: str) -> None:
    text = "\n".join(
        [f"{export.rows} {what} from {info['conversions']} {info['stage']} conversions, {info['from']} to {info['to']}", *exports.describe(export)]
    )
    _emit(args, export.payload, info | export.summary(), text)


def _emit(args: argparse.Namespace, payload: bytes, summary: dict[str, Any], text: str) -> None:
    """The file to --out (and the summary to the terminal), or the file to standard output and
    the summary to standard error."""
    cli = _cli()
    if args.out:
        try:
            Path(args.out).write_bytes(payload)
        except OSError as e:
            raise cli.CliError(f"cannot write {args.out}: {e.strerror}") from None
        cli._print(summary | {"file": args.out}, args.json, f"wrote {args.out}: {text}")
    else:
        sys.stdout.write(payload.decode("utf-8"))
        sys.stdout.flush()
        print(json.dumps(summary, ensure_ascii=False) if args.json else text, file=sys.stderr)


def cmd_google_ads(config: CalltrackConfig, args: argparse.Namespace) -> None:
    try:
        name = exports.read_conversion_name(args.conversion_name, "Google Ads")
    except ExportError as e:
        raise _cli().CliError(str(e)) from None
    found, tz, info = _conversions(config, args)
    _deliver(args, exports.google_ads_csv(found, conversion_name=name, tz=tz, value=info["value"]), info, "Google Ads click conversions")


def cmd_enhanced(config: CalltrackConfig, args: argparse.Namespace) -> None:
    try:
        name = exports.read_conversion_name(args.conversion_name, "Google Ads")
    except ExportError as e:
        raise _cli().CliError(str(e)) from None
    found, tz, info = _conversions(config, args)
    _deliver(args, exports.enhanced_conversions_csv(found, conversion_name=name, tz=tz, value=info["value"]), info, "enhanced conversions")


def cmd_microsoft(config: CalltrackConfig, args: argparse.Namespace) -> None:
    try:
        name = exports.read_conversion_name(args.conversion_name, "Microsoft Advertising")
    except ExportError as e:
        raise _cli().CliError(str(e)) from None
    found, _, info = _conversions(config, args)
    _deliver(args, exports.microsoft_ads_csv(found, conversion_name=name, value=info["value"]), info, "Microsoft Ads offline conversions")


def cmd_ga4(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.reports import ga4

    cli = _cli()
    try:
        if not args.dry_run:
            ga4.check_settings(args.measurement_id, args.api_secret, args.base_url)
        event_name = exports.read_event_name(args.event_name, exports.read_stage(args.stage))
        if not 0 < args.timeout <= 120:
            raise ExportError("--timeout must be between 0 and 120 seconds")
    except ExportError as e:
        raise cli.CliError(str(e)) from None
    found, _, info = _conversions(config, args, default_days=3)
    events, export = exports.ga4_events(found, event_name=event_name, as_of=time.time(), value=info["value"])
    head = [f"{len(events)} GA4 {event_name} events from {info['conversions']} {info['stage']} conversions, {info['from']} to {info['to']}", *exports.describe(export)]
    summary = info | export.summary() | {"event_name": event_name}
    if args.dry_run:
        sys.stdout.write(export.payload.decode("utf-8"))
        print("\n".join([*head, "dry run: nothing sent"]), file=sys.stderr)
        return
    results = ga4.send(
        events, measurement_id=args.measurement_id, api_secret=args.api_secret, validate=args.validate,
        base_url=args.base_url or ga4.GOOGLE, timeout=args.timeout,
    )
    bad = [r for r in results if not r.ok]
    lines = head + [f"{'validated' if args.validate else 'sent'} {len(results) - len(bad)} of {len(results)}" + (" (GA4 recorded nothing: validation only)" if args.validate else "")]
    for r in bad[:50]:
        if r.messages:
            for m in r.messages:
                lines.append(f"  lead {r.lead_id}: {m.get('fieldPath') or '-'}: {m.get('description') or ''} ({m.get('validationCode') or '?'})")
        else:
            lines.append(f"  lead {r.lead_id}: failed ({r.status or 'no answer'}): {r.error}")
    cli._print(summary | {"validate": args.validate, "results": [r.to_json() for r in results]}, args.json, "\n".join(lines))
    if bad:
        raise cli.CliError(f"{len(bad)} of {len(results)} events {'have validation messages' if args.validate else 'were not accepted'}")


def cmd_leads(config: CalltrackConfig, args: argparse.Namespace) -> None:
    cli = _cli()
    fmt = (args.format or "").lower()
    if fmt not in ("csv", "json"):
        raise cli.CliError(f"--format {args.format!r}: csv or json")
    app, account_id, tz, _ = _setup(config, args)
    try:
        since, until = exports.read_period(args.since, args.until, tz=tz, now=time.time())
    except ExportError as e:
        raise cli.CliError(str(e)) from None
    found = app.db.run_sync("export_leads", export_store.leads_txn, account_id, since, until)
    export = exports.leads_csv(found) if fmt == "csv" else exports.leads_json(found, since=since, until=until, tz=tz)
    info = {"format": fmt, "from": exports.iso(since), "to": exports.iso(until), "timezone": tz, "rows": export.rows}
    _emit(args, export.payload, info, f"{export.rows} leads created {info['from']} to {info['to']}")
