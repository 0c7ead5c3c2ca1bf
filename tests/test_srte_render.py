"""SR-TE over any path (issue 16, part 1): the renderer encodes each computed path as the
shortest SID list that makes a packet follow it exactly. Each list is checked by walking a
packet through the rendered entries (my_sid, routes), as the switches would forward it: the
hops must be the path's, with no ECMP choice anywhere on the way."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import finsy as fy
import pytest

from icpn.constants import MAX_ENCAP_SEGMENTS
from icpn.controller.render import SwitchConfig, adjacency_sid, load_and_render
from icpn.intent import Intent, IntentError
from tests.test_controller import INTENT

MAX_WALK = 64


def switch(name: str, i: int, *, decap: bool = False) -> str:
    extra = f", decap_sid: 'fc00:{i}::d6'" if decap else ""
    return (
        f"  {name}: {{grpc: '127.0.0.1:{i}', router_mac: '00:00:00:00:aa:{i:02x}', "
        f"sid: 'fc00:{i}::1', ioam_node_id: {i}{extra}}}\n"
    )


def intent_text(links: Sequence[tuple[str, str, int | None, float]], policy: str, ends: int) -> str:
    """Switches s1..s<ends> (the last decapsulates); links (a:port, b:port, metric, ms)."""
    text = "switches:\n" + "".join(switch(f"s{i}", i, decap=i == ends) for i in range(1, ends + 1))
    text += "links:\n"
    for a, b, metric, ms in links:
        cost = f", metric: {metric}" if metric else ""
        text += f"  - {{a: '{a}', b: '{b}', latency_ms: {ms}, capacity_gbps: 10{cost}}}\n"
    return text + f"sr_policies:\n  - {policy}\n"


def render(tmp_path: Path, text: str) -> tuple[Intent, dict[str, SwitchConfig]]:
    path = tmp_path / "intent.yaml"
    path.write_text(text)
    return load_and_render(path)


def lists_of(config: SwitchConfig) -> list[tuple[tuple[str, ...], bool]]:
    """(segments, reduced) of each list of the switch's first policy."""
    return [(sl.segments, sl.reduced) for sl in config.policies[0].lists]


def _table(config: SwitchConfig, name: str) -> list[Any]:
    return [e for e in config.entities if isinstance(e, fy.P4TableEntry) and e.table_id == name]


def _lookup(entries: list[Any], address: str) -> Any | None:
    """The longest-prefix entry matching ``address`` (key ``ipv6_dst``)."""
    best, best_len = None, -1
    for entry in entries:
        network = ipaddress.IPv6Network(entry.match["ipv6_dst"], strict=False)
        if ipaddress.IPv6Address(address) in network and network.prefixlen > best_len:
            best, best_len = entry, network.prefixlen
    return best


def walk(
    intent: Intent, configs: dict[str, SwitchConfig], headend: str, sids: tuple[str, ...]
) -> list[str]:
    """The switches a packet encapsulated at ``headend`` with ``sids`` visits, until a
    switch decapsulates it; fails on a missing route, a drop or an ECMP choice."""
    neighbour: dict[tuple[str, int], str] = {}
    for link in intent.links:
        a, _, pa = link.a.partition(":")
        b, _, pb = link.b.partition(":")
        neighbour[a, int(pa)], neighbour[b, int(pb)] = b, a
    at, dst, rest, arrived = headend, sids[0], list(sids[1:]), False
    hops = [at]
    for _ in range(MAX_WALK):
        port = None
        if arrived:  # my_sid sees the packet as it arrived
            local = _lookup(_table(configs[at], "my_sid"), dst)
            if local is not None:
                action = local.action.name
                if action == "end_dt6":
                    assert not rest, f"{at} decapsulates with segments left {rest}"
                    return hops
                assert action in ("end", "end_x"), action
                assert rest, f"{at}: {action} with no segment left"
                dst = rest.pop(0)
                if action == "end_x":
                    port = local.action.args["port"]
        if port is None:
            route = _lookup(_table(configs[at], "routing_v6"), dst)
            assert route is not None, f"{at} has no route to {dst}"
            members = route.action.action_set
            assert len(members) == 1, f"{at} splits traffic to {dst} over {len(members)} hops"
            port = members[0][1].args["port"]
        at, arrived = neighbour[at, port], True
        hops.append(at)
    raise AssertionError(f"no decapsulation within {MAX_WALK} hops: {hops}")


