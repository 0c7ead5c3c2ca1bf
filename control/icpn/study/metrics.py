"""Load-balance figures and the fluid model of the bundle.

Fluid model (per path, per measurement window of length dt): the path takes ``offered``
bytes, serves up to ``capacity x dt`` and keeps up to ``buffer`` bytes queued; what does not
fit in the queue is dropped. With q the queue at the start of the window::

    backlog   = q + offered
    served    = min(backlog, capacity x dt)      (delivered: goodput)
    q'        = min(backlog - served, buffer)
    dropped   = backlog - served - q'

Offered traffic is open-loop (the senders do not slow down): a congestion-controlled sender
would send less instead of losing packets, which leaves the delivered bytes the same, so the
goodput figures hold either way; drops then stand for the throughput the imbalance costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def jain_index(values: npt.ArrayLike) -> float:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all equal, 1/n when one has
    everything (Jain, Chiu and Hawe, DEC-TR-301, 1984). All zero counts as fair."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("Jain's index of nothing")
    if np.any(x < 0):
        raise ValueError("Jain's index needs non-negative values")
    squares = float(np.sum(x * x))
    return 1.0 if squares == 0 else float(np.sum(x) ** 2 / (x.size * squares))


def busiest_over_mean(values: npt.ArrayLike) -> float:
    """max / mean: 1 when perfectly balanced, n when one member carries everything."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("busiest/mean of nothing")
    mean = float(x.mean())
    return 1.0 if mean == 0 else float(x.max() / mean)


@dataclass(frozen=True)
class FluidResult:
    delivered: F64  # (windows, paths) bytes
    dropped: F64  # (windows, paths) bytes
    queued: F64  # (windows, paths) bytes at the end of each window


def fluid(offered: F64, capacity_bytes_per_window: F64, buffer_bytes: F64) -> FluidResult:
    """Run the fluid model over (windows, paths) offered bytes."""
    windows, paths = offered.shape
    delivered = np.zeros((windows, paths))
    dropped = np.zeros((windows, paths))
    queued = np.zeros((windows, paths))
    q = np.zeros(paths)
    for w in range(windows):
        backlog = q + offered[w]
        served = np.minimum(backlog, capacity_bytes_per_window)
        q = np.minimum(backlog - served, buffer_bytes)
        delivered[w] = served
        dropped[w] = backlog - served - q
        queued[w] = q
    return FluidResult(delivered, dropped, queued)


def percentile(values: npt.ArrayLike, q: float) -> float:
    x = np.asarray(values, dtype=np.float64)
    return float(np.percentile(x, q)) if x.size else float("nan")
