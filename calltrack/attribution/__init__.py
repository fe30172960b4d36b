"""Attribution: which channels (campaigns, keywords, numbers…) earn the conversions. Pure pandas/numpy.

The analyst's API (DESIGN.md, "Interfaces")::

    from calltrack.attribution import attribute
    attribute(touches, conversions, "markov", lookback_days=30, level="channel")

``touches``: ``person_id``, ``ts`` (UTC datetimes or unix seconds) and the level column
(``channel`` by default; any column: ``source_medium``, ``campaign``, ``keyword``…), optionally
``touch_id``. ``conversions``: ``person_id``, ``ts``, ``value``, optionally ``conversion_id``,
``lead_ts``, ``lead_touch_id``, ``opportunity_ts``. Persons in ``touches`` without a conversion
are the non-converting journeys.

Models (``MODELS``) and options:

=================  ==========================================================================
first_touch        —
last_touch         —
last_non_direct    ``direct="direct"`` (a level value, or a list of them, that counts as direct)
linear             — (per touch: a channel touched k of n times gets k/n)
time_decay         ``half_life_days=7`` (age measured back from the conversion)
position_based     ``first=0.4, last=0.4`` (the rest evenly over the middle; n=2 → 0.5/0.5)
w_shaped           ``first=0.3, lead=0.3, opportunity=0.3`` (the rest over the other touches)
markov             ``order=1`` (exact absorbing-chain removal effects)
shapley            ``variant="simplified" | "ordered"`` (Zhao et al. closed form)
lead_creation      — (all credit to the touch that created the lead)
=================  ==========================================================================

Functions:

- ``attribute(touches, conversions, model, *, lookback_days=30, level="channel", **options)``
  → DataFrame indexed by level value: ``conversions``, ``value``; ``attrs["unattributed"]``
  counts conversions with no touch in their window (left out of the sums).
- ``attribute_many(touches, conversions, models=MODELS, *, lookback_days, level, options)``
  → ``{model: frame}`` from one preparation of the journeys.
- ``touch_credits(touches, conversions, model, …)`` → one row per (conversion, touch).
- ``bootstrap(touches, conversions, model, *, n=200, seed=0, ci=0.95, …)`` → ``conversions``,
  ``low``, ``high`` per level value.
- ``prepare(…)`` → ``Journeys``; ``from_paths(frame)`` → ``Journeys`` from aggregated paths;
  ``attribute_journeys(journeys, model, **options)``; ``bootstrap_journeys(journeys, model, …)``.

Bad input raises ``AttributionError`` (a ValueError) whose message names the fault.
The rules for journeys, milestones and ties are in ``journeys.py`` and ``heuristics.py``.
"""

from __future__ import annotations

from calltrack.attribution.resampling import bootstrap, bootstrap_journeys
from calltrack.attribution.engine import (
    DEFAULT_OPTIONS,
    MODELS,
    TOUCH_LEVEL_MODELS,
    attribute,
    attribute_journeys,
    attribute_many,
    check_options,
    touch_credits,
)
from calltrack.attribution.journeys import NONE_LABEL, AttributionError, Journeys, from_paths, prepare

__all__ = [
    "DEFAULT_OPTIONS",
    "MODELS",
    "NONE_LABEL",
    "TOUCH_LEVEL_MODELS",
    "AttributionError",
    "Journeys",
    "attribute",
    "attribute_journeys",
    "attribute_many",
    "bootstrap",
    "bootstrap_journeys",
    "check_options",
    "from_paths",
    "prepare",
    "touch_credits",
]
