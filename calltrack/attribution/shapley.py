"""Shapley attribution, Zhao, Mahboobi & Bagheri (2018), in closed form. Pure.

With the characteristic function v(S) = Σ_{T⊆S} R(T), where R(T) is the conversions (or value)
of the journeys whose *set* of channels is exactly T, the Shapley value is

    φ_j = Σ_{T∋j} R(T) / |T|

(arXiv:1804.05327; eeghor/mta uses the same v). It costs one pass over the journeys instead of
2^channels coalitions, satisfies efficiency (Σφ = v(N) = the conversions), symmetry and the dummy
axiom, and equals brute-force Shapley under that v (tests/attribution check both).

Variants:

- ``simplified``: the formula above, per channel set (a journey's order and repeats play no
  part).
- ``ordered``: the same share of each channel, split evenly across its occurrences in the
  journey (1 / (|T| · occurrences) per touch), so it can be reported per touch and per position.
  Channel totals are therefore those of ``simplified``; the difference shows at touch level.

Only converting journeys enter R(T): the non-converting ones have R = 0 under this v.
"""

from __future__ import annotations

import numpy as np

from calltrack.attribution.journeys import Journeys

VARIANTS = ("simplified", "ordered")


def slot_weights(j: Journeys) -> np.ndarray:
    """1 / (|T_j| · occurrences of the slot's channel in journey j), per slot; each journey sums to 1."""
    if len(j.codes) == 0:
        return np.zeros(0)
    pair = j.slot_journey * j.n_channels + j.codes
    # Slots are grouped by journey, so unique pairs come out journey by journey.
    uniq, inverse, occurrences = np.unique(pair, return_inverse=True, return_counts=True)
    set_size = np.bincount(uniq // j.n_channels, minlength=j.n_journeys)
    return 1.0 / (set_size[j.slot_journey] * occurrences[inverse])


def channel_shares(j: Journeys) -> tuple[np.ndarray, np.ndarray]:
    """(journey · channels + channel, 1/|T|) of every distinct channel of every journey, journey-major."""
    pair = np.sort(j.slot_journey * j.n_channels + j.codes)
    if len(pair):
        pair = pair[np.concatenate(([True], pair[1:] != pair[:-1]))]
    journey = pair // j.n_channels
    set_size = np.bincount(journey, minlength=j.n_journeys)
    return pair, 1.0 / set_size[journey]


def credit(j: Journeys) -> tuple[np.ndarray, np.ndarray]:
    """φ per channel for conversions and for value."""
    pair, share = channel_shares(j)
    journey = pair // j.n_channels
    channel = pair % j.n_channels
    conv = np.bincount(channel, weights=share * j.count[journey], minlength=j.n_channels)
    value = np.bincount(channel, weights=share * j.value[journey], minlength=j.n_channels)
    return conv, value