def check_every_list_follows_its_path(intent: Intent, configs: dict[str, SwitchConfig]) -> int:
    topology = intent.topology()
    checked = 0
    for policy in intent.sr_policies:
        paths = topology.sr_paths(
            policy.headend,
            policy.endpoint,
            count=policy.paths,
            max_latency_ms=policy.max_latency_ms,
        )
        (rendered,) = [
            p
            for p in configs[policy.headend].policies
            if p.sr_policy_id == 1 + intent.sr_policies.index(policy)
        ]
        for path, segment_list in zip(paths, rendered.lists, strict=True):
            assert walk(intent, configs, policy.headend, segment_list.segments) == list(path.nodes)
            checked += 1
    return checked


# s1 - s2 - s4 is what routing takes (metric 2, 11 ms); s1 - s3 - s2 - s4 is 3 ms. s3 routes
# to s2 via s1 (metric 6 < 10), so its link to s2 takes an End.X.
DETOUR = [
    ("s1:1", "s2:1", 1, 10.0),
    ("s2:2", "s4:1", 1, 1.0),
    ("s1:2", "s3:1", 5, 1.0),
    ("s3:2", "s2:3", 10, 1.0),
]


def test_a_latency_bound_that_excludes_the_routed_path_takes_an_end_x(tmp_path: Path) -> None:
    text = intent_text(DETOUR, "{name: fast, headend: s1, endpoint: s4, max_latency_ms: 5}", 4)
    intent, configs = render(tmp_path, text)
    # routing's s1-s2-s4 is 11 ms, above the bound: the policy goes s1-s3-s2-s4
    assert [p.nodes for p in intent.topology().sr_paths("s1", "s4", count=1, max_latency_ms=5)] == [
        ("s1", "s3", "s2", "s4")
    ]
    # s1 routes to s3 directly (metric 5 < 11): End.X of s3 towards s2 (its port 2), then
    # s2 routes to s4 directly: two segments
    assert lists_of(configs["s1"]) == [((adjacency_sid("fc00:3::1", 2), "fc00:4::d6"), False)]
    assert check_every_list_follows_its_path(intent, configs) == 1


def test_node_sids_where_routing_agrees(tmp_path: Path) -> None:
    # the same shape with metric 1 everywhere: routing still takes s1-s2-s4 (metric 2), but
    # s1 routes to s3 directly and s3 to s4 through s2: s3's node SID steers the detour
    links = [(a, b, 1, ms) for a, b, _, ms in DETOUR]
    text = intent_text(links, "{name: fast, headend: s1, endpoint: s4, max_latency_ms: 5}", 4)
    intent, configs = render(tmp_path, text)
    assert lists_of(configs["s1"]) == [(("fc00:3::1", "fc00:4::d6"), False)]
    check_every_list_follows_its_path(intent, configs)


def test_a_first_hop_routing_does_not_take(tmp_path: Path) -> None:
    # s3-s2 metric 1, s1-s3 metric 5: s1 routes to s3 through s2 (metric 2); its own
    # adjacency SID towards s3 (port 2), which s3 ends, then s3 routes to s4 through s2
    links = [*DETOUR[:3], ("s3:2", "s2:3", 1, 1.0)]
    text = intent_text(links, "{name: fast, headend: s1, endpoint: s4, max_latency_ms: 5}", 4)
    intent, configs = render(tmp_path, text)
    assert lists_of(configs["s1"]) == [((adjacency_sid("fc00:1::1", 2), "fc00:4::d6"), False)]
    check_every_list_follows_its_path(intent, configs)


def test_a_first_and_last_hop_routing_never_takes(tmp_path: Path) -> None:
    """The direct sh1-nx1 link is longer than both planes: no route takes it, from either
    end. sh1 routes its own adjacency SID out of that link, and nx1's entry SID from it
    decapsulates: one segment."""
    text = INTENT.replace("paths: 2}", "paths: 3}")
    intent, configs = render(tmp_path, text)
    lists = lists_of(configs["sh1"])
    assert lists[2] == (("fc00:3::d003",), False)  # nx1's port 3 is the link to sh1
    assert check_every_list_follows_its_path(intent, configs) == 3


def test_a_first_hop_routing_never_takes_then_a_node_sid(tmp_path: Path) -> None:
    # s1-s2 is long (metric 10): s1 routes to s2 via s3. The policy's second disjoint path
    # s1-s2-s4 starts with s1's adjacency SID, which s2 ends.
    links = [
        ("s1:1", "s2:1", 10, 1.0),
        ("s1:2", "s3:1", 1, 1.0),
        ("s3:2", "s2:2", 1, 1.0),
        ("s2:3", "s4:1", 1, 1.0),
        ("s3:3", "s4:2", 1, 1.0),
    ]
    text = intent_text(links, "{name: two, headend: s1, endpoint: s4, paths: 2}", 4)
    intent, configs = render(tmp_path, text)
    assert check_every_list_follows_its_path(intent, configs) == 2
    segments = {sl[0] for sl in lists_of(configs["s1"])}
    assert (adjacency_sid("fc00:1::1", 1), "fc00:4::d6") in segments


