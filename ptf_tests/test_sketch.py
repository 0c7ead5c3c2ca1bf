"""PTF tests for elephant detection and pinning on BMv2: threshold crossing and the digest,
one report per flow per window, epochs, byte counting, flow keys, the keyed hash the
controller sets, the override table and per-list load counters — and a 100k-packet
differential test against icpn.model with a freshly generated secret key."""

from __future__ import annotations

import contextlib
import ipaddress
import random
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
from ptf import testutils
from scapy.contrib.roce import BTH
from scapy.layers.inet import UDP
from scapy.layers.l2 import Ether

from icpn.constants import FlowKeyType, PortRole
from icpn.features.apn import apn_policy, classifier_rule, port_role
from icpn.features.routing import deny, my_station, route
from icpn.features.sketch import (
    ELEPHANT_DIGEST,
    ElephantReport,
    FlowKey,
    SketchProfile,
    elephant_override,
    sketch_profile,
)
from icpn.features.srv6 import SEGMENT_LIST_LOAD, SegmentList, sr_policy
from icpn.hashing import sr_list_member
from icpn.model.sketch import Packets, Sketch
from icpn.packets import rocev2_write
from icpn.sketch_key import SketchHashKey, hash_key_entry
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import HOST_SRC, ROUTER_MAC, next_hop, to_router
from ptf_tests.test_srv6 import APN_TRAINING, DST, HEADEND, TEMPLATE

# Windows that never roll by themselves (2^47 us), so tests choose them with the epoch.
FROZEN = 47
LISTS = [
    SegmentList(("fc00:2::1", "fc00:4::d6"), list_id=1),
    SegmentList(("fc00:3::1", "fc00:4::d6"), list_id=2),
]
LIST_PORTS = (2, 3)


def roce_frame(qp: int, *, sport: int = 49152) -> bytes:
    return bytes(to_router(rocev2_write(HOST_SRC, DST, dest_qp=qp, sport=sport)))


class SketchTest(P4RuntimeTest):
    def setup_headend(self, profile: SketchProfile) -> None:
        value, mask = TEMPLATE.match(app_group=7)
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_UNTRUSTED),
                classifier_rule(APN_TRAINING, priority=10, ipv6_dst=f"{DST}/128"),
                sketch_profile(1, profile),
                apn_policy(value, mask, dscp=0, sr_policy_id=1, priority=10, sketch_profile=1),
                sr_policy(1, HEADEND, LISTS),
                route("fc00:2::/32", [next_hop(2)]),
                route("fc00:3::/32", [next_hop(3)]),
            ]
        )
        self.sw.subscribe_digest(
            ELEPHANT_DIGEST, max_list_size=1, max_timeout_ns=0, ack_timeout_ns=10**9
        )
        while self.sw.get_digest(ELEPHANT_DIGEST, timeout=0.05) is not None:
            pass  # reports left over from an earlier test

    @contextlib.contextmanager
    def hash_key(self, key: SketchHashKey) -> Iterator[None]:
        """The sketch hashes with ``key`` inside the block; the program's default key after
        (the switch is shared by the session's tests, and cleanup does not see defaults)."""
        self.sw.modify([hash_key_entry(key)])
        try:
            yield
        finally:
            self.sw.modify([hash_key_entry(SketchHashKey.default())])

    def set_epoch(self, profile: SketchProfile, epoch: int) -> SketchProfile:
        changed = SketchProfile(
            profile.key, profile.threshold, profile.window_log2_us, profile.count_bytes, epoch
        )
        self.sw.modify([sketch_profile(1, changed)])
        return changed

    def reports(self, timeout: float = 1.0) -> list[ElephantReport]:
        out = []
        while (digest := self.sw.get_digest(ELEPHANT_DIGEST, timeout=timeout)) is not None:
            out += [ElephantReport.decode(item) for item in digest]
            timeout = 0.3
        return out

    def send(self, frame: bytes, count: int = 1) -> None:
        for _ in range(count):
            self.dataplane.send(0, 1, frame)
        self.drain()

    def drain(self) -> None:
        """Let BMv2 catch up and forget what it forwarded (a bounded wait)."""
        time.sleep(0.05)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            result = self.dataplane.poll(device_number=0, timeout=0.2)
            if not isinstance(result, self.dataplane.PollSuccess):
                return


