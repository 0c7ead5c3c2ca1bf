"""End to end: two Linux hosts in namespaces ping each other through BMv2 running icpn.p4,
with the routes written by the project's P4Runtime client."""

from __future__ import annotations

import pytest

from icpn import demo, netns

pytestmark = pytest.mark.bmv2


def test_hosts_ping_through_the_switch() -> None:
    result = demo.run(pings=3, progress=lambda _msg: None)
    assert (result.transmitted, result.received) == (3, 3)
    assert result.rtt_avg_ms is not None and result.rtt_avg_ms < 100
    assert result.drops["NO_ROUTE"] == 0 and result.drops["HOP_LIMIT"] == 0
    assert not [n for n in netns.existing() if n.startswith("icpn-")], "namespaces left behind"