def test_every_switch_gets_end_x_for_its_adjacencies(tmp_path: Path) -> None:
    intent, configs = render(tmp_path, INTENT)
    for link in intent.links:
        for end, other in ((link.a, link.b), (link.b, link.a)):
            name, _, port = end.partition(":")
            sid = adjacency_sid(intent.switches[name].sid, int(port))
            (entry,) = [
                e for e in _table(configs[name], "my_sid") if e.match["ipv6_dst"] == f"{sid}/128"
            ]
            assert entry.action.name == "end_x"
            assert entry.action.args["port"] == int(port)
            assert entry.action.args["dmac"] == intent.switches[other.partition(":")[0]].router_mac


def chain(hops: int, *, reduced: bool = False) -> str:
    """A line s1..s<hops+1> routing never follows: every link has a metric-1 shortcut
    through a hub (s0), so each hop needs a segment of its own."""
    n = hops + 1
    links = [(f"s{i}:1", f"s{i + 1}:2", 100, 1.0) for i in range(1, n)]
    links += [(f"s{i}:3", f"s{n + 1}:{i}", 1, 50.0) for i in range(1, n + 1)]
    red = ", reduced: true" if reduced else ""
    text = "switches:\n" + "".join(switch(f"s{i}", i, decap=i == n) for i in range(1, n + 2))
    text += "links:\n" + "".join(
        f"  - {{a: '{a}', b: '{b}', latency_ms: {ms}, capacity_gbps: 10, metric: {m}}}\n"
        for a, b, m, ms in links
    )
    return text + f"sr_policies:\n  - {{name: long, headend: s1, endpoint: s{n}{red}}}\n"


@pytest.mark.parametrize("hops", [2, 4, MAX_ENCAP_SEGMENTS, MAX_ENCAP_SEGMENTS + 1])
def test_long_paths_fill_the_srh_then_use_h_encaps_red(tmp_path: Path, hops: int) -> None:
    intent, configs = render(tmp_path, chain(hops))
    ((segments, reduced),) = lists_of(configs["s1"])
    assert len(segments) == hops  # one segment per hop routing would not take
    assert reduced == (hops > MAX_ENCAP_SEGMENTS)  # Red only where it saves the segment
    check_every_list_follows_its_path(intent, configs)


def test_a_path_longer_than_any_encapsulation_is_refused_naming_the_policy(
    tmp_path: Path,
) -> None:
    text = chain(MAX_ENCAP_SEGMENTS + 2)
    with pytest.raises(IntentError) as caught:
        render(tmp_path, text)
    (problem,) = caught.value.problems
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "name: long" in t)
    assert f":{line}: sr_policies.0: path s1-s2-" in problem
    assert f"needs {MAX_ENCAP_SEGMENTS + 2} segments" in problem


def test_adjacency_sids_that_collide_are_refused(tmp_path: Path) -> None:
    text = intent_text(DETOUR, "{name: fast, headend: s1, endpoint: s4}", 4).replace(
        "decap_sid: 'fc00:4::d6'", "decap_sid: 'fc00:2::e001'"
    )
    with pytest.raises(IntentError) as caught:
        render(tmp_path, text)
    assert any(
        "End.X SID fc00:2::e001" in p and "decap_sid of s4" in p for p in caught.value.problems
    )


def test_a_list_deeper_than_a_tofino_headend_pushes_is_refused_for_tna(tmp_path: Path) -> None:
    from icpn.constants import TNA_MAX_ENCAP_SEGMENTS
    from icpn.targets.tofino.p4info import for_tna

    _, configs = render(tmp_path, chain(TNA_MAX_ENCAP_SEGMENTS))
    (policy,) = [e for e in configs["s1"].entities if getattr(e, "table_id", "") == "sr_policy"]
    assert for_tna(policy) is policy  # fits
    _, deeper = render(tmp_path, chain(TNA_MAX_ENCAP_SEGMENTS + 2))
    (policy,) = [e for e in deeper["s1"].entities if getattr(e, "table_id", "") == "sr_policy"]
    with pytest.raises(ValueError, match=f"a Tofino headend at most {TNA_MAX_ENCAP_SEGMENTS}"):
        for_tna(policy)
