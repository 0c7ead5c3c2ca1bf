"""Packet Too Big in the Mininet lab (issue 14 part 3): the lab of
tests/test_routers_mininet.py with the SR policy's first link narrowed to an MTU of 1500,
which h1's full-size packet no longer fits once the headend has encapsulated it: the headend
tells h1 the MTU less its encapsulation, and h1's packets of that size then pass. (A module
of its own: one lab is up at a time, and that module keeps its lab for all its tests.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_routers_mininet import ENCAP, H2, INTENT, net, ping, running

pytestmark = pytest.mark.bmv2


def test_a_packet_too_big_for_a_link_gets_packet_too_big(tmp_path: Path) -> None:
    """Encapsulated, h1's 1500-octet packet to h2 exceeds tr1-tr3's 1500: tr1 tells h1 the
    MTU less its encapsulation; h1's smaller packets then pass."""
    narrow = INTENT.replace("metric: 5}", "metric: 5, mtu: 1500}")
    assert narrow != INTENT
    with running(tmp_path, narrow) as intent:
        _packet_too_big(intent)


def _packet_too_big(intent: Path) -> None:
    too_big = ping(H2, interval=0.5, wait=2, size=1452)
    text = too_big.stdout + too_big.stderr
    assert f"mtu={1500 - ENCAP}" in text.replace(" ", ""), text
    route = net("exec", "h1", "--", "ip", "-6", "route", "get", H2)
    assert f"mtu {1500 - ENCAP}" in route.stdout, route.stdout + route.stderr
    fits = 1500 - ENCAP - 48
    answer = ping(H2, size=fits)
    assert answer.returncode == 0 and "2 received" in answer.stdout, answer.stdout + answer.stderr
    # the headend counted what it punted (and dropped none of it as too big)
    show = subprocess.run(
        [sys.executable, "-m", "icpn.cli", "ctl", "show", "-i", str(intent), "--switch", "tr1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join(show.stdout.split())
    assert "punted to the controller: {" in text, show.stdout + show.stderr
    punted = text.split("punted to the controller:")[1]
    assert "'PACKET_TOO_BIG': " in punted, text
    assert "PACKET_TOO_BIG" not in text.split("drops:")[1].split("punted")[0], text
