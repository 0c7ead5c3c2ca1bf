"""Flow-size workloads: the points, sampling that follows the CDF, the analytic mean."""

from __future__ import annotations

import numpy as np
import pytest

from icpn.traffic.workloads import (
    DATA_MINING,
    MSS_BYTES,
    WEB_SEARCH,
    WORKLOADS,
    Workload,
    get_workload,
    mean_flow_size,
    sample_flow_sizes,
)


def test_known_workloads_and_citations() -> None:
    assert set(WORKLOADS) == {"web-search", "data-mining"}
    for w in WORKLOADS.values():
        assert w.citation
        assert w.points[0][1] == 0.0 and w.points[-1][1] == 1.0
    assert "DCTCP" in WEB_SEARCH.citation and "VL2" in DATA_MINING.citation
    with pytest.raises(ValueError, match="known: web-search, data-mining"):
        get_workload("hadoop")


def test_published_shape() -> None:
    # VL2 data mining: half the flows are one packet; the largest ~1 GB.
    assert DATA_MINING.cdf_at(MSS_BYTES) == pytest.approx(0.5)
    assert DATA_MINING.sizes[-1] == 666667 * MSS_BYTES
    # DCTCP web search: 15 % of flows at 6 packets, 30 % above 1 MB (667 packets ~ 0.97 MB).
    assert WEB_SEARCH.cdf_at(6 * MSS_BYTES) == pytest.approx(0.15)
    assert WEB_SEARCH.cdf_at(667 * MSS_BYTES) == pytest.approx(0.70)


def test_analytic_mean_matches_the_literature() -> None:
    # The simulations quote mean flow sizes of 1138 and 5117 packets of 1460 B.
    assert mean_flow_size("web-search") / MSS_BYTES == pytest.approx(1138, rel=0.01)
    assert mean_flow_size(DATA_MINING) / MSS_BYTES == pytest.approx(5117, rel=0.001)


def test_cdf_is_linear_between_points() -> None:
    w = Workload("t", "test", ((10.0, 0.0), (20.0, 0.5), (40.0, 1.0)))
    assert w.cdf_at([5, 10, 15, 20, 30, 40, 50]).tolist() == [0, 0, 0.25, 0.5, 0.75, 1, 1]
    assert mean_flow_size(w) == pytest.approx(0.5 * 15 + 0.5 * 30)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_samples_follow_the_cdf(name: str) -> None:
    w = WORKLOADS[name]
    n = 200_000
    sizes = np.sort(sample_flow_sizes(w, n, np.random.default_rng(7)))
    assert sizes.dtype == np.int64 and sizes.min() >= 1
    assert sizes.min() >= w.sizes[0] - 1 and sizes.max() <= w.sizes[-1] + 1
    # Kolmogorov-Smirnov distance, evaluated on a fine grid and at the CDF's points.
    grid = np.unique(np.concatenate([np.geomspace(w.sizes[0], w.sizes[-1], 4000), w.sizes]))
    empirical = np.searchsorted(sizes, grid, side="right") / n
    ks = float(np.max(np.abs(empirical - w.cdf_at(grid))))
    assert ks < 1.63 / np.sqrt(n)  # the 1 % critical value
    assert sizes.mean() == pytest.approx(mean_flow_size(w), rel=0.05)


def test_sampling_is_deterministic_and_validates() -> None:
    a = sample_flow_sizes("web-search", 1000, np.random.default_rng(3))
    b = sample_flow_sizes("web-search", 1000, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert len(sample_flow_sizes(WEB_SEARCH, 0, np.random.default_rng(3))) == 0
    with pytest.raises(ValueError):
        sample_flow_sizes(WEB_SEARCH, -1, np.random.default_rng(3))
    with pytest.raises(ValueError, match="non-decreasing"):
        Workload("bad", "", ((10.0, 0.0), (5.0, 1.0)))
