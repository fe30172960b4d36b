"""Models by name over prepared journeys: channel credit frames and touch-level credit. Pure.

``attribute`` prepares the journeys and runs one model; ``attribute_many`` prepares them once and
runs several (reports and the benchmark); ``attribute_journeys`` runs a model on journeys already
prepared (or built from aggregated paths with ``from_paths``).

Output: a DataFrame indexed by the level's values (index name = the level column, sorted, every
value seen in ``touches`` present, 0 when it earned nothing) with columns ``conversions`` (credit)
and ``value`` (credit × conversion value). Credits sum to the attributed conversions and value to
their total value. ``attrs`` carries ``model``, ``options``, ``level``, ``lookback_days``,
``conversions`` (attributed), ``value``, ``unattributed`` (conversions with no touch in their
window, left out of the sums) and ``unattributed_value``; Markov adds ``removal_effects``
(per level value), ``conversion_probability`` and ``states``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from calltrack.attribution import heuristics, markov, shapley
from calltrack.attribution.journeys import AttributionError, Journeys, prepare

MODELS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
    "w_shaped",
    "markov",
    "shapley",
    "lead_creation",
)
# Models with a per-touch form (touch_credits): the rules, and Shapley's ordered variant.
TOUCH_LEVEL_MODELS = tuple(m for m in MODELS if m != "markov")

DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "first_touch": {},
    "last_touch": {},
    "last_non_direct": {"direct": "direct"},
    "linear": {},
    "time_decay": {"half_life_days": 7.0},
    "position_based": {"first": 0.4, "last": 0.4},
    "w_shaped": {"first": 0.3, "lead": 0.3, "opportunity": 0.3},
    "markov": {"order": 1},
    "shapley": {"variant": "simplified"},
    "lead_creation": {},
}


def _number(model: str, name: str, value: Any) -> float:
    if isinstance(value, str):  # query-string options arrive as text
        try:
            value = float(value)
        except ValueError:
            raise AttributionError(f"{model}: {name} must be a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise AttributionError(f"{model}: {name} must be a number")
    return float(value)


def check_options(model: object, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's options with defaults filled in; raises AttributionError naming the fault."""
    if not isinstance(model, str) or model not in MODELS:
        raise AttributionError(f"unknown model {str(model)[:60]!r} (known: {', '.join(MODELS)})")
    options = dict(options or {})
    defaults = DEFAULT_OPTIONS[model]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        takes = f"takes {', '.join(defaults)}" if defaults else "takes no options"
        raise AttributionError(f"{model} has no option {unknown[0]!r} ({takes})")
    opts = {**defaults, **options}
    if model == "last_non_direct":
        direct = opts["direct"]
        direct = (direct,) if isinstance(direct, str) else direct
        if not isinstance(direct, (list, tuple)) or not direct or not all(isinstance(d, str) for d in direct):
            raise AttributionError("last_non_direct: direct must be a level value or a list of them")
        opts["direct"] = tuple(direct)
    elif model == "time_decay":
        opts["half_life_days"] = _number(model, "half_life_days", opts["half_life_days"])
        if opts["half_life_days"] <= 0:
            raise AttributionError("time_decay: half_life_days must be > 0")
    elif model in ("position_based", "w_shaped"):
        for k in defaults:
            opts[k] = _number(model, k, opts[k])
            if not 0 <= opts[k] <= 1:
                raise AttributionError(f"{model}: {k} must be between 0 and 1")
        if sum(opts[k] for k in defaults) > 1 + 1e-12:
            raise AttributionError(f"{model}: {' + '.join(defaults)} must not exceed 1")
    elif model == "markov":
        order = opts["order"]
        if isinstance(order, str) and order.strip().isdigit():
            order = int(order)
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= markov.MAX_ORDER:
            raise AttributionError(f"markov: order must be an integer from 1 to {markov.MAX_ORDER}")
        opts["order"] = int(order)
    elif model == "shapley":
        if opts["variant"] not in shapley.VARIANTS:
            raise AttributionError(f"shapley: variant must be one of {', '.join(shapley.VARIANTS)}")
    return opts


_RULES: dict[str, Callable[..., np.ndarray]] = {
    "first_touch": heuristics.first_touch,
    "last_touch": heuristics.last_touch,
    "last_non_direct": heuristics.last_non_direct,
    "linear": heuristics.linear,
    "time_decay": heuristics.time_decay,
    "position_based": heuristics.position_based,
    "w_shaped": heuristics.w_shaped,
    "lead_creation": heuristics.lead_creation,
}


def check_touch_level(model: str, opts: Mapping[str, Any]) -> None:
    """Raise unless the model (with these options) has a per-touch form."""
    if model not in TOUCH_LEVEL_MODELS:
        raise AttributionError(f"{model} credits channels, not touches (touch-level models: {', '.join(TOUCH_LEVEL_MODELS)})")
    if model == "shapley" and opts["variant"] != "ordered":
        raise AttributionError(
            "the simplified Shapley value is defined on channel sets, not touches; use variant='ordered' for touch-level credit"
        )


