"""Published data-centre flow-size distributions, as piecewise-linear CDFs.

Each workload is the list of ``(flow size in bytes, cumulative probability)`` points that the
data-centre transport literature simulates with; between points the CDF is linear (which is
how ns-2's ``EmpiricalRandomVariable`` and the simulators derived from it interpolate), so a
flow size is drawn by inverting it: ``size = interp(u, cdf, sizes)`` with ``u ~ U[0, 1)``.

* ``web-search``: the query/response traffic of a production web-search cluster measured in
  Alizadeh et al., "Data Center TCP (DCTCP)", SIGCOMM 2010 (section 2.2, Fig. 4). The points
  are those pFabric (Alizadeh et al., "pFabric: Minimal Near-Optimal Datacenter Transport",
  SIGCOMM 2013, section 5, "web search workload") drew from, in ns-2 ``CDF_dctcp.tcl`` as
  packets of 1460 B (MSS), and that later simulations (PIAS, NSDI 2015; HPCC, SIGCOMM 2019
  ``traffic_gen/WebSearch_distribution.txt``, there rounded to decimal bytes) reuse.
  About 95 % of the bytes are in the 30 % of flows above 1 MB.
* ``data-mining``: the data-mining cluster measured in Greenberg et al., "VL2: A Scalable and
  Flexible Data Center Network", SIGCOMM 2009 (section 3.1, Fig. 2), again as the points of
  pFabric's ``CDF_vl2.tcl`` (1460 B packets): half of the flows are a single packet, while
  flows above 100 MB carry most bytes. Mean ~5117 packets, the figure those simulations use.

Sizes are in bytes (packets x 1460). The analytic mean of a piecewise-linear CDF is the sum
over its segments of (segment probability x mid-point of the segment's sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: The payload per packet the published point lists count in (TCP MSS on 1500 B Ethernet).
MSS_BYTES = 1460


@dataclass(frozen=True)
class Workload:
    """A flow-size distribution: ``points`` are (size in bytes, CDF) pairs, both
    non-decreasing, the first CDF value 0 and the last 1."""

    name: str
    citation: str
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError(f"workload {self.name}: need at least two CDF points")
        sizes = np.array([p[0] for p in self.points], dtype=np.float64)
        cdf = np.array([p[1] for p in self.points], dtype=np.float64)
        if np.any(np.diff(sizes) < 0) or np.any(np.diff(cdf) < 0):
            raise ValueError(f"workload {self.name}: sizes and CDF must be non-decreasing")
        if cdf[0] != 0.0 or cdf[-1] != 1.0 or sizes[0] <= 0:
            raise ValueError(f"workload {self.name}: CDF must go from 0 to 1, sizes > 0")

    @property
    def sizes(self) -> npt.NDArray[np.float64]:
        return np.array([p[0] for p in self.points], dtype=np.float64)

    @property
    def cdf(self) -> npt.NDArray[np.float64]:
        return np.array([p[1] for p in self.points], dtype=np.float64)

    def cdf_at(self, size_bytes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """P(flow size <= size_bytes) under the piecewise-linear CDF."""
        sizes, cdf = self.sizes, self.cdf
        x = np.asarray(size_bytes, dtype=np.float64)
        i = np.searchsorted(sizes, x, side="right")  # sizes[i - 1] <= x < sizes[i]
        inside = (i > 0) & (i < len(sizes))
        lo = np.clip(i - 1, 0, len(sizes) - 2)
        hi = lo + 1
        span = np.where(inside, sizes[hi] - sizes[lo], 1.0)
        linear = cdf[lo] + (x - sizes[lo]) / span * (cdf[hi] - cdf[lo])
        result: npt.NDArray[np.float64] = np.where(i == 0, 0.0, np.where(inside, linear, 1.0))
        return result


def _packets(points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    return tuple((packets * MSS_BYTES, cdf) for packets, cdf in points)


WEB_SEARCH = Workload(
    name="web-search",
    citation=(
        "Alizadeh et al., Data Center TCP (DCTCP), SIGCOMM 2010, Fig. 4 (web search); "
        "points as simulated in pFabric (SIGCOMM 2013) ns-2 CDF_dctcp.tcl, 1460 B packets"
    ),
    points=_packets(
        [
            (6, 0.0),
            (6, 0.15),
            (13, 0.20),
            (19, 0.30),
            (33, 0.40),
            (53, 0.53),
            (133, 0.60),
            (667, 0.70),
            (1333, 0.80),
            (3333, 0.90),
            (6667, 0.97),
            (20000, 1.0),
        ]
    ),
)

DATA_MINING = Workload(
    name="data-mining",
    citation=(
        "Greenberg et al., VL2: A Scalable and Flexible Data Center Network, SIGCOMM 2009, "
        "Fig. 2 (data mining); points as simulated in pFabric (SIGCOMM 2013) ns-2 "
        "CDF_vl2.tcl, 1460 B packets"
    ),
    points=_packets(
        [
            (1, 0.0),
            (1, 0.5),
            (2, 0.6),
            (3, 0.7),
            (7, 0.8),
            (267, 0.9),
            (2107, 0.95),
            (66667, 0.99),
            (666667, 1.0),
        ]
    ),
)

WORKLOADS: dict[str, Workload] = {w.name: w for w in (WEB_SEARCH, DATA_MINING)}


def get_workload(name: str) -> Workload:
    """The workload called ``name``; a ValueError listing the known names otherwise."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}") from None


def _resolve(workload: Workload | str) -> Workload:
    return workload if isinstance(workload, Workload) else get_workload(workload)


def sample_flow_sizes(
    workload: Workload | str, n: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """``n`` flow sizes in bytes (at least 1), drawn by inverting the piecewise-linear CDF."""
    w = _resolve(workload)
    if n < 0:
        raise ValueError(f"cannot draw {n} flow sizes")
    u = rng.random(n)
    # np.interp wants strictly increasing x: where the CDF jumps (a repeated size) or is
    # flat, nudge the CDF values apart by a negligible amount.
    cdf = w.cdf + np.arange(len(w.points)) * 1e-12
    sizes = np.interp(u, cdf, w.sizes)
    return np.maximum(np.rint(sizes), 1).astype(np.int64)


def mean_flow_size(workload: Workload | str) -> float:
    """Analytic mean flow size in bytes of the piecewise-linear CDF: the sum over segments
    of (segment probability x mid-point of its sizes)."""
    w = _resolve(workload)
    sizes, cdf = w.sizes, w.cdf
    return float(np.sum(np.diff(cdf) * (sizes[1:] + sizes[:-1]) / 2))
