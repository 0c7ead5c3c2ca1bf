"""PTF tests for differentiated bearing (qos.p4): APN ID to traffic class and queue, counters
per class, ECN per queue, tenant meters (RFC 2698 colours, red dropped or remarked, the
configured rates), and BMv2's strict priority between queues under contention.

Transit packets carry an APN6 option in their HBH (the switch reads the APN ID at every hop);
they enter on port 1 and route to port 2.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from ptf import testutils
from scapy.fields import BitField
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from icpn.constants import DropReason, MeterColor
from icpn.features import qos
from icpn.features.routing import DROP_COUNTER, my_station, route
from icpn.packets import APN6, ApnIdTemplate
from icpn.targets import veth
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Error, Bmv2Options, ThriftSwitch
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import HOST_SRC, next_hop, routed, to_router

DST = "2001:db8:2::1"
TEMPLATE = ApnIdTemplate()
INFERENCE_APP, BULK_APP = 0x0101, 0x0202
INFERENCE_CLASS = 5
PAYLOAD = 200


def apn_packet(app: int, user: int = 1, *, ecn: int = 0, seq: int = 1) -> Packet:
    apn_id = TEMPLATE.compose(app, user)
    return to_router(
        IPv6(src=HOST_SRC, dst=DST, tc=(10 << 2) | ecn)
        / IPv6ExtHdrHopByHop(options=[APN6(apn_id=apn_id)])
        / UDP(sport=seq, dport=9)
        / Raw(b"q" * PAYLOAD)
    )


class QosTest(P4RuntimeTest):
    def forwarding(self) -> None:
        self.insert([my_station("00:00:00:00:aa:01"), route("2001:db8:2::/48", [next_hop(2)])])

    def class_tx(self) -> dict[int, int]:
        return {i: int(d.packet_count) for i, d in self.sw.read_counters(qos.CLASS_TX).items()}

    def colors(self, meter: int) -> dict[MeterColor, int]:
        return {
            c: self.counter_packets(qos.TENANT_COLORS, qos.color_index(meter, c))
            for c in MeterColor
        }


class TestTrafficClass(QosTest):
    def test_apn_app_group_selects_class_and_counts_it(self) -> None:
        self.forwarding()
        value, mask = TEMPLATE.match(app_group=INFERENCE_APP)
        self.insert([qos.traffic_class(value, mask, INFERENCE_CLASS, priority=10)])
        before = self.class_tx()
        for seq, app in enumerate([INFERENCE_APP, BULK_APP, INFERENCE_APP, INFERENCE_APP]):
            pkt = apn_packet(app, seq=seq)
            testutils.send_packet(self, 1, pkt)
            testutils.verify_packet(self, routed(pkt, 2), 2)
        after = self.class_tx()
        assert after.get(INFERENCE_CLASS, 0) - before.get(INFERENCE_CLASS, 0) == 3
        assert after.get(0, 0) - before.get(0, 0) == 1  # no entry: best effort

    def test_class_out_of_range_is_refused(self) -> None:
        with pytest.raises(ValueError, match="traffic class"):
            qos.traffic_class(0, 0, 8, priority=1)


class TestQueueEcn(QosTest):
    def test_only_the_configured_queue_marks(self) -> None:
        self.forwarding()
        value, mask = TEMPLATE.match(app_group=INFERENCE_APP)
        # Threshold 0: every packet of queue 5 on port 2 counts as congested; queue 0 has none.
        self.insert(
            [
                qos.traffic_class(value, mask, INFERENCE_CLASS, priority=10),
                qos.queue_ecn(2, INFERENCE_CLASS, 0),
            ]
        )
        for app, ecn_in, ecn_out in [
            (INFERENCE_APP, 0b10, 0b11),  # ECT(0) -> CE
            (INFERENCE_APP, 0b00, 0b00),  # Not-ECT stays (RFC 3168)
            (BULK_APP, 0b10, 0b10),  # another queue: untouched
        ]:
            pkt = apn_packet(app, ecn=ecn_in)
            expected = routed(pkt, 2)
            expected[IPv6].tc = (10 << 2) | ecn_out
            testutils.send_packet(self, 1, pkt)
            testutils.verify_packet(self, expected, 2)


TENANT_USER = 0x0042


class TestTenantMeter(QosTest):
    """Colour-blind trTCM: with CBS = 3 packets, PBS = 6 and rates too low to refill a packet
    during the test, a burst is 3 green, 3 yellow, then red (RFC 2698 3.1)."""

    def _meter(self, index: int, red: qos.RedPolicy, meter: qos.TrTcm) -> None:
        self.forwarding()
        value, mask = TEMPLATE.match(user_group=TENANT_USER)
        self.insert([qos.tenant_meter_rule(value, mask, index, red, priority=10)])
        self.sw.modify([qos.meter_config(index, meter)])

    def _frame_len(self) -> int:
        return len(apn_packet(BULK_APP, TENANT_USER))

    def test_burst_is_green_yellow_red_and_red_dropped(self) -> None:
        size = self._frame_len()
        index = 3
        self._meter(index, qos.RedPolicy(drop=True), qos.TrTcm(10, 3 * size, 20, 6 * size))
        before, drops = self.colors(index), self.counter_packets(DROP_COUNTER, DropReason.METER_RED)
        for seq in range(10):
            testutils.send_packet(self, 1, apn_packet(BULK_APP, TENANT_USER, seq=seq))
        received = [self._received_seq(2) for _ in range(6)]
        testutils.verify_no_other_packets(self)
        assert received == list(range(6))
        got = {c: n - before[c] for c, n in self.colors(index).items()}
        assert got == {MeterColor.GREEN: 3, MeterColor.YELLOW: 3, MeterColor.RED: 4}
        assert self.counter_packets(DROP_COUNTER, DropReason.METER_RED) - drops == 4

    def test_red_remarked_to_scavenger_class(self) -> None:
        size = self._frame_len()
        index = 4
        red = qos.RedPolicy(drop=False, dscp=8, tc=1)
        self._meter(index, red, qos.TrTcm(10, 3 * size, 20, 6 * size))
        tx = self.class_tx()
        for seq in range(8):
            pkt = apn_packet(BULK_APP, TENANT_USER, seq=seq)
            expected = routed(pkt, 2)
            if seq >= 6:
                expected[IPv6].tc = 8 << 2
            testutils.send_packet(self, 1, pkt)
            testutils.verify_packet(self, expected, 2)
        assert self.class_tx().get(1, 0) - tx.get(1, 0) == 2

    def test_tokens_refill_at_the_configured_rates(self) -> None:
        """Empty both buckets, wait, and count: the greens are CIR x wait / size, the
        yellows (PIR - CIR) x wait / size, within one packet of timing slack."""
        size = self._frame_len()
        index = 5
        cir, pir = 4 * size, 8 * size  # 4 and 8 packets per second
        self._meter(index, qos.RedPolicy(drop=True), qos.TrTcm(cir, 4 * size, pir, 8 * size))
        for seq in range(20):
            testutils.send_packet(self, 1, apn_packet(BULK_APP, TENANT_USER, seq=seq))
        time.sleep(0.3)
        self.dataplane.flush()
        before = self.colors(index)
        wait_s = 1.0
        time.sleep(wait_s)
        for seq in range(20):
            testutils.send_packet(self, 1, apn_packet(BULK_APP, TENANT_USER, seq=seq))
        time.sleep(0.3)
        self.dataplane.flush()
        after = self.colors(index)
        got = {c: after[c] - before[c] for c in MeterColor}
        assert abs(got[MeterColor.GREEN] - cir * wait_s / size) <= 1, got
        assert abs(got[MeterColor.GREEN] + got[MeterColor.YELLOW] - pir * wait_s / size) <= 1, got
        assert sum(got.values()) == 20

    def _received_seq(self, port: int) -> int:
        result = self.dataplane.poll(device_number=0, port_number=port, timeout=2.0)
        assert isinstance(result, self.dataplane.PollSuccess), f"no packet on port {port}"
        return int(Ether(result.packet)[UDP].sport)


# -- strict priority under contention, on the Thrift simple_switch (queue_probe.p4)


class Probe(Packet):
    name = "queue probe"
    fields_desc = [  # noqa: RUF012 (scapy declares fields as a class-level list)
        BitField("traffic_class", 0, 8),
        BitField("sequence", 0, 32),
        BitField("enq_qdepth", 0, 32),
        BitField("deq_timedelta", 0, 32),
    ]


PROBE_ETHERTYPE = 0x88B5  # IEEE 802 local experimental EtherType 1
BULK_CLASS = 0
QUEUE_RATE_PPS = 100
BACKLOG = 40
LATE_HIGH = 5


@pytest.fixture(scope="module")
def probe_switch() -> Iterator[ThriftSwitch]:
    art = build.compile_program("queue_probe")
    try:
        switch = ThriftSwitch(art.json, "queue-probe", Bmv2Options(num_ports=2, log_level="warn"))
        switch.start()
    except Bmv2Error as exc:
        pytest.skip(f"no Thrift simple_switch to set queue rates: {exc}")
    try:
        yield switch
    finally:
        switch.stop()


def _run_burst(switch: ThriftSwitch, late_class: int) -> list[tuple[int, int, int]]:
    """Send BACKLOG bulk probes then LATE_HIGH probes of ``late_class`` back to back; return
    (sequence, class, microseconds queued) in the order port 2 sent them."""
    rates = qos.QueueRates(switch.thrift_port or 0)
    for queue in range(8):
        rates.set_rate(2, queue, QUEUE_RATE_PPS)
    frames = [
        bytes(
            Ether(dst="00:00:00:00:00:02", type=PROBE_ETHERTYPE)
            / Probe(traffic_class=tc, sequence=i)
        )
        for i, tc in enumerate([BULK_CLASS] * BACKLOG + [late_class] * LATE_HIGH)
    ]
    with (
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx,
        veth.capture_socket(switch.host_interfaces[2], PROBE_ETHERTYPE) as rx,
    ):
        tx.bind((switch.host_interfaces[1], 0))
        rx.settimeout(2.0)
        for frame in frames:
            tx.send(frame)
            time.sleep(0.0005)  # well under BMv2's ingress rate: the queue is the bottleneck
        out: list[tuple[int, int, int]] = []
        deadline = time.monotonic() + 10
        while len(out) < len(frames) and time.monotonic() < deadline:
            try:
                probe = Probe(rx.recv(2048)[14:])
            except TimeoutError:
                break
            out.append((probe.sequence, probe.traffic_class, probe.deq_timedelta))
    return out


@pytest.mark.bmv2
class TestStrictPriority:
    """Every queue of port 2 paced at QUEUE_RATE_PPS: BACKLOG bulk packets queue up for
    BACKLOG / rate seconds. High-class packets sent after them leave at once; in the bulk
    class they wait behind the whole backlog."""

    def test_high_class_overtakes_the_backlog(self, probe_switch: ThriftSwitch) -> None:
        out = _run_burst(probe_switch, INFERENCE_CLASS)
        assert len(out) == BACKLOG + LATE_HIGH
        positions = [i for i, (_, tc, _) in enumerate(out) if tc == INFERENCE_CLASS]
        # Sent last, the high-class packets leave while most of the backlog still waits.
        assert max(positions) < BACKLOG // 2, positions
        high_wait = max(d for _, tc, d in out if tc == INFERENCE_CLASS)
        bulk_wait = max(d for _, tc, d in out if tc == BULK_CLASS)
        assert high_wait * 5 < bulk_wait, (high_wait, bulk_wait)

    def test_same_class_waits_behind_the_backlog(self, probe_switch: ThriftSwitch) -> None:
        out = _run_burst(probe_switch, BULK_CLASS)
        assert [seq for seq, _, _ in out] == list(range(BACKLOG + LATE_HIGH))  # FIFO
        late_wait = min(d for seq, _, d in out if seq >= BACKLOG)
        assert late_wait > 0.5 * (BACKLOG / QUEUE_RATE_PPS) * 1e6
