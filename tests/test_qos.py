"""Differentiated bearing on the controller side: traffic classes and tenants in the intent
(validated with file, line and field), rendered into qos.p4 entries and meter configs,
reconciled (meters are modified or reset, never inserted or deleted), and queue rates sent
over BMv2's Thrift protocol (checked against an in-process server that decodes it)."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import finsy as fy
import pytest

from icpn.constants import MeterColor
from icpn.controller.reconcile import plan
from icpn.controller.render import render
from icpn.features import qos
from icpn.intent import IntentError, load_intent
from icpn.targets import toolchain
from icpn.targets.bmv2 import build
from tests.test_controller import INTENT as BASE
from tests.test_intent import line_of, problems, write

QOS = """\
traffic_classes:
  - {name: inference, queue: 6, ecn_queue_packets: 10, rate_pps: 5000}
  - {name: bulk, queue: 1}
  - {name: scavenger, queue: 0}
tenants:
  - name: tenant-a
    user_group: 0x42
    cir_bytes_per_s: 125000
    cbs_bytes: 15000
    pir_bytes_per_s: 250000
    pbs_bytes: 30000
    red: remark
    remark_class: scavenger
"""
INTENT = BASE.replace("    dscp: 34\n", "    dscp: 34\n    traffic_class: bulk\n") + QOS


def test_classes_and_tenants_render_on_the_right_switches(tmp_path: Path) -> None:
    configs = render(load_intent(write(tmp_path, INTENT)))
    for name, config in configs.items():
        classes = [e for e in config.entities if getattr(e, "table_id", "") == qos.QOS_CLASS]
        assert len(classes) == 1, name  # every hop reads the APN ID
        assert classes[0].action.args["tc"] == 1
    edge_meters = {
        name: [
            e
            for e in c.entities
            if isinstance(e, fy.P4MeterEntry) and e.meter_id == qos.TENANT_METER
        ]
        for name, c in configs.items()
    }
    assert {n for n, m in edge_meters.items() if m} == {"sh1", "nx1"}  # edge ports only
    meter = edge_meters["sh1"][0]
    assert (meter.index, meter.config) == (
        0,
        fy.P4MeterConfig(cir=125000, cburst=15000, pir=250000, pburst=30000),
    )
    rule = next(e for e in configs["sh1"].entities if getattr(e, "table_id", "") == qos.QOS_TENANT)
    assert rule.action.args == {"index": 0, "drop_red": 0, "remark_dscp": 8, "remark_tc": 0}
    # ECN and rates for the inference queue on every port the intent gives gz1 (links 1, 2).
    ecn = [e for e in configs["gz1"].entities if getattr(e, "table_id", "") == qos.QUEUE_ECN]
    assert sorted(e.match["port"] for e in ecn) == [1, 2]
    assert configs["gz1"].queue_rates == {(1, 6): 5000, (2, 6): 5000}


@pytest.mark.parametrize(
    ("change", "needle", "at", "message"),
    [
        ("{name: bulk, queue: 1}", "{name: bulk, queue: 6}", "name: bulk", "queue 6 is already"),
        ("pir_bytes_per_s: 250000", "pir_bytes_per_s: 1000", "name: tenant-a", "PIR >= CIR"),
        ("remark_class: scavenger", "remark_class: gold", "remark_class", "unknown traffic_class"),
        ("traffic_class: bulk", "traffic_class: silver", "traffic_class: s", "unknown traffic"),
        ("queue: 0}", "queue: 8}", "queue: 8", "less than 8"),
    ],
)
def test_bad_qos_intent_names_line_and_field(
    tmp_path: Path, change: str, needle: str, at: str, message: str
) -> None:
    bad = INTENT.replace(change, needle)
    assert bad != INTENT
    found = problems(tmp_path, bad)
    line = line_of(bad, at)
    assert any(f"intent.yaml:{line}:" in p and message in p for p in found), (line, found)


def test_red_drop_with_a_remark_class_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IntentError, match=r"tenants\.0\.remark_class: red packets are dropped"):
        load_intent(write(tmp_path, INTENT.replace("red: remark", "red: drop")))


@pytest.fixture(scope="module")
def schema() -> fy.P4Schema:
    if toolchain.p4c().path is None:
        pytest.skip(f"p4c not installed: {toolchain.INSTALL_HINT}")
    return fy.P4Schema(build.compile_program("icpn").p4info)


def test_meters_are_modified_or_reset_never_inserted_or_deleted(schema: fy.P4Schema) -> None:
    wanted = qos.meter_config(3, qos.TrTcm(1000, 3000, 2000, 6000))
    stale = qos.meter_config(4, qos.TrTcm(1000, 3000, 2000, 6000))
    same = qos.meter_config(5, qos.TrTcm(10, 30, 20, 60))
    todo = plan([wanted, same], [stale, same], schema)
    assert todo.inserts == [] and todo.deletes == []
    assert todo.unchanged == 1
    reset = fy.P4MeterEntry(qos.TENANT_METER, index=4)
    assert sorted(todo.modifies, key=lambda m: m.index) == [wanted, reset]
    changed = qos.meter_config(3, qos.TrTcm(1000, 3000, 4000, 6000))
    assert plan([changed], [wanted], schema).modifies == [changed]


def test_trtcm_colours_follow_rfc_2698() -> None:
    meter = qos.TrTcm(100, 300, 200, 600)
    assert meter.color(300, 600, 100) is MeterColor.GREEN
    assert meter.color(50, 600, 100) is MeterColor.YELLOW
    assert meter.color(300, 50, 100) is MeterColor.RED
    with pytest.raises(ValueError, match="below CIR"):
        qos.TrTcm(200, 300, 100, 600)


class _FakeThrift:
    """Decodes one strict-binary Thrift call per connection and answers ``result``."""

    def __init__(self, result: int = 0) -> None:
        self.result = result
        self.calls: list[tuple[str, list[int]]] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(4096)
                version, name_len = struct.unpack("!II", data[:8])
                assert version >> 16 == 0x8001 and version & 0xFF == 1  # a CALL
                name = data[8 : 8 + name_len].decode()
                seq = data[8 + name_len : 12 + name_len]
                at, args = 12 + name_len, []
                while data[at] != 0:
                    ftype = data[at]
                    size = 8 if ftype == 10 else 4
                    args.append(int.from_bytes(data[at + 3 : at + 3 + size], "big", signed=True))
                    at += 3 + size
                self.calls.append((name, args))
                reply_name = name.encode()
                reply = struct.pack("!II", 0x80010002, len(reply_name)) + reply_name + seq
                reply += struct.pack("!bhi", 8, 0, self.result) + b"\x00"
                conn.sendall(reply)

    def close(self) -> None:
        self.server.close()


def test_queue_rates_go_out_as_bmv2s_thrift_calls() -> None:
    server = _FakeThrift()
    try:
        qos.apply_queue_rates(f"127.0.0.1:{server.port}", {(2, 6): 5000, (1, 6): 4000})
        qos.QueueRates(server.port).set_depth(1, 0, 64)
    finally:
        server.close()
    assert server.calls == [
        ("simple_switch:set_egress_priority_queue_rate", [1, 6, 4000]),
        ("simple_switch:set_egress_priority_queue_rate", [2, 6, 5000]),
        ("simple_switch:set_egress_priority_queue_depth", [1, 0, 64]),
    ]


def test_a_refused_queue_rate_is_an_error() -> None:
    server = _FakeThrift(result=1)
    try:
        with pytest.raises(qos.ThriftError, match="bad port or queue"):
            qos.QueueRates(server.port).set_rate(9, 3, 10)
    finally:
        server.close()
    with pytest.raises(ValueError, match=r"queue must be 0\.\.7"):
        qos.QueueRates(1).set_rate(1, 8, 10)
