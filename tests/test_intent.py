"""The intent file: a valid one loads (and yields its topology); every problem of a bad one
is reported with file, line and field, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from icpn.intent import IntentError, load_intent

VALID = """\
switches:
  sh1:
    grpc: 127.0.0.1:50001
    router_mac: 00:00:00:00:aa:01
    sid: fc00:1::1
    ports:
      1: {role: edge_untrusted}
      2: {neighbor_mac: 00:00:00:00:bb:01}
  gz1:
    grpc: 127.0.0.1:50002
    router_mac: 00:00:00:00:aa:02
    sid: fc00:2::1
  nx1:
    grpc: 127.0.0.1:50003
    router_mac: 00:00:00:00:aa:03
    sid: fc00:3::1
    decap_sid: fc00:3::d6
    ports:
      3: {role: edge_untrusted, neighbor_mac: 00:00:00:00:cc:03}
links:
  - {a: "sh1:2", b: "gz1:1", km: 1200, capacity_gbps: 100}
  - {a: "gz1:2", b: "nx1:1", km: 1800, capacity_gbps: 100}
  - {a: "sh1:3", b: "nx1:2", latency_ms: 25, capacity_gbps: 10}
prefixes:
  - {prefix: "2001:db8:2::/48", switch: nx1, port: 3}
apn_policies:
  - name: ingest
    app_group: 7
    dscp: 34
    sr_policy: sh-nx
    telemetry: trace
    sketch: rdma
    classify:
      - {ipv6_dst: "2001:db8:2::/48"}
sr_policies:
  - {name: sh-nx, headend: sh1, endpoint: nx1, paths: 2, max_latency_ms: 30}
telemetry:
  - name: trace
    altmark: {flow_mon_id: 7, period_log2_us: 20}
    ioam: {namespace: 16, trace_type: 0xC00000, max_nodes: 4}
sketches:
  - {name: rdma, threshold: 1000, window_log2_us: 20}
"""


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intent.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(IntentError) as caught:
        load_intent(write(tmp_path, text))
    return caught.value.problems


def test_valid_intent_loads_and_gives_its_paths(tmp_path: Path) -> None:
    intent = load_intent(write(tmp_path, VALID))
    assert intent.switches["nx1"].decap_sid == "fc00:3::d6"
    assert intent.switches["sh1"].ports[1].port_role.name == "EDGE_UNTRUSTED"
    paths = intent.topology().sr_paths("sh1", "nx1", count=2, max_latency_ms=30)
    assert [p.nodes for p in paths] == [("sh1", "gz1", "nx1"), ("sh1", "nx1")]
    assert paths[0].latency_ms == pytest.approx(15.0)  # 3000 km at 5 us/km


def test_every_problem_is_reported_with_line_and_field(tmp_path: Path) -> None:
    bad = (
        VALID.replace("router_mac: 00:00:00:00:aa:02", "router_mac: not-a-mac")
        .replace('b: "gz1:1"', 'b: "gz9:1"')
        .replace("dscp: 34", "dscp: 99")
        .replace("sketch: rdma", "sketch: nothing")
    )
    found = problems(tmp_path, bad)
    text = "\n".join(found)
    assert f"intent.yaml:{line_of(bad, 'not-a-mac')}: switches.gz1.router_mac:" in text
    assert f"intent.yaml:{line_of(bad, 'dscp: 99')}: apn_policies.0.dscp:" in text
    # The cross references are checked in the same run, despite the field errors.
    assert f"intent.yaml:{line_of(bad, 'gz9:1')}: links.0.b: unknown switch 'gz9'" in text
    assert (
        f"intent.yaml:{line_of(bad, 'sketch: nothing')}: apn_policies.0.sketch: "
        "unknown sketch 'nothing'" in text
    )
    assert len(found) == 4, found
    lines = [int(p.split(":")[-3]) for p in found]
    assert lines == sorted(lines)  # one report, in file order


def test_a_switch_with_bad_fields_is_still_a_known_reference(tmp_path: Path) -> None:
    """gz1's bad MAC is one field error; the links and policies naming gz1 are fine."""
    bad = VALID.replace("router_mac: 00:00:00:00:aa:02", "router_mac: not-a-mac")
    found = problems(tmp_path, bad)
    assert len(found) == 1 and "switches.gz1.router_mac" in found[0], found


