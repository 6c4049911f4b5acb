"""Query arrivals: the Poisson process of the paper's open-loop load.

One function, so that the load generator (which sends queries at these times) and the simulator
(which submits them at these virtual times) see the same sequence for the same seed.
"""

from __future__ import annotations

import numpy as np


def arrival_times(rate: float, count: int, seed: int) -> np.ndarray:
    """``count`` Poisson arrival times in seconds from the start, at ``rate`` queries per second."""
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, size=count))
