"""Traffic sender rate: icpn.traffic.sender (AF_PACKET + sendmmsg) against scapy's sendp().

Both send the same prebuilt RoCEv2 frames (64 QPs on one 5-tuple, from
icpn.traffic.generators) into one end of a veth pair that this bench creates and removes;
what arrived is read from the other end's rx_packets counter, so every rate is reported
twice: as accepted by the kernel (``*_pps``) and as delivered to the peer
(``*_delivered_pps``). Rounds interleave the senders; medians are reported:

* the fast sender flat out for a fixed time, through the qdisc layer (its default) and with
  PACKET_QDISC_BYPASS;
* scapy ``sendp(list_of_packets)``: one call with the whole list (its own batching);
* the fast sender paced at a target rate, to show how close the token bucket gets.

Writes build/bench/sender.json (every figure named with its unit) and sender.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scapy.layers.l2 import Ether
from scapy.sendrecv import sendp

from icpn.paths import BUILD_DIR
from icpn.targets import veth
from icpn.traffic.generators import RoceSpec, roce_flows
from icpn.traffic.sender import SendResult, rx_packets, send_frames

#: A veth "switch number" for the bench, so its pair never shares a name with a switch's.
BENCH_SWITCH_NO = 0xB
SETTLE_S = 0.3  # time for the peer's backlog to drain before its counter is read


@dataclass(frozen=True)
class Run:
    sender: str
    sent: int
    elapsed_s: float
    delivered: int

    @property
    def pps(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def delivered_pps(self) -> float:
        return self.delivered / self.elapsed_s if self.elapsed_s > 0 else 0.0


def frames(count: int, mtu: int) -> list[bytes]:
    spec = RoceSpec(qps=64, mtu=mtu, message_bytes=mtu, messages_per_qp=-(-count // 64))
    return [f.data for f in itertools.islice(roce_flows(spec), count)]


def fast(pair: veth.VethPair, data: list[bytes], seconds: float, **kw: Any) -> Run:
    name = kw.pop("name")
    before = rx_packets(pair.switch_if)
    res: SendResult = send_frames(pair.host_if, data, duration=seconds, progress=False, **kw)
    time.sleep(SETTLE_S)
    return Run(name, res.sent, res.elapsed_s, rx_packets(pair.switch_if) - before)


def scapy_sendp(pair: veth.VethPair, data: list[bytes], packets: int) -> Run:
    pkts = [Ether(data[i % len(data)]) for i in range(packets)]
    before = rx_packets(pair.switch_if)
    start = time.perf_counter()
    sendp(pkts, iface=pair.host_if, verbose=False)
    elapsed = time.perf_counter() - start
    time.sleep(SETTLE_S)
    return Run("scapy_sendp", packets, elapsed, rx_packets(pair.switch_if) - before)


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = frames(256, args.mtu)
    pair = veth.pair_names(os.getpid(), BENCH_SWITCH_NO, 1)
    veth.create([pair])
    runs: list[Run] = []
    try:
        fast(pair, data, 0.2, name="warmup")
        for r in range(args.rounds):
            batch = [
                fast(pair, data, args.seconds, name="af_packet_sendmmsg"),
                fast(
                    pair,
                    data,
                    args.seconds,
                    name="af_packet_sendmmsg_qdisc_bypass",
                    qdisc_bypass=True,
                ),
                scapy_sendp(pair, data, args.scapy_packets),
                fast(pair, data, args.seconds, name="af_packet_sendmmsg_paced", pps=args.paced_pps),
            ]
            runs += batch
            for run_ in batch:
                print(
                    f"round {r + 1}/{args.rounds} {run_.sender:>26}: sent {run_.sent:,} in "
                    f"{run_.elapsed_s:.2f} s = {run_.pps:,.0f}/s, delivered "
                    f"{run_.delivered_pps:,.0f}/s",
                    flush=True,
                )
    finally:
        veth.delete([pair])
    return summarize(runs, data, args)


def summarize(runs: list[Run], data: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    def med(sender: str, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in runs if r.sender == sender))

    report: dict[str, Any] = {}
    for sender in (
        "af_packet_sendmmsg",
        "af_packet_sendmmsg_qdisc_bypass",
        "scapy_sendp",
        "af_packet_sendmmsg_paced",
    ):
        report[f"{sender}_pps"] = round(med(sender, "pps"), 1)
        report[f"{sender}_delivered_pps"] = round(med(sender, "delivered_pps"), 1)
    report["speedup_ratio"] = round(report["af_packet_sendmmsg_pps"] / report["scapy_sendp_pps"], 2)
    report["paced_target_pps"] = args.paced_pps
    report["paced_achieved_over_target_ratio"] = round(
        report["af_packet_sendmmsg_paced_pps"] / args.paced_pps, 4
    )
    report |= {
        "frame_bytes": len(data[0]),
        "distinct_frames": len(data),
        "fast_sender_seconds_per_round": args.seconds,
        "scapy_packets_per_round": args.scapy_packets,
        "rounds": args.rounds,
        "runs": [r.__dict__ | {"pps": round(r.pps, 1)} for r in runs],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "sender.json").write_text(json.dumps(report, indent=2) + "\n")
    r = report
    text = (
        "# Traffic sender: AF_PACKET + sendmmsg vs scapy sendp\n\n"
        f"{len(data[0])}-byte RoCEv2 frames ({len(data)} distinct, cycled) into a veth pair; "
        f"medians of {args.rounds} interleaved rounds; delivered = the peer's rx_packets.\n\n"
        "| sender | accepted packets/s | delivered packets/s |\n|---|---|---|\n"
        f"| icpn sendmmsg (default) | {r['af_packet_sendmmsg_pps']:,.0f} | "
        f"{r['af_packet_sendmmsg_delivered_pps']:,.0f} |\n"
        f"| icpn sendmmsg, PACKET_QDISC_BYPASS | {r['af_packet_sendmmsg_qdisc_bypass_pps']:,.0f} | "
        f"{r['af_packet_sendmmsg_qdisc_bypass_delivered_pps']:,.0f} |\n"
        f"| scapy sendp(list) | {r['scapy_sendp_pps']:,.0f} | "
        f"{r['scapy_sendp_delivered_pps']:,.0f} |\n"
        f"| icpn sendmmsg paced at {args.paced_pps:,.0f}/s | "
        f"{r['af_packet_sendmmsg_paced_pps']:,.0f} | "
        f"{r['af_packet_sendmmsg_paced_delivered_pps']:,.0f} |\n\n"
        f"speedup (sendmmsg / scapy) = **{r['speedup_ratio']}**; "
        f"paced achieved / target = {r['paced_achieved_over_target_ratio']}\n"
    )
    (out / "sender.md").write_text(text)
    print("\n" + text + f"\nwritten: {out / 'sender.json'} and sender.md")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="fast sender time per run")
    parser.add_argument("--scapy-packets", type=int, default=20_000, help="per scapy run")
    parser.add_argument("--paced-pps", type=float, default=100_000, help="paced run target")
    parser.add_argument("--mtu", type=int, default=256, help="RoCE payload per frame")
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20 or not 0 < args.seconds <= 30:
        parser.error("need 1 <= rounds <= 20 and 0 < seconds <= 30")
    if not 1 <= args.scapy_packets <= 1_000_000 or args.paced_pps <= 0:
        parser.error("need 1 <= scapy-packets <= 1,000,000 and paced-pps > 0")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        parser.exit(2, "bench: cannot run: needs root (CAP_NET_ADMIN) and iproute2 for veths\n")
    run(args)


if __name__ == "__main__":
    main()