def test_reference_errors_next_to_broken_items(tmp_path: Path) -> None:
    """A link with a missing field and a policy with a bad dscp are reported; a broken
    item's readable references are still checked; an unreadable item is only a field
    error."""
    bad = (
        VALID.replace(
            '{a: "gz1:2", b: "nx1:1", km: 1800, capacity_gbps: 100}',
            '{a: "gz1:2", b: "nx7:1", km: 1800}',
        )
        .replace("sr_policy: sh-nx", "sr_policy: nowhere")
        .replace('  - {prefix: "2001:db8:2::/48", switch: nx1, port: 3}', "  - 42")
        .replace("paths: 2", "paths: 0")
    )
    found = problems(tmp_path, bad)
    text = "\n".join(found)
    assert f":{line_of(bad, 'nx7:1')}: links.1.capacity_gbps: Field required" in text
    assert f":{line_of(bad, 'nx7:1')}: links.1.b: unknown switch 'nx7'" in text
    assert f":{line_of(bad, 'sr_policy: nowhere')}: apn_policies.0.sr_policy: unknown" in text
    assert f":{line_of(bad, '- 42')}: prefixes.0:" in text
    assert f":{line_of(bad, 'paths: 0')}: sr_policies.0.paths:" in text
    assert len(found) == 5, found


def test_cross_references_are_checked_with_their_lines(tmp_path: Path) -> None:
    bad = VALID.replace('b: "gz1:1"', 'b: "gz9:1"').replace("sketch: rdma", "sketch: nothing")
    found = problems(tmp_path, bad)
    link_line, sketch_line = line_of(bad, "gz9:1"), line_of(bad, "sketch: nothing")
    assert f"{tmp_path / 'intent.yaml'}:{link_line}: links.0.b: unknown switch 'gz9'" in found
    expected = f":{sketch_line}: apn_policies.0.sketch: unknown sketch 'nothing'"
    assert any(expected in p for p in found), found


def test_unknown_fields_are_refused(tmp_path: Path) -> None:
    bad = VALID.replace("    sid: fc00:2::1", "    sid: fc00:2::1\n    colour: red")
    found = problems(tmp_path, bad)
    expected = (
        f":{line_of(bad, 'colour: red')}: switches.gz1.colour: Extra inputs are not permitted"
    )
    assert any(expected in p for p in found), found


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "switches:\n  sh1: {grpc: [\n")
    assert (
        found[0].endswith("not valid YAML: expected the node content, but found '<stream end>'")
        or ":3: not valid YAML" in found[0]
        or ":2: not valid YAML" in found[0]
    )


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IntentError, match="cannot read"):
        load_intent(tmp_path / "missing.yaml")


def test_a_host_or_collector_on_its_gateway_address_is_refused(tmp_path: Path) -> None:
    """The gateway (the network's first address) is the switch's: a host given it would
    route to itself (the data-ingestion collector once did, issue 14)."""
    bad = VALID + (
        'hosts:\n  h1: {switch: nx1, port: 4, address: "2001:db8:5::1/64"}\n'
        'collector: {address: "2001:db8:ff::1", attach: "nx1:6", mac: "00:00:00:ff:00:01"}\n'
    )
    found = problems(tmp_path, bad)
    path = tmp_path / "intent.yaml"
    assert any(
        p.startswith(f"{path}:{line_of(bad, '  h1: {')}: hosts.h1:")
        and "2001:db8:5::1 is the gateway address of 2001:db8:5::/64" in p
        for p in found
    ), found
    assert any(
        p.startswith(f"{path}:{line_of(bad, 'collector:')}: collector:")
        and "such as 2001:db8:ff::10" in p
        for p in found
    ), found
    fixed = bad.replace("2001:db8:5::1/64", "2001:db8:5::10/64").replace('ff::1"', 'ff::10"')
    assert load_intent(write(tmp_path, fixed)).collector is not None
