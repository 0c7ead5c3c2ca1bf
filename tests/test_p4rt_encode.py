"""The thin encoding path (icpn.p4rt.encode) gives exactly finsy's encoding: for every
entity the controller renders from the test intents, against the real program's P4Info,
for routes and elephant overrides, in every value spelling icpn uses, and with finsy's
errors for what it cannot encode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import finsy as fy
import pytest
from finsy.proto import p4r

from icpn.controller.render import load_and_render
from icpn.features.routing import NextHop, route_v4
from icpn.features.sketch import FlowKey, elephant_override
from icpn.features.srv6 import SegmentList
from icpn.p4rt.encode import Encoder
from icpn.targets import toolchain
from icpn.targets.bmv2 import build
from tests.fake_p4runtime import entry, p4info
from tests.test_controller import INTENT


def same_as_finsy(encoder: Encoder, entity: Any) -> None:
    ours = encoder.entity(entity).SerializeToString(deterministic=True)
    theirs = entity.encode(encoder.schema).SerializeToString(deterministic=True)
    assert ours == theirs, f"{entity!r}"


def test_fake_program_values_in_every_spelling() -> None:
    encoder = Encoder(fy.P4Schema(p4info()))
    for key in (0, 1, 255, 256, 65535, "0x10", "17"):
        same_as_finsy(encoder, entry(key))  # type: ignore[arg-type]
        same_as_finsy(encoder, entry(1, port=key if isinstance(key, int) and key < 512 else 3))
    update = encoder.update(p4r.Update.DELETE, entry(5))
    assert update.type == p4r.Update.DELETE
    assert update.entity.table_entry.match[0].exact.value == b"\x05"


def test_errors_are_finsys() -> None:
    encoder = Encoder(fy.P4Schema(p4info()))
    with pytest.raises(ValueError, match="'k'"):
        encoder.entity(entry(1 << 16))  # does not fit bit<16>
    with pytest.raises(ValueError, match="no P4Table named 'nope'"):
        encoder.entity(fy.P4TableEntry("nope"))
    bad = fy.P4TableEntry("t", match=fy.P4TableMatch(k=1), action=fy.P4TableAction("a", p=1, q=2))
    with pytest.raises(ValueError, match="'q'"):
        encoder.entity(bad)
    # no parameters at all is finsy's wildcard action, accepted by both
    same_as_finsy(
        encoder, fy.P4TableEntry("t", match=fy.P4TableMatch(k=1), action=fy.P4TableAction("a"))
    )


def test_a_message_passes_through() -> None:
    encoder = Encoder(fy.P4Schema(p4info()))
    message = entry(3).encode(encoder.schema)
    assert encoder.entity(message) is message


@pytest.fixture(scope="module")
def icpn_schema() -> fy.P4Schema:
    reason = toolchain.bmv2_unavailable_reason()
    if reason is not None and toolchain.p4c().path is None:
        pytest.skip(f"needs p4c to build the program's P4Info: {reason}")
    return fy.P4Schema(build.compile_program("icpn").p4info)


def test_every_rendered_entity_encodes_as_finsy_does(
    tmp_path: Path, icpn_schema: fy.P4Schema
) -> None:
    path = tmp_path / "intent.yaml"
    path.write_text(INTENT)
    _intent, configs = load_and_render(path)
    encoder = Encoder(icpn_schema)
    count = 0
    for config in configs.values():
        for entity in config.entities:
            same_as_finsy(encoder, entity)
            same_as_finsy(encoder, entity)  # again, from the caches
            count += 1
    assert count > 50


def test_routes_overrides_and_prefix_spellings(icpn_schema: fy.P4Schema) -> None:
    encoder = Encoder(icpn_schema)
    hop = NextHop(3, "00:00:00:00:aa:01", "00:00:00:00:00:02")
    for prefix in ("10.0.0.0/24", "0.0.0.0/0", "10.0.0.1/32", "192.168.6.0/23"):
        same_as_finsy(encoder, route_v4(prefix, hop))
    action = route_v4("10.0.0.0/8", hop).action
    for spelling in ("10.1.2.3/24", "10.1.2.3", 0x0A010203, ("10.1.2.3", 16), "10.0.0.0/255.0.0.0"):
        loose = fy.P4TableEntry(
            "routing_v4", match=fy.P4TableMatch(ipv4_dst=spelling), action=action
        )
        same_as_finsy(encoder, loose)
    numeric = NextHop(3, 0xAA01, 2)  # type: ignore[arg-type]
    same_as_finsy(encoder, route_v4("10.0.0.0/8", numeric))
    flow = FlowKey("2001:db8:1::10", "2001:db8:2::10", dest_qp=77)
    for sids in (("fc00:2::1", "fc00:3::d6"), ("fc00:2::1", "fc00:4::1", "fc00:3::d6")):
        segment_list = SegmentList(sids, list_id=2)
        same_as_finsy(encoder, elephant_override(3, flow, "fc00:1::1", segment_list))
