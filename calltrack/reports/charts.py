"""Charts for the HTML report, drawn with matplotlib as inline SVG. Pure (no files, no clock).

Text stays text (``svg.fonttype = none``): the page's own font shows it and no font is
embedded or fetched; element ids come from a fixed salt so the same figures give the same
bytes. The object-oriented API (a Figure with its own SVG canvas, no pyplot state) is safe on
the compute pool's threads.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import pandas as pd
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#475569")
_RC = {"svg.fonttype": "none", "svg.hashsalt": "calltrack", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def _svg(fig: Figure) -> str:
    FigureCanvasSVG(fig)
    out = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    text = out.getvalue()
    return text[text.index("<svg"):]  # the XML prolog and doctype do not belong inside HTML


def label(text: object, limit: int = 40) -> str:
    """A name as a chart label: shortened, and ``$`` escaped (matplotlib would read a campaign
    called "$5 off $50" as mathematics)."""
    value = str(text)
    value = value if len(value) <= limit else value[: limit - 1] + "…"
    return value.replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), dpi=72)


def _empty(message: str) -> str:
    """A short panel saying there is nothing to draw (instead of empty axes)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(6.5, 0.8)
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _svg(fig)


def funnel_chart(stages: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars, widest at the top, each with its count and share of the one above."""
    with matplotlib.rc_context(_RC):
        fig = _figure(6.5, 0.45 * len(stages) + 0.4)
        ax = fig.add_subplot()
        names = [s for s, _ in stages][::-1]
        counts = [n for _, n in stages][::-1]
        ax.barh(names, counts, color=PALETTE[0])
        top = max(counts) if counts and max(counts) > 0 else 1
        previous = [None, *[n for _, n in stages]][: len(stages)][::-1]
        for y, (n, before) in enumerate(zip(counts, previous, strict=True)):
            share = f"  ({n / before:.0%} of {before:,})" if before else ""
            ax.text(n + top * 0.01, y, f"{n:,}{share}", va="center")
        ax.set_xlim(0, top * 1.45)
        ax.xaxis.set_visible(False)
        ax.spines["bottom"].set_visible(False)
        return _svg(fig)


def model_chart(frame: pd.DataFrame, models: Sequence[str], *, top: int = 8) -> str:
    """Attributed conversions of the top level values, one bar per model."""
    with matplotlib.rc_context(_RC):
        cols = [f"attributed_{m}" for m in models if f"attributed_{m}" in frame.columns]
        data = frame[cols] if cols else pd.DataFrame()
        if not data.empty:
            data = data[data.sum(axis=1) > 0]
            data = data.loc[data.sum(axis=1).sort_values(ascending=False, kind="stable").index].head(top)
        if data.empty:
            return _empty("no attributed conversions in this period")
        fig = _figure(6.5, 0.22 * len(data) * len(cols) + 0.9)
        ax = fig.add_subplot()
        labels = [label(i) for i in data.index][::-1]
        height = 0.8 / len(cols)
        for k, col in enumerate(cols):
            ys = [y + (k - (len(cols) - 1) / 2) * height for y in range(len(labels))]
            ax.barh(ys, data[col].to_numpy()[::-1], height=height, color=PALETTE[k % len(PALETTE)], label=label(col.removeprefix("attributed_")))
        ax.set_yticks(range(len(labels)), labels)
        ax.legend(loc="lower right", frameon=False)
        return _svg(fig)


def series_chart(series: pd.DataFrame, days: Sequence[str], *, top: int = 6) -> str:
    """Leads per day (every day of the period, ``days``) for the channels that brought the
    most (the rest as 'other channels')."""
    with matplotlib.rc_context(_RC):
        if series.empty:
            return _empty("no leads in this period")
        fig = _figure(6.5, 2.6)
        ax = fig.add_subplot()
        table = series["leads"].unstack("channel", fill_value=0).reindex(list(days), fill_value=0)
        order = table.sum().sort_values(ascending=False).index
        keep = list(order[:top])
        if len(order) > top:
            table["other channels"] = table[list(order[top:])].sum(axis=1)
            keep.append("other channels")
        days = list(table.index)
        for k, channel in enumerate(keep):
            ax.plot(range(len(days)), table[channel].to_numpy(), marker="o", markersize=2.5, color=PALETTE[k % len(PALETTE)], label=label(channel))
        step = max(1, len(days) // 8)
        ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]])
        ax.set_ylabel("leads per day")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", frameon=False, ncols=3)
        return _svg(fig)
