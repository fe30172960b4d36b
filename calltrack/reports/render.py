"""The campaign report as JSON, CSV and one self-contained HTML page (inline CSS, inline SVG
charts, no script, no external font or image). Jinja2 autoescapes every name a visitor or an
ad platform could have typed; only our own SVG is marked safe, and its labels are escaped by
matplotlib's SVG writer."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from calltrack.reports.campaigns import COST_LEVELS, funnel
from calltrack.reports.spreadsheet import frame_to_csv

if TYPE_CHECKING:  # the service renders through this module
    from calltrack.reports.service import CampaignReport

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("calltrack.reports", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)
LEVEL_NAMES = {
    "channel": "channel", "source_medium": "source / medium", "source": "source", "medium": "medium", "campaign": "campaign",
    "keyword": "keyword", "landing_page": "landing page", "tracking_number": "tracking number",
}
STAGE_NAMES = {"lead": "Lead", "mql": "Qualified (MQL)", "sql": "SQL", "customer": "Customer"}


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def fmt_int(v: Any) -> str:
    return "–" if _missing(v) else f"{int(v):,}"


def fmt_num(v: Any) -> str:
    return "–" if _missing(v) else f"{float(v):,.2f}"


def fmt_money(v: Any) -> str:
    return "–" if _missing(v) else f"{float(v):,.2f}"


def fmt_pct(v: Any) -> str:
    return "–" if _missing(v) else f"{float(v) * 100:.1f}%"


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def to_json_bytes(report: CampaignReport) -> bytes:
    return json.dumps(report.to_json(), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def render(report: CampaignReport, fmt: str) -> bytes:
    """The report as ``json``, ``csv`` or ``html`` bytes (run on the compute pool: the charts
    alone take matplotlib a good part of a second)."""
    return to_json_bytes(report) if fmt == "json" else to_csv(report) if fmt == "csv" else to_html(report)


def to_csv(report: CampaignReport) -> bytes:
    """The table, one row per level value, then the totals row."""
    import pandas as pd

    total = pd.DataFrame([report.total]).set_axis(["(total)"])
    total.index.name = report.query.level
    return frame_to_csv(pd.concat([report.rows, total[report.rows.columns]]) if len(report.rows.columns) else report.rows)


def to_html(report: CampaignReport) -> bytes:
    from calltrack.reports import charts  # matplotlib: imported by the first HTML report, not at start-up

    q = report.query
    template = _ENV.get_template("campaigns.html")
    html = template.render(
        account=report.account, first=q.first.isoformat(), last=q.last.isoformat(), level_name=LEVEL_NAMES[q.level],
        total=report.total, rows=list(report.rows.iterrows()), models=list(q.models), alerts=report.alerts,
        funnel=funnel(report.total), funnel_svg=Markup(charts.funnel_chart(funnel(report.total))),
        model_svg=Markup(charts.model_chart(report.rows, q.models)), series_svg=Markup(charts.series_chart(report.series, _days(q.first, q.last))),
        split_costs=q.level in COST_LEVELS, stage_name=STAGE_NAMES[q.stage], lookback_days=q.lookback_days,
        fmt_int=fmt_int, fmt_num=fmt_num, fmt_money=fmt_money, fmt_pct=fmt_pct,
    )
    return html.encode("utf-8")
