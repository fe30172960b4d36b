"""Markov-chain attribution by removal effects, solved exactly as an absorbing chain. Pure.

Every journey is a walk (start) → touch states → (conversion) or (null). Transition counts over
all journeys, converting and not, give a first-order chain on the states; with ``order=k`` a
state is the tuple of the last k level values (shorter at the start of a journey), and removing
a channel removes every state that contains it.

    P(conv)        absorption probability in (conversion) from (start)
    P(conv | −k)   the same when every transition into a state containing k goes to (null)
    RE_k           = 1 − P(conv | −k) / P(conv)
    credit_k       = RE_k / Σ RE × conversions    (value likewise: RE share × total value)

No simulation: absorption probabilities solve (I − Q) h = b, with Q the transient-to-transient
and b the transient-to-conversion probabilities (ChannelAttribution simulates walks instead and
its figures carry sampling noise: 0.2006/0.3997/0.3997 where the exact answer is 0.2/0.4/0.4).

For order 1 every removal comes from one solve: with N = (I − Q)^−1, the chance of ever reaching
k from start is f_k = N[start, k] / N[k, k], and P(conv | −k) = P(conv) − f_k · h_k, so
RE_k = f_k · h_k / P(conv). That is P(the chain visits k | it converts), so RE_k ∈ [0, 1]. Note
what it is *not*: the share of converting journeys that contain k. The fitted chain mixes
journeys, and a conversion path that skips k can exist in the chain though no journey took it
(A>K>B→conv with A>B→null makes start→A→B→conv possible without K). RE_k = 1 holds when k
dominates (conversion) in the transition graph, e.g. every converting journey ends on k.

Higher orders remove a set of states per channel. Small chains: one dense reduced solve per
channel. Large ones: every channel at once by the fixed-point iteration h ← Q h + b (removed
states masked), stopped when the chance that a walk is still unabsorbed is below 1e-15 from every
state, which bounds the error of every probability by that: deterministic, exact to rounding, no
sampling. (A sparse LU of an order-3 chain fills in badly: ~14 s a channel on 20 channels; the
iteration does all 20 in well under a second.) Order 1 with many level values (keywords) uses a
sparse LU for the one-solve formula.

Self-loops (a channel touched twice in a row) are kept as transitions; they do not change any
absorption probability at order 1, since leaving a state keeps its proportions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from calltrack.attribution._scipy import sparse  # imported on first use: scipy costs a second at start-up
from calltrack.attribution._scipy import splu

from calltrack.attribution.journeys import AttributionError, Journeys

MAX_ORDER = 8
# Order 1: up to this many transient states, invert densely with numpy; above, a sparse LU.
DENSE_LIMIT = 1000
# Higher orders: up to this many states, one dense reduced solve per channel; above, all channels
# at once by fixed-point iteration with a proven error bound (a sparse LU of an order-k chain fills
# in badly: order 3 over 20 channels took ~14 s a channel).
REDUCED_DENSE_LIMIT = 150
# The iteration stops when the chance of a walk not yet absorbed is below this from every state,
# which bounds every absorption probability's error by it.
ITERATION_TOL = 1e-15
MAX_ITERATIONS = 20_000
# Dense bincount of transition keys up to this many (from, to) cells; np.unique beyond.
_DENSE_KEYS = 1 << 22


@dataclass(frozen=True)
class Chain:
    """The state space of a fitted chain: ``n`` transient states 0..n−1 are touch states, ``n`` is
    (start), ``n+1`` (conversion), ``n+2`` (null). ``groups[c]`` lists the states that contain
    channel c (for order 1 that is state c alone)."""

    order: int
    n: int
    groups: tuple[np.ndarray, ...]
    slot_state: np.ndarray  # converting slots' states
    null_state: np.ndarray  # non-converting slots' states

    @property
    def width(self) -> int:
        return self.n + 3


@dataclass(frozen=True)
class MarkovResult:
    removal_effects: np.ndarray  # per channel
    conversion_probability: float
    states: int


def chain(j: Journeys, order: int = 1) -> Chain:
    """The states of an order-k chain over the journeys' level values."""
    c = j.n_channels
    if order == 1:
        groups = tuple(np.array([k], dtype=np.int64) for k in range(c))
        return Chain(1, c, groups, j.codes.astype(np.int64), j.null_codes.astype(np.int64))
    base = c + 1
    if base ** order >= 2**62:
        raise AttributionError(f"markov order {order} is too high for {c} level values")
    conv_w = _windows(j.codes, j.offsets, order, base)
    null_w = _windows(j.null_codes, j.null_offsets, order, base)
    states, inverse = np.unique(np.concatenate((conv_w, null_w)), return_inverse=True)
    # Which channels each state holds: its base-(c+1) digits (0 pads the start of a journey).
    pair_state = []
    pair_channel = []
    for m in range(order):  # a loop over tuple positions, not over journeys
        digit = (states // base**m) % base
        has = np.flatnonzero(digit > 0)
        pair_state.append(has)
        pair_channel.append(digit[has] - 1)
    ps = np.concatenate(pair_state)
    pc = np.concatenate(pair_channel)
    key = np.unique(pc * len(states) + ps)
    pc, ps = key // len(states), key % len(states)
    bounds = np.searchsorted(pc, np.arange(c + 1))
    groups = tuple(ps[bounds[k] : bounds[k + 1]] for k in range(c))
    return Chain(order, len(states), groups, inverse[: len(conv_w)], inverse[len(conv_w) :])


def _windows(codes: np.ndarray, offsets: np.ndarray, order: int, base: int) -> np.ndarray:
    """The last ``order`` level values at each slot, as one base-``base`` integer per slot."""
    lengths = np.diff(offsets)
    pos = np.arange(len(codes), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    digits = codes.astype(np.int64) + 1
    out = digits.copy()
    for m in range(1, order):
        shifted = np.zeros_like(digits)
        shifted[m:] = digits[:-m]
        out += np.where(pos >= m, shifted, 0) * base**m
    return out


def _path_keys(states: np.ndarray, offsets: np.ndarray, ch: Chain, outcome: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transition keys (from · width + to) of a group of paths: start→first, each step, last→outcome.
    Steps across two paths get the key −1 (dropped)."""
    w = ch.width
    if len(offsets) < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    first = offsets[:-1]
    last = offsets[1:] - 1
    start_keys = ch.n * w + states[first]
    steps = states[:-1] * w + states[1:]
    steps[last[:-1]] = -1
    end_keys = states[last] * w + outcome
    return start_keys, steps, end_keys


def transition_counts(j: Journeys, ch: Chain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(from, to, count) of every observed transition, counts weighted by the journeys' counts."""
    w = ch.width
    groups = (
        (ch.slot_state, j.offsets, j.count, ch.n + 1),
        (ch.null_state, j.null_offsets, j.null_count, ch.n + 2),
    )
    keys: list[np.ndarray] = []
    weights: list[np.ndarray | None] = []
    for states, offsets, count, outcome in groups:
        s, steps, e = _path_keys(states, offsets, ch, outcome)
        if count is None or np.all(count == 1):
            keys += [s, steps, e]
            weights += [None, None, None]
        else:
            lengths = np.diff(offsets)
            keys += [s, steps, e]
            weights += [count, np.repeat(count, lengths)[:-1], count]
    if w * w <= _DENSE_KEYS:
        total = np.zeros(w * w + 1)
        for k, wt in zip(keys, weights, strict=True):
            # The dropped steps (−1) land in the last, unused cell.
            total += np.bincount(np.where(k < 0, w * w, k), weights=wt, minlength=w * w + 1)
        cells = np.flatnonzero(total[:-1])
        counts = total[cells]
    else:
        allk = np.concatenate(keys)
        allw = np.concatenate([np.ones(len(k)) if wt is None else wt for k, wt in zip(keys, weights, strict=True)])
        keep = allk >= 0
        cells, inverse = np.unique(allk[keep], return_inverse=True)
        counts = np.bincount(inverse, weights=allw[keep], minlength=len(cells))
    return cells // w, cells % w, counts


def _system(ch: Chain, frm: np.ndarray, to: np.ndarray, count: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """(I − Q) over the transient states 0..n (n = start) and b, the one-step conversion chance."""
    n1 = ch.n + 1
    out = np.bincount(frm, weights=count, minlength=n1)
    p = count / out[frm]
    into_touch = to < ch.n
    q = sparse.csr_matrix((p[into_touch], (frm[into_touch], to[into_touch])), shape=(n1, n1))
    b = np.bincount(frm[to == ch.n + 1], weights=p[to == ch.n + 1], minlength=n1)
    return (sparse.identity(n1, format="csr") - q).tocsr(), b


def _solve(a: sparse.csr_matrix, b: np.ndarray) -> np.ndarray:
    if a.shape[0] <= DENSE_LIMIT:
        return np.linalg.solve(a.toarray(), b)
    return splu(a.tocsc()).solve(b)


def removal_effects(j: Journeys, order: int = 1, *, method: str = "auto") -> MarkovResult:
    """Exact removal effects per channel. ``method`` "reduced" forces one reduced solve per
    channel even at order 1 (the tests check both ways agree)."""
    ch = chain(j, order)
    frm, to, count = transition_counts(j, ch)
    return _removal_effects(ch, frm, to, count, method=method)


def _removal_effects(ch: Chain, frm: np.ndarray, to: np.ndarray, count: np.ndarray, *, method: str = "auto") -> MarkovResult:
    c = len(ch.groups)
    if not np.any(to == ch.n + 1):
        return MarkovResult(np.zeros(c), 0.0, ch.n)
    a, b = _system(ch, frm, to, count)
    start = ch.n
    if ch.order == 1 and method == "auto":
        re, p = _order1(a, b, start, c)
        return MarkovResult(re, p, ch.n)
    if a.shape[0] > REDUCED_DENSE_LIMIT and method == "auto":
        solved = _iterate(a, b, start, ch.groups)
        if solved is not None:
            removed, p = solved
            return MarkovResult(1.0 - removed / p, p, ch.n)
    h = _solve(a, b)
    p = float(h[start])
    re = np.zeros(c)
    for k, group in enumerate(ch.groups):  # one reduced solve per channel (not per journey)
        if len(group) == 0:
            continue
        keep = np.ones(a.shape[0], dtype=bool)
        keep[group] = False
        idx = np.flatnonzero(keep)
        h_k = _solve(a[idx][:, idx], b[idx])
        re[k] = 1.0 - h_k[np.searchsorted(idx, start)] / p
    return MarkovResult(re, p, ch.n)


def _iterate(a: sparse.csr_matrix, b: np.ndarray, start: int, groups: tuple[np.ndarray, ...]) -> tuple[np.ndarray, float] | None:
    """Absorption in (conversion) from start, for the full chain and with each channel's states
    removed, all at once: H ← mask ∘ (Q H) + B from H = 0, where column c has the states of c
    masked out (column C is the full chain). After m steps the error of every entry is at most
    max(Q^m 1), the chance of surviving m steps, so stopping below ITERATION_TOL is exact to
    rounding. Self-loops are folded out first (same absorption, faster). None if it does not
    settle within MAX_ITERATIONS (then the caller solves directly)."""
    q = (sparse.identity(a.shape[0], format="csr") - a).tocsr()
    stay = q.diagonal()
    q.setdiag(0.0)
    q.eliminate_zeros()
    leave = np.where(stay < 1, 1.0 - stay, 1.0)
    q = sparse.diags(1.0 / leave) @ q
    b = b / leave
    c = len(groups)
    mask = np.ones((a.shape[0], c + 1))
    for k, group in enumerate(groups):
        mask[group, k] = 0.0
    base = b[:, None] * mask
    h = base.copy()
    alive = q @ np.ones(a.shape[0])
    for _ in range(MAX_ITERATIONS):
        if alive.max() < ITERATION_TOL:
            return h[start, :c], float(h[start, c])
        h = q @ h
        h *= mask
        h += base
        alive = q @ alive
    return None


def _order1(a: sparse.csr_matrix, b: np.ndarray, start: int, c: int) -> tuple[np.ndarray, float]:
    """RE_k = f_k h_k / h_start with f_k = N[start, k] / N[k, k], N = (I − Q)^−1: one factorisation."""
    if a.shape[0] <= DENSE_LIMIT:
        n_inv = np.linalg.inv(a.toarray())
        h = n_inv @ b
        reach = n_inv[start, :c]
        diag = np.diag(n_inv)[:c]
    else:
        lu = splu(a.tocsc())
        h = lu.solve(b)
        e = np.zeros(a.shape[0])
        e[start] = 1.0
        reach = lu.solve(e, trans="T")[:c]  # row `start` of N
        diag = np.ones(c)
        need = np.flatnonzero((reach > 0) & (h[:c] > 0))
        for lo in range(0, len(need), 256):  # N's diagonal where it matters, 256 columns a solve
            cols = need[lo : lo + 256]
            rhs = np.zeros((a.shape[0], len(cols)))
            rhs[cols, np.arange(len(cols))] = 1.0
            diag[cols] = lu.solve(rhs)[cols, np.arange(len(cols))]
    return reach / diag * h[:c] / h[start], float(h[start])


def credit(j: Journeys, order: int = 1) -> tuple[np.ndarray, np.ndarray, MarkovResult]:
    """Conversions and value per channel, by removal-effect share."""
    result = removal_effects(j, order)
    # RE is a probability; clipping only removes rounding (a -1e-17 would print as a negative credit).
    re = np.clip(result.removal_effects, 0.0, 1.0)
    result = MarkovResult(re, result.conversion_probability, result.states)
    total = re.sum()
    share = re / total if total > 0 else np.zeros_like(re)
    return share * j.conversions, share * j.total_value, result
