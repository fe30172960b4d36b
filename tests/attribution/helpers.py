"""Test helpers: journeys written as lists, reference implementations written the slow, obvious way
(brute-force Shapley over coalitions, a Monte-Carlo walk of a fitted Markov chain, a dictionary
Markov chain of any order), and a hypothesis strategy for random journeys."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
from hypothesis import strategies as st

DAY = 86_400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CHANNELS = ("A", "B", "C", "direct")

# A journey: (channels in time order, converted?, value).
Journey = tuple[Sequence[str], bool, float]


def frames(journeys: Iterable[Journey], *, gap: float = 3600.0, after: float = 60.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Touch and conversion frames for journeys, one person each: touches ``gap`` seconds apart
    (unix seconds), the conversion ``after`` seconds after the last touch."""
    rows = []
    conv = []
    touch_id = 0
    for person, (path, converted, value) in enumerate(journeys, start=1):
        base = T0 + person * 10 * DAY  # persons far apart in time; it does not matter, but it is tidy
        for k, ch in enumerate(path):
            touch_id += 1
            rows.append({"touch_id": touch_id, "person_id": person, "ts": base + k * gap, "channel": ch})
        if converted:
            conv.append({"person_id": person, "ts": base + (len(path) - 1) * gap + after, "value": float(value)})
    touches = pd.DataFrame(rows, columns=["touch_id", "person_id", "ts", "channel"])
    conversions = pd.DataFrame(conv, columns=["person_id", "ts", "value"])
    return touches, conversions


def brute_shapley(players: Sequence[str], v: Callable[[frozenset[str]], float]) -> dict[str, float]:
    """φ_j = Σ_{S ⊆ N∖{j}} |S|!(n−|S|−1)!/n! · (v(S∪{j}) − v(S)), by enumeration."""
    n = len(players)
    phi = {}
    for j in players:
        others = [p for p in players if p != j]
        total = 0.0
        for r in range(len(others) + 1):
            for s in combinations(others, r):
                s = frozenset(s)
                total += factorial(len(s)) * factorial(n - len(s) - 1) / factorial(n) * (v(s | {j}) - v(s))
        phi[j] = total
    return phi


def set_game(journeys: Iterable[Journey], *, by_value: bool = False) -> Callable[[frozenset[str]], float]:
    """v(S) = Σ_{T ⊆ S} R(T), R(T) the conversions (or value) of journeys whose channel set is T."""
    r: Counter[frozenset[str]] = Counter()
    for path, converted, value in journeys:
        if converted:
            r[frozenset(path)] += value if by_value else 1.0
    return lambda s: sum(x for t, x in r.items() if t <= s)


def chain_counts(journeys: Iterable[Journey], order: int = 1) -> dict[tuple, Counter]:
    """Transition counts of an order-k chain, states as tuples of the last k channels."""
    counts: dict[tuple, Counter] = {}
    for path, converted, _ in journeys:
        states = [("start",)] + [tuple(path[max(0, i - order + 1) : i + 1]) for i in range(len(path))]
        states.append(("conv",) if converted else ("null",))
        for a, b in zip(states, states[1:], strict=False):
            counts.setdefault(a, Counter())[b] += 1
    return counts


def dict_removal_effects(journeys: Sequence[Journey], order: int = 1) -> dict[str, float]:
    """Removal effects from an explicitly enumerated chain and dense solves (reference)."""
    counts = chain_counts(journeys, order)
    transient = sorted({s for s in counts} | {t for c in counts.values() for t in c if t not in (("conv",), ("null",))})
    index = {s: i for i, s in enumerate(transient)}

    def p_conv(removed: str | None) -> float:
        n = len(transient)
        a = np.eye(n)
        b = np.zeros(n)
        for s, c in counts.items():
            if removed is not None and removed in s:
                continue  # a removed state absorbs into null: its row stays the identity, b = 0
            total = sum(c.values())
            for t, k in c.items():
                if t == ("conv",):
                    b[index[s]] += k / total
                elif t != ("null",):
                    a[index[s], index[t]] -= k / total
        return float(np.linalg.solve(a, b)[index[("start",)]])

    base = p_conv(None)
    channels = sorted({ch for path, _, _ in journeys for ch in path})
    return {ch: 1 - p_conv(ch) / base for ch in channels}


def simulate_removal_effects(journeys: Sequence[Journey], walkers: int, seed: int) -> dict[str, float]:
    """Removal effects by walking the fitted order-1 chain (what ChannelAttribution does)."""
    counts = chain_counts(journeys, 1)
    names = sorted({s for s in counts} | {t for c in counts.values() for t in c})
    index = {s: i for i, s in enumerate(names)}
    n = len(names)
    p = np.zeros((n, n))
    for s, c in counts.items():
        total = sum(c.values())
        for t, k in c.items():
            p[index[s], index[t]] = k / total
    cum = np.cumsum(p, axis=1)
    conv, null, start = index[("conv",)], index[("null",)], index[("start",)]
    rng = np.random.default_rng(seed)

    def rate(removed: str | None) -> float:
        state = np.full(walkers, start)
        done = np.zeros(walkers, dtype=bool)
        converted = np.zeros(walkers, dtype=bool)
        while not done.all():
            live = np.flatnonzero(~done)
            u = rng.random(len(live))
            nxt = (cum[state[live]] < u[:, None]).sum(axis=1)
            nxt = np.minimum(nxt, n - 1)
            if removed is not None:
                nxt = np.where(nxt == index.get((removed,), -1), null, nxt)
            state[live] = nxt
            converted[live] = nxt == conv
            done[live] = (nxt == conv) | (nxt == null)
        return converted.mean()

    base = rate(None)
    channels = sorted({ch for path, _, _ in journeys for ch in path})
    return {ch: 1 - rate(ch) / base for ch in channels}


@st.composite
def journey_lists(draw, *, min_size: int = 1, max_size: int = 12, max_len: int = 6, channels: Sequence[str] = CHANNELS, need_conversion: bool = True) -> list[Journey]:
    """Random journeys over a few channels; at least one converts when ``need_conversion``."""
    path = st.lists(st.sampled_from(channels), min_size=1, max_size=max_len)
    value = st.sampled_from([0.0, 1.0, 2.5, 10.0, 99.99])
    out = draw(st.lists(st.tuples(path, st.booleans(), value), min_size=min_size, max_size=max_size))
    if need_conversion and not any(c for _, c, _ in out):
        p, _, v = out[0]
        out[0] = (p, True, v)
    return out