class TestDetection(SketchTest):
    PROFILE = SketchProfile(FlowKeyType.SRC_DST_QP, threshold=20, window_log2_us=FROZEN, epoch=5)

    def test_flow_reaching_the_threshold_is_reported_once_with_its_key(self) -> None:
        self.setup_headend(self.PROFILE)
        self.send(roce_frame(0xA1), count=19)
        assert self.reports(timeout=0.5) == []  # 19 < 20
        self.send(roce_frame(0xA1), count=30)  # crosses at 20, then stays above
        reports = self.reports()
        assert len(reports) == 1
        report = reports[0]
        assert report.flow == FlowKey(HOST_SRC, DST, dest_qp=0xA1)
        assert report.key_type == FlowKeyType.SRC_DST_QP
        assert (report.apn_id, report.sr_policy_id) == (APN_TRAINING, 1)
        assert (report.estimate, report.window) == (20, 5)

    def test_a_new_window_reports_again(self) -> None:
        self.setup_headend(self.PROFILE)
        self.send(roce_frame(0xB2), count=25)
        assert [r.window for r in self.reports()] == [5]
        self.set_epoch(self.PROFILE, 6)  # the controller opens a fresh window
        self.send(roce_frame(0xB2), count=19)
        assert self.reports(timeout=0.5) == []  # counts restarted at 0
        self.send(roce_frame(0xB2), count=1)
        assert [(r.window, r.estimate) for r in self.reports()] == [(6, 20)]

    def test_bytes_mode_reports_at_the_byte_threshold(self) -> None:
        frame = roce_frame(0xC3)
        profile = SketchProfile(
            FlowKeyType.SRC_DST_QP,
            threshold=10 * len(frame),
            window_log2_us=FROZEN,
            count_bytes=True,
            epoch=9,
        )
        self.setup_headend(profile)
        self.send(frame, count=9)
        assert self.reports(timeout=0.5) == []
        self.send(frame, count=1)
        assert [r.estimate for r in self.reports()] == [10 * len(frame)]

    def test_five_tuple_key_reports_ports_and_no_qp(self) -> None:
        profile = SketchProfile(
            FlowKeyType.FIVE_TUPLE, threshold=5, window_log2_us=FROZEN, epoch=11
        )
        self.setup_headend(profile)
        self.send(roce_frame(0xD4, sport=50000), count=5)
        (report,) = self.reports()
        assert report.flow == FlowKey(HOST_SRC, DST, proto=17, sport=50000, dport=4791)


def key_blind_to_qp(*hashes: int) -> SketchHashKey:
    """A random key whose given hashes ignore the DestQP word (multiplier 8 is zero): flows
    differing only in DestQP then share those hashes' cells, slot or tag. A key nobody would
    deploy; it shows the switch hashes with the key the controller set."""
    key = SketchHashKey.generate()
    rows = [list(row) for row in key.values]
    for h in hashes:
        rows[h][8] = 0
    return SketchHashKey(tuple(tuple(row) for row in rows))