def slot_weights(j: Journeys, model: str, opts: Mapping[str, Any]) -> np.ndarray:
    """Per-touch weights (each journey sums to 1) of a model that has a touch-level form."""
    check_touch_level(model, opts)
    if model == "shapley":
        return shapley.slot_weights(j)
    return _RULES[model](j, **opts)


def channel_credit(j: Journeys, model: str, opts: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(conversions, value, extra attrs) per level code."""
    c = j.n_channels
    if model == "markov":
        conv, value, result = markov.credit(j, opts["order"])
        extra = {
            "removal_effects": {label: float(x) for label, x in zip(j.labels, result.removal_effects, strict=True)},
            "conversion_probability": result.conversion_probability,
            "states": result.states,
        }
        return conv, value, extra
    if model == "shapley":
        conv, value = shapley.credit(j)
        return conv, value, {}
    w = _RULES[model](j, **opts)
    journey = j.slot_journey
    conv = np.bincount(j.codes, weights=w * j.count[journey], minlength=c)
    value = np.bincount(j.codes, weights=w * j.value[journey], minlength=c)
    return conv, value, {}


def _frame(j: Journeys, model: str, opts: Mapping[str, Any], conv: np.ndarray, value: np.ndarray, extra: dict[str, Any]) -> pd.DataFrame:
    index = pd.Index(list(j.labels), name=j.level)
    out = pd.DataFrame({"conversions": np.asarray(conv, dtype=np.float64), "value": np.asarray(value, dtype=np.float64)}, index=index)
    out.attrs = {
        "model": model,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
        "level": j.level,
        "lookback_days": j.lookback_days,
        "conversions": j.conversions,
        "value": j.total_value,
        "unattributed": j.unattributed,
        "unattributed_value": j.unattributed_value,
        **extra,
    }
    return out


def attribute_journeys(journeys: Journeys, model: str, **options: Any) -> pd.DataFrame:
    """One model over prepared journeys (see the module docstring for the frame)."""
    opts = check_options(model, options)
    return _frame(journeys, model, opts, *channel_credit(journeys, model, opts))


def attribute(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    model: str,
    *,
    lookback_days: float | None = 30,
    level: str = "channel",
    **options: Any,
) -> pd.DataFrame:
    """Credit per level value under ``model``; see ``calltrack.attribution`` for the contract."""
    opts = check_options(model, options)  # before the work, so a typo fails fast
    j = prepare(touches, conversions, lookback_days=lookback_days, level=level)
    return _frame(j, model, opts, *channel_credit(j, model, opts))


def attribute_many(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    models: Iterable[str] = MODELS,
    *,
    lookback_days: float | None = 30,
    level: str = "channel",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Several models over one preparation of the journeys: ``{model: frame}``. ``options`` maps a
    model name to its options."""
    models = list(models)
    options = dict(options or {})
    stray = sorted(set(options) - set(models))
    if stray:
        raise AttributionError(f"options given for {stray[0]!r}, which is not among the models")
    checked = {m: check_options(m, options.get(m)) for m in models}
    j = prepare(touches, conversions, lookback_days=lookback_days, level=level)
    return {m: _frame(j, m, opts, *channel_credit(j, m, opts)) for m, opts in checked.items()}


def touch_credits(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    model: str,
    *,
    lookback_days: float | None = 30,
    level: str = "channel",
    **options: Any,
) -> pd.DataFrame:
    """One row per (conversion, touch in its journey), for drill-down and exports.

    Columns: ``conversion_id``, ``person_id``, ``touch_id`` (the input's, else the touch's row
    position), ``ts`` (UTC), the level column, ``position`` (0 = first touch of the journey),
    ``credit`` (the touch's share of the conversion; each conversion's shares sum to 1) and
    ``value`` (credit × conversion value). Sorted by conversion_id, then position. Markov credits
    channels only and raises AttributionError, as does Shapley's simplified variant (use
    ``variant="ordered"``).
    """
    opts = check_options(model, options)
    check_touch_level(model, opts)
    j = prepare(touches, conversions, lookback_days=lookback_days, level=level)
    w = slot_weights(j, model, opts)
    journey = j.slot_journey
    conv_rows = j.conv_row[journey]
    if "conversion_id" in conversions.columns:
        cid = conversions["conversion_id"].to_numpy()[conv_rows]
        cid_rank = pd.factorize(conversions["conversion_id"], sort=True)[0][conv_rows]
    else:
        cid = conv_rows
        cid_rank = conv_rows
    tid = j.slot_touch_id if j.slot_touch_id is not None else j.slot_row
    out = pd.DataFrame(
        {
            "conversion_id": cid,
            "person_id": conversions["person_id"].to_numpy()[conv_rows],
            "touch_id": tid,
            "ts": pd.to_datetime(j.slot_ts, unit="ns", utc=True),
            level: np.asarray(j.labels, dtype=object)[j.codes] if j.n_channels else np.zeros(0, dtype=object),
            "position": j.slot_pos,
            "credit": w,
            "value": w * j.value[journey],
        }
    )
    out = out.iloc[np.lexsort((j.slot_pos, cid_rank))].reset_index(drop=True)
    out[level] = out[level].astype(str)
    return out
