"""SR paths from the topology: disjoint where possible, least total latency, latency bound."""

from __future__ import annotations

import pytest

from icpn.topology import Link, Topology, latency_from_km


def topo(*edges: tuple[str, str, float]) -> Topology:
    return Topology(Link(a, b, latency, 100.0) for a, b, latency in edges)


def test_fibre_latency_is_5_us_per_km() -> None:
    assert latency_from_km(3000) == pytest.approx(15.0)  # Shanghai -> Ningxia, one way


def test_disjoint_paths_beat_the_greedy_trap() -> None:
    # The shortest path s-a-b-t uses a-b; removing its links leaves no second path, yet two
    # disjoint paths exist: s-a-t and s-b-t (Suurballe's trap).
    t = topo(("s", "a", 1), ("a", "b", 1), ("b", "t", 1), ("a", "t", 3), ("s", "b", 3))
    paths = t.sr_paths("s", "t", count=2)
    assert {p.nodes for p in paths} == {("s", "a", "t"), ("s", "b", "t")}
    assert paths[0].links.isdisjoint(paths[1].links)


def test_shared_paths_fill_up_when_disjoint_ones_run_out() -> None:
    # one bridge x-y: every path shares it
    t = topo(("s", "x", 1), ("x", "y", 1), ("y", "t", 1), ("s", "w", 2), ("w", "x", 2))
    paths = t.sr_paths("s", "t", count=2)
    assert [p.nodes for p in paths] == [("s", "x", "y", "t"), ("s", "w", "x", "y", "t")]


def test_four_disjoint_paths_through_three_sites() -> None:
    # Shanghai -> Ningxia via Guangzhou: four parallel planes, as in DESIGN.md 6
    edges = []
    for plane in range(4):
        edges += [
            ("sh", f"p{plane}", 1.0 + plane),
            (f"p{plane}", "gz", 3.0),
            ("gz", f"q{plane}", 0.5),
            (f"q{plane}", "nx", 10.0),
        ]
    paths = topo(*edges).sr_paths("sh", "nx", count=4)
    assert len(paths) == 4
    links = [p.links for p in paths]
    assert all(a.isdisjoint(b) for i, a in enumerate(links) for b in links[i + 1 :])
    assert [p.latency_ms for p in paths] == sorted(p.latency_ms for p in paths)


def test_latency_bound_excludes_slow_paths() -> None:
    t = topo(("s", "a", 1), ("a", "t", 1), ("s", "b", 10), ("b", "t", 10))
    assert [p.nodes for p in t.sr_paths("s", "t", count=2, max_latency_ms=5)] == [("s", "a", "t")]
    with pytest.raises(ValueError, match="no path"):
        t.sr_paths("s", "t", count=1, max_latency_ms=1)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="unknown node 'z'"):
        topo(("s", "t", 1)).sr_paths("s", "z", count=1)
    with pytest.raises(ValueError, match="given twice"):
        topo(("s", "t", 1), ("t", "s", 2))
    with pytest.raises(ValueError, match="loops back"):
        Link("s", "s", 1, 1)