class TestKeyedHash(SketchTest):
    PROFILE = SketchProfile(FlowKeyType.SRC_DST_QP, threshold=20, window_log2_us=FROZEN, epoch=21)

    def test_the_controllers_key_decides_the_cells(self) -> None:
        """Hashes 0 and 1 blind to DestQP: QP 0xB shares 0xA's cells, so its first packet
        after 0xA's 19 crosses the threshold; the tag (hash 2) still tells them apart, so
        0xA reports when it crosses too: a flow in another's cells cannot silence it."""
        self.setup_headend(self.PROFILE)
        with self.hash_key(key_blind_to_qp(0, 1)):
            self.send(roce_frame(0xA), count=19)
            self.send(roce_frame(0xB), count=1)
            assert [(r.flow.dest_qp, r.estimate) for r in self.reports()] == [(0xB, 20)]
            self.send(roce_frame(0xA), count=1)
            assert [(r.flow.dest_qp, r.estimate) for r in self.reports()] == [(0xA, 21)]

    def test_a_twin_in_slot_and_tag_is_silenced_only_with_a_known_key(self) -> None:
        """All three hashes blind to DestQP: 0xB twins 0xA (cells, slot and tag), and the
        first to report silences the other for the window — what an outsider could do to
        the unkeyed CRC. With the default key the same two flows stay apart."""
        self.setup_headend(self.PROFILE)
        self.set_epoch(self.PROFILE, 24)  # windows of their own: the switch outlives tests
        with self.hash_key(key_blind_to_qp(0, 1, 2)):
            self.send(roce_frame(0xA), count=19)
            self.send(roce_frame(0xB), count=1)
            assert [r.flow.dest_qp for r in self.reports()] == [0xB]
            self.send(roce_frame(0xA), count=5)
            assert self.reports(timeout=0.5) == []
        self.set_epoch(self.PROFILE, 22)
        self.send(roce_frame(0xA), count=19)
        self.send(roce_frame(0xB), count=1)
        assert self.reports(timeout=0.5) == []  # apart: 0xB counts 1
        self.send(roce_frame(0xA), count=1)
        assert [(r.flow.dest_qp, r.estimate) for r in self.reports()] == [(0xA, 20)]

    def test_reports_name_the_ingress_port(self) -> None:
        self.setup_headend(self.PROFILE)
        self.set_epoch(self.PROFILE, 23)
        self.send(roce_frame(0xC), count=20)
        assert [r.ingress_port for r in self.reports()] == [1]


class TestPinning(SketchTest):
    PROFILE = SketchProfile(FlowKeyType.SRC_DST_QP, threshold=1000, window_log2_us=FROZEN)

    def port_of(self, qp: int) -> int:
        testutils.send_packet(self, 1, roce_frame(qp))
        result = self.dataplane.poll(device_number=0, timeout=2)
        assert isinstance(result, self.dataplane.PollSuccess), f"QP {qp} not forwarded"
        return int(result.port)

    def test_override_pins_one_flow_and_leaves_the_others_to_the_hash(self) -> None:
        self.setup_headend(self.PROFILE)
        hashed = {
            qp: LIST_PORTS[sr_list_member([(APN_TRAINING, 128), (qp, 24)], [1, 1])]
            for qp in range(1, 9)
        }
        pinned_qp = next(qp for qp, port in hashed.items() if port == LIST_PORTS[0])
        self.insert(
            [elephant_override(1, FlowKey(HOST_SRC, DST, dest_qp=pinned_qp), HEADEND, LISTS[1])]
        )
        for qp, port in hashed.items():
            expected = LIST_PORTS[1] if qp == pinned_qp else port
            assert self.port_of(qp) == expected, f"QP {qp}"
        testutils.verify_no_other_packets(self)

    def test_segment_list_counters_measure_each_list(self) -> None:
        self.setup_headend(self.PROFILE)
        before = {i: self.sw.read_counter(SEGMENT_LIST_LOAD, i) for i in (1, 2)}
        sent = Counter(self.port_of(qp) for qp in range(1, 21))
        for list_id, port in ((1, 2), (2, 3)):
            delta = self.sw.read_counter(SEGMENT_LIST_LOAD, list_id)
            assert delta.packet_count - before[list_id].packet_count == sent[port]
            assert delta.byte_count - before[list_id].byte_count == sent[port] * len(roce_frame(1))


