"""Controller benchmarks against BMv2, in one run (issue 5):

1. **Table writes per second**, one update per WriteRequest and batched (100 and 1000 per
   request), through icpn's client (finsy underneath) and through a plain gRPC client that
   builds the P4Runtime protobufs itself: the baseline says what the client layer costs.
   Each mode inserts the same IPv4 routes (``routing_v4``: LPM, direct action) into an
   emptied table; rounds alternate between the clients; the median is reported.
2. **Restore after a switch restart**, against table size (12 to 16k routes; the IPv4
   table holds 16384): the controller stays connected to a switch holding the routes plus
   its base entry; the switch is killed, stays down a few seconds and restarts; the time
   from its gRPC server accepting connections to the switch holding every entry again
   (reconnect, pipeline push, read back, diff, write) is measured (target: 2 s whatever
   the size), and the switch is read back for missing entries.
3. **Reconciliation after a controller restart** against a switch holding 10k routes
   (read back + diff, nothing written) and with 1% of the entries changed.

Writes build/bench/controller.json (every figure named with its unit) and controller.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import finsy as fy
import grpc
from finsy.proto import p4r, p4r_grpc

from icpn.controller import Controller, SwitchConfig, reconcile
from icpn.features.routing import NextHop, my_station, route_v4
from icpn.intent import Intent
from icpn.p4rt import SwitchClient, SwitchTarget
from icpn.paths import BUILD_DIR
from icpn.targets import toolchain
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch

ROUTER_MAC = "00:00:00:00:aa:01"
HOP = NextHop(1, ROUTER_MAC, "00:00:00:00:00:02")
#: Every connection gets a higher election id than the last: BMv2 may not have closed the
#: previous round's stream yet, and two streams may not share an id.
_election_ids = itertools.count(10)


def routes(count: int, *, port: int = 1) -> list[fy.P4TableEntry]:
    """``count`` distinct /24 IPv4 routes out of ``port``."""
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    hop = NextHop(port, HOP.router_mac, HOP.neighbor_mac)
    return [route_v4(f"{ipaddress.IPv4Address(base + (i << 8))}/24", hop) for i in range(count)]


# -- plain gRPC baseline -------------------------------------------------------------------
class PlainClient:
    """A P4Runtime client with nothing but grpcio and the generated protobufs: arbitration
    on the stream channel, then WriteRequests built field by field from P4Info ids."""

    def __init__(self, address: str, device_id: int, schema: fy.P4Schema) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = p4r_grpc.P4RuntimeStub(self.channel)
        self.device_id = device_id
        table = schema.tables["routing_v4"]
        action = schema.actions["set_next_hop_v4"]
        self.table_id = table.id
        self.field_id = table.match_fields["ipv4_dst"].id
        self.action_id = action.id
        self.param_ids = {p.name: p.id for p in action.params}
        self._requests: asyncio.Queue[p4r.StreamMessageRequest | None] = asyncio.Queue()
        self._stream: Any = None

    async def arbitrate(self) -> None:
        async def requests() -> Any:
            while (item := await self._requests.get()) is not None:
                yield item

        self._stream = self.stub.StreamChannel(requests())
        hello = p4r.StreamMessageRequest()
        hello.arbitration.device_id = self.device_id
        self.election_id = next(_election_ids)
        hello.arbitration.election_id.low = self.election_id
        await self._requests.put(hello)
        reply = await self._stream.read()
        if reply.arbitration.status.code != 0:
            raise RuntimeError(f"plain client is not primary: {reply}")

    def update(self, index: int, kind: p4r.Update.Type.ValueType) -> p4r.Update:
        """The same route as :func:`routes` (index ``index``) as a raw Update."""
        update = p4r.Update(type=kind)
        entry = update.entity.table_entry
        entry.table_id = self.table_id
        match = entry.match.add()
        match.field_id = self.field_id
        match.lpm.value = (int(ipaddress.IPv4Address("10.0.0.0")) + (index << 8)).to_bytes(4, "big")
        match.lpm.prefix_len = 24
        action = entry.action.action
        action.action_id = self.action_id
        for name, value in (("port", b"\x01"), ("smac", b"\xaa\x01"), ("dmac", b"\x02")):
            param = action.params.add()
            param.param_id = self.param_ids[name]
            param.value = value
        return update

    async def write(
        self, count: int, batch: int, kind: p4r.Update.Type.ValueType = p4r.Update.INSERT
    ) -> None:
        for start in range(0, count, batch):
            request = p4r.WriteRequest(device_id=self.device_id)
            request.election_id.low = self.election_id
            request.updates.extend(
                self.update(i, kind) for i in range(start, min(count, start + batch))
            )
            await self.stub.Write(request)

    async def close(self) -> None:
        await self._requests.put(None)
        await self.channel.close()


# -- 1. writes per second ------------------------------------------------------------------
async def timed(work: Callable[[], Coroutine[Any, Any, Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def icpn_round(target: SwitchTarget, count: int, batch: int) -> float:
    entries = routes(count)
    async with SwitchClient(replace(target, election_id=next(_election_ids))) as client:
        seconds = await timed(lambda: client.insert(entries, batch_size=batch))
        await client.delete(entries, batch_size=1000)
    return count / seconds


async def plain_round(address: str, schema: fy.P4Schema, count: int, batch: int) -> float:
    client = PlainClient(address, 0, schema)
    try:
        await client.arbitrate()
        seconds = await timed(lambda: client.write(count, batch))
        await client.write(count, 1000, p4r.Update.DELETE)
    finally:
        await client.close()
    return count / seconds


def write_rates(
    switch: Bmv2Switch, art: build.Artifacts, rounds: int, count: int
) -> dict[str, float]:
    target = SwitchTarget("bench", switch.grpc_address, p4info=art.p4info, p4blob=art.json)
    schema = fy.P4Schema(art.p4info)
    samples: dict[str, list[float]] = {}
    for r in range(rounds):
        for batch in (1, 100, 1000):
            n = min(count, 2000) if batch == 1 else count
            for client in ("icpn", "plain_grpc"):
                if client == "icpn":
                    rate = asyncio.run(icpn_round(target, n, batch))
                else:
                    rate = asyncio.run(plain_round(switch.grpc_address, schema, n, batch))
                key = f"{client}_batch{batch}_writes_per_s"
                samples.setdefault(key, []).append(rate)
                print(f"  round {r + 1}/{rounds}: {key} = {rate:,.0f}", flush=True)
    figures = {key: round(statistics.median(v), 1) for key, v in samples.items()}
    for batch in (1, 100, 1000):
        figures[f"icpn_over_plain_grpc_batch{batch}_ratio"] = round(
            figures[f"icpn_batch{batch}_writes_per_s"]
            / figures[f"plain_grpc_batch{batch}_writes_per_s"],
            3,
        )
    figures["icpn_batch1000_over_batch1_ratio"] = round(
        figures["icpn_batch1000_writes_per_s"] / figures["icpn_batch1_writes_per_s"], 1
    )
    return figures


# -- 2. reconciliation ---------------------------------------------------------------------
def bench_intent(address: str) -> Intent:
    return Intent.model_validate(
        {"switches": {"s1": {"grpc": address, "router_mac": ROUTER_MAC, "sid": "fc00:1::1"}}}
    )


async def restore_time(
    switch: Bmv2Switch, art: build.Artifacts, count: int, down_s: float
) -> dict[str, float]:
    """A controller holds a switch with ``count`` routes plus its base entry; the switch
    crashes, stays down ``down_s`` (reconnect back-offs grow meanwhile) and restarts. The
    figure is the time from its gRPC server accepting connections again (``restart()``
    returns then) to the controller having reconnected, pushed the pipeline and written
    every entry; the switch is then read back for missing entries."""
    desired = [my_station(ROUTER_MAC), *routes(count)]
    intent = bench_intent(switch.grpc_address)
    ctl = Controller(
        intent,
        {"s1": SwitchConfig("s1", desired)},
        art,
        election_id=next(_election_ids),
        progress=lambda _m: None,
    )
    status = ctl.status["s1"]
    figures: dict[str, float] = {}
    task = asyncio.ensure_future(ctl.run())
    try:
        await until(lambda: status.last_plan is not None, 300)
        connects = status.connects
        switch.crash()
        await asyncio.sleep(down_s)
        switch.restart()
        serving = time.perf_counter()
        await until(lambda: status.connects > connects and status.last_plan is not None, 300)
        figures[f"switch_serving_to_state_restored_{count}_entries_s"] = round(
            time.perf_counter() - serving, 3
        )
        assert status.last_reconcile_s is not None
        figures[f"switch_restart_reconcile_{count}_entries_s"] = round(status.last_reconcile_s, 3)
        plan = status.last_plan
        assert plan is not None and len(plan.inserts) == len(desired), plan and plan.summary()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    async with SwitchClient(ctl.target("s1", election_id=next(_election_ids))) as client:
        missing = plan_of(await reconcile(client, desired, dry_run=True))
    figures[f"switch_restart_missing_entries_{count}_entries"] = missing
    return figures


def plan_of(plan: Any) -> int:
    """Entries a dry-run reconcile would still write (missing or different)."""
    return len(plan.inserts) + len(plan.modifies)


async def reconcile_times(switch: Bmv2Switch, art: build.Artifacts, count: int) -> dict[str, float]:
    """A controller restart against a switch holding ``count`` routes: read back and diff
    with nothing to write, and with 1% of the routes changed."""
    desired = [my_station(ROUTER_MAC), *routes(count)]
    figures: dict[str, float] = {}
    target = SwitchTarget(
        "s1",
        switch.grpc_address,
        p4info=art.p4info,
        p4blob=art.json,
        election_id=next(_election_ids),
    )
    async with SwitchClient(target) as client:
        await reconcile(client, desired)
        started = time.perf_counter()
        plan = await reconcile(client, desired)
        figures[f"controller_restart_reconcile_{count}_entries_nothing_to_write_s"] = round(
            time.perf_counter() - started, 3
        )
        assert len(plan) == 0, plan.summary()
        k = count // 100  # the last 1% of the routes move to port 2
        changed = [*desired[:-k], *routes(count, port=2)[-k:]]
        started = time.perf_counter()
        plan = await reconcile(client, changed)
        figures[f"controller_restart_reconcile_{count}_entries_1pct_changed_s"] = round(
            time.perf_counter() - started, 3
        )
        figures["controller_restart_1pct_changed_entries_written"] = len(plan)
    return figures


async def until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        await asyncio.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per write mode")
    parser.add_argument("--writes", type=int, default=10000, help="routes per batched round")
    parser.add_argument("--reconcile", type=int, default=10000, help="entries to reconcile")
    parser.add_argument(
        "--restore-sizes",
        type=int,
        nargs="+",
        default=[12, 1000, 10000, 16000],
        help="routes on the switch for the restore-after-restart figures",
    )
    parser.add_argument("--down-s", type=float, default=3.0, help="how long the switch is down")
    parser.add_argument("--skip-writes", action="store_true", help="only the restore figures")
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    reason = toolchain.bmv2_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"controller bench needs BMv2: {reason}")
    art = build.compile_program("icpn")
    figures: dict[str, float] = {}
    with Bmv2Switch("bench-ctl", Bmv2Options(num_ports=2, log_level="off")) as switch:
        print("table writes per second (icpn client vs plain gRPC, 1/100/1000 per request)")
        if not args.skip_writes:
            figures |= write_rates(switch, art, args.rounds, args.writes)
        for count in args.restore_sizes:
            print(f"restoring {count} entries after a switch restart ({args.down_s} s down)")
            figures |= asyncio.run(restore_time(switch, art, count, args.down_s))
        print(f"reconciling {args.reconcile} entries after a controller restart")
        figures |= asyncio.run(reconcile_times(switch, art, args.reconcile))
    report = {
        "benchmark": "controller",
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "method": {
            "table": "routing_v4 (LPM /24, direct action)",
            "rounds": args.rounds,
            "routes_per_batched_round": args.writes,
            "routes_per_single_round": min(args.writes, 2000),
            "statistic": "median over rounds",
            "restore": f"switch down {args.down_s} s; from its gRPC port accepting "
            "connections to every entry written",
        },
        "figures": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "controller.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Controller benchmark (BMv2)", "", "| figure | value |", "|---|---|"]
    lines += [f"| `{k}` | {v:,} |" for k, v in figures.items()]
    (args.out / "controller.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written: {args.out / 'controller.json'} and controller.md")


if __name__ == "__main__":
    main()
