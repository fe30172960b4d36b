"""Bootstrap intervals for channel credit: resample journeys, re-run the model. Pure and seeded.

A replicate draws as many journeys as there are (converting and not, with replacement). Drawing
journeys one by one is the same as one multinomial draw of how often each distinct journey (or
aggregated path, weighted by how many journeys it stands for) is taken, so a replicate is a
vector of counts over the prepared journeys: nothing is rebuilt. It is drawn as: how many of the
draws convert (binomial), then which converting and which non-converting journeys (uniform
indices for raw journeys, a multinomial for weighted paths), which is the same distribution.

- Rule-based models and Shapley are sums over converting journeys: the per-journey credit matrix
  (journeys × channels, sparse) is built once and a replicate is one product with its counts.
- Markov re-fits the chain: the transitions of every path are listed once, a replicate's
  transition counts are one weighted bincount, then the exact solve.

Replicates are seeded independently (``SeedSequence(seed).spawn(n)``, not seed+i), so the result
is a function of (data, model, options, n, seed, ci) alone. The interval is the percentile
interval of each channel's credit over the replicates (numpy's linear quantile); ``conversions``
is the credit on the data as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.random import PCG64, Generator, SeedSequence
from calltrack.attribution._scipy import sparse  # imported on first use: scipy costs a second at start-up

from calltrack.attribution import markov
from calltrack.attribution.engine import _RULES, channel_credit, check_options
from calltrack.attribution.journeys import AttributionError, Journeys, prepare
from calltrack.attribution.shapley import slot_weights as shapley_slot_weights

MAX_REPLICATES = 10_000


def _check(n: object, seed: object, ci: object) -> tuple[int, int, float]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= MAX_REPLICATES:
        raise AttributionError(f"bootstrap n must be an integer from 2 to {MAX_REPLICATES}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AttributionError("bootstrap seed must be an integer ≥ 0")
    if isinstance(ci, bool) or not isinstance(ci, (int, float, np.floating)) or not 0 < ci < 1:
        raise AttributionError("bootstrap ci must be between 0 and 1 (e.g. 0.95)")
    return int(n), int(seed), float(ci)


def _journey_credit_matrix(j: Journeys, model: str, opts: dict[str, Any]) -> sparse.csr_matrix:
    """Credit of one conversion on each journey to each channel (journeys × channels)."""
    w = shapley_slot_weights(j) if model == "shapley" else _RULES[model](j, **opts)
    return sparse.csr_matrix((w, (j.slot_journey, j.codes)), shape=(j.n_journeys, j.n_channels))


@dataclass(frozen=True)
class PathTransitions:
    """Every transition of every path (converting paths first, then non-converting ones): its
    cell (an observed (from, to) pair) and its path, so that a replicate's transition counts are
    one weighted bincount."""

    frm: np.ndarray  # per cell
    to: np.ndarray  # per cell
    cell: np.ndarray  # per transition
    path: np.ndarray  # per transition

    def counts(self, path_counts: np.ndarray) -> np.ndarray:
        return np.bincount(self.cell, weights=path_counts[self.path], minlength=len(self.frm))


def path_transitions(j: Journeys, ch: markov.Chain) -> PathTransitions:
    keys: list[np.ndarray] = []
    paths: list[np.ndarray] = []
    first_path = 0
    for states, offsets, outcome in ((ch.slot_state, j.offsets, ch.n + 1), (ch.null_state, j.null_offsets, ch.n + 2)):
        n_paths = len(offsets) - 1
        ids = np.arange(first_path, first_path + n_paths, dtype=np.int64)
        s, steps, e = markov._path_keys(states, offsets, ch, outcome)
        step_paths = np.repeat(ids, np.diff(offsets))[:-1] if n_paths else ids
        keep = steps >= 0
        keys += [s, steps[keep], e]
        paths += [ids, step_paths[keep], ids]
        first_path += n_paths
    allk = np.concatenate(keys)
    if ch.width**2 <= 1 << 22:  # few possible cells (order 1): the key is the cell
        cells = np.flatnonzero(np.bincount(allk, minlength=ch.width**2))
        cell = np.searchsorted(cells, allk)
    else:
        cells, cell = np.unique(allk, return_inverse=True)
    return PathTransitions(cells // ch.width, cells % ch.width, cell, np.concatenate(paths))


def _draw(rng: Generator, weights: np.ndarray | None, size: int, total: int) -> np.ndarray:
    """How often each of ``size`` cells is drawn in ``total`` draws with replacement, the cells
    weighted by ``weights`` (None: one journey each, drawn uniformly)."""
    if weights is None:
        return np.bincount(rng.integers(0, size, total), minlength=size).astype(np.float64)
    return rng.multinomial(total, weights / weights.sum()).astype(np.float64)


def bootstrap_journeys(j: Journeys, model: str, *, n: int = 200, seed: int = 0, ci: float = 0.95, **options: Any) -> pd.DataFrame:
    """Percentile intervals of channel credit over ``n`` resamples of the prepared journeys."""
    opts = check_options(model, options)
    n, seed, ci = _check(n, seed, ci)
    point, _, _ = channel_credit(j, model, opts)
    conv_w = None if np.all(j.count == 1) else j.count
    null_w = None if j.null_count is None or np.all(j.null_count == 1) else j.null_count
    n_conv = float(j.count.sum())
    n_null = float(j.n_null if j.null_count is None else j.null_count.sum())
    if n_conv != round(n_conv) or n_null != round(n_null):
        raise AttributionError("bootstrap needs whole journey counts")
    total = int(round(n_conv + n_null))
    draws = np.zeros((n, j.n_channels))
    if n_conv > 0:
        if model == "markov":
            ch = markov.chain(j, opts["order"])
            transitions = path_transitions(j, ch)
        else:
            credit_matrix = _journey_credit_matrix(j, model, opts).T.tocsr()
        for r, stream in enumerate(SeedSequence(seed).spawn(n)):  # one loop turn per replicate
            rng = Generator(PCG64(stream))  # what default_rng builds; no global random state
            # Drawing `total` journeys from all of them is drawing how many convert (binomial),
            # then which converting and which non-converting ones: the same distribution, and
            # the rule-based models and Shapley need only the converting draws.
            k = int(rng.binomial(total, n_conv / total))
            conv_counts = _draw(rng, conv_w, j.n_journeys, k)
            if model == "markov":
                null_counts = _draw(rng, null_w, j.n_null, total - k)
                cell_counts = transitions.counts(np.concatenate((conv_counts, null_counts)))
                used = cell_counts > 0
                re = markov._removal_effects(ch, transitions.frm[used], transitions.to[used], cell_counts[used]).removal_effects
                draws[r] = re / re.sum() * k if re.sum() > 0 else 0.0
            else:
                draws[r] = credit_matrix @ conv_counts
    lo, hi = np.quantile(draws, [(1 - ci) / 2, 1 - (1 - ci) / 2], axis=0)
    out = pd.DataFrame({"conversions": point, "low": lo, "high": hi}, index=pd.Index(list(j.labels), name=j.level))
    out.attrs = {"model": model, "options": dict(opts), "n": n, "seed": seed, "ci": ci, "level": j.level}
    return out


def bootstrap(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    model: str,
    *,
    n: int = 200,
    seed: int = 0,
    ci: float = 0.95,
    lookback_days: float | None = 30,
    level: str = "channel",
    **options: Any,
) -> pd.DataFrame:
    """Credit per level value with a ``ci`` percentile interval from ``n`` seeded resamples of the
    journeys: columns ``conversions`` (the credit on the data as given), ``low``, ``high``."""
    check_options(model, options)
    _check(n, seed, ci)
    j = prepare(touches, conversions, lookback_days=lookback_days, level=level)
    return bootstrap_journeys(j, model, n=n, seed=seed, ci=ci, **options)