class TestAgainstTheModel(SketchTest):
    """The issue's differential test: >= 100k packets, elephants and mice, several windows;
    BMv2 and icpn.model must report the same flows, windows and estimates, and send the
    same number of packets down each segment list."""

    WINDOWS = 3
    PER_WINDOW = 34_000
    THRESHOLD = 400
    RATE_PPS = 2500  # well under BMv2's rate: a packet lost before the pipeline would skew it

    def traffic(self, rng: random.Random) -> list[int]:
        """DestQPs of one window: 12 elephants of ~2000 packets and many mice, shuffled."""
        qps = [0x100 + e for e in range(12) for _ in range(rng.randrange(1500, 2500))]
        qps += [rng.randrange(0x1000, 1 << 24) for _ in range(self.PER_WINDOW - len(qps))]
        rng.shuffle(qps)
        return qps

    @pytest.mark.timeout(600)
    def test_digests_and_segment_lists_match_the_model(self) -> None:
        profile = SketchProfile(
            FlowKeyType.SRC_DST_QP, threshold=self.THRESHOLD, window_log2_us=FROZEN, epoch=100
        )
        self.setup_headend(profile)
        # Counted, then dropped at the end of ingress: nothing to receive, so the CPUs go to
        # BMv2 (2 cores here), and it keeps up with the offered rate.
        self.insert([deny(100, ingress_port=1, l4_dst_port=4791)])
        template = bytearray(roce_frame(0))
        qp_offset = len(template) - len(Ether(bytes(template))[UDP].payload) + 5
        assert Ether(bytes(template))[BTH].dqpn == 0
        rng = random.Random(2026)
        secret = SketchHashKey.generate()
        with self.hash_key(secret):
            self.run_against_the_model(profile, rng, secret, template, qp_offset)

    def run_against_the_model(
        self,
        profile: SketchProfile,
        rng: random.Random,
        secret: SketchHashKey,
        template: bytearray,
        qp_offset: int,
    ) -> None:
        before = {i: self.sw.read_counter(SEGMENT_LIST_LOAD, i).packet_count for i in (1, 2)}
        all_qps, all_windows, bmv2_reports = [], [], []
        for w in range(self.WINDOWS):
            profile = self.set_epoch(profile, 100 + w)
            qps = self.traffic(rng)
            start = time.monotonic()
            for i, qp in enumerate(qps):
                template[qp_offset : qp_offset + 3] = qp.to_bytes(3, "big")
                self.dataplane.send(0, 1, bytes(template))
                if i % 8 == 7:  # pace in short bursts: BMv2's pcap input loses long ones
                    ahead = start + (i + 1) / self.RATE_PPS - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            self.drain()
            bmv2_reports += self.reports(timeout=2.0)
            all_qps += qps
            all_windows += [100 + w] * len(qps)
        sent = len(all_qps)
        assert sent >= 100_000
        after = {i: self.sw.read_counter(SEGMENT_LIST_LOAD, i).packet_count for i in (1, 2)}
        carried = {i: after[i] - before[i] for i in (1, 2)}
        assert sum(carried.values()) == sent, f"BMv2 lost packets: {carried} of {sent}"

        model = Sketch(hash_key=secret).process(
            self.as_packets(all_qps, all_windows, len(template)),
            FlowKeyType.SRC_DST_QP,
            threshold=self.THRESHOLD,
        )
        want = sorted(
            (all_qps[j], int(w), int(e))
            for j, w, e in zip(model.packet, model.window, model.estimate, strict=True)
        )
        got = sorted((r.flow.dest_qp, r.window, r.estimate) for r in bmv2_reports)
        assert len(want) >= self.WINDOWS * 12
        assert got == want
        lists = Counter(
            sr_list_member([(APN_TRAINING, 128), (qp, 24)], [1, 1]) + 1 for qp in all_qps
        )
        assert carried == {1: lists[1], 2: lists[2]}

    @staticmethod
    def as_packets(qps: list[int], windows: list[int], frame_len: int) -> Packets:
        n = len(qps)

        def addr(address: str) -> np.ndarray:
            packed = ipaddress.IPv6Address(address).packed * n
            return np.frombuffer(packed, dtype=np.uint8).reshape(n, 16)

        return Packets(
            src=addr(HOST_SRC),
            dst=addr(DST),
            proto=np.full(n, 17, np.uint8),
            sport=np.full(n, 49152, np.uint16),
            dport=np.full(n, 4791, np.uint16),
            dest_qp=np.array(qps, np.uint32),
            length=np.full(n, frame_len, np.uint32),
            window=np.array(windows, np.uint32),
        )
