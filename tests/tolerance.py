"""How far two float32 runs of one computation, done two ways (seeds batched or alone), may part.

Each gradient update rounds its sums in another order when E seeds' matrices are multiplied as one batch
(other kernels, other blockings), which moves every parameter by a few units of float32's roundoff u = 2^-24
of its size. Every later update carries that difference forward and adds its own, so the gap grows about
linearly in the number n of the agent's gradient updates. Measured over the six online learners at smoke
scale (300 environment steps: n = 200 SAC updates, or 12 PPO minibatch steps; on a 2-core AMD EPYC with
AVX-512): at most 4.4 n u (PEBBLE and MRN, the update losses; 1.9e-5 relative in the Q-error). The
tolerance is 16 n u: 3.6x the largest gap measured, and below the gap made by changing one seed's initial
weights by a factor 1 + 1e-3 (tests/test_online_train.py checks that such a change fails).
"""

from __future__ import annotations

import numpy as np

FLOAT32_ROUNDOFF = 2.0**-24
GROWTH = 16.0


def run_tolerance(updates: int) -> float:
    """The largest scaled gap (``scaled_gap``) allowed after ``updates`` sequential updates: 16 n u."""
    return GROWTH * max(updates, 1) * FLOAT32_ROUNDOFF


def scaled_gap(actual: np.ndarray, expected: np.ndarray, floor: np.ndarray | float = 0.0) -> float:
    """The largest ``|actual - expected|`` of each column over the largest ``|expected|`` of that column, or
    over ``floor`` (per column) where that is larger: rounding is relative to the size of the numbers a
    value is summed from, which is that of the column unless its terms cancel (e.g. a mean of normalised
    advantages). NaN where both are NaN counts as equal, NaN in one only as an infinite gap."""
    actual, expected = (x[:, None] if x.ndim == 1 else x for x in
                        (np.asarray(actual, np.float64), np.asarray(expected, np.float64)))
    if actual.shape != expected.shape:
        raise ValueError(f"shapes differ: {actual.shape} and {expected.shape}")
    both_nan = np.isnan(actual) & np.isnan(expected)
    gap = np.where(both_nan, 0.0, np.abs(actual - expected))
    gap = np.where(np.isnan(gap), np.inf, gap)
    size = np.max(np.where(np.isnan(expected), 0.0, np.abs(expected)), axis=0, initial=0.0)
    scale = np.maximum(size, floor)
    return float(np.max(gap / np.where(scale > 0, scale, 1.0), initial=0.0))
