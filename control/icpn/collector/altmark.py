"""Alternate-marking loss (RFC 9341) from the per-(FlowMonID, colour) counters that every node
keeps (`altmark_colors`, index ``icpn.features.ifit.altmark_index``).

RFC 9341 section 3.1: the headend colours a flow's packets, switching colour every period T;
each node counts packets per colour; a colour's *block* is comparable between nodes once the
colour has switched and every packet of the block has arrived everywhere, i.e. after a guard
time (the RFC reads counters in the middle of the next period, a margin of T/2, and wants
T far above the path delay and reordering). The counters are cumulative, so a block's
count at a node is the difference of two readings taken while that colour was idle; the
difference between two nodes' counts of the same block is the loss between them.

When is a block of colour c finished? The monitor has no access to the headend's clock,
so it uses what the *reference* node (the first node on the path, which counts every
packet it marks) shows:

* the colour switched: the other colour's counter grew after c's last growth, or one whole
  period T passed with no growth of c (then the period of c's last packet has ended); and
* a guard time passed since the switch (by default T/2);
* and c did not grow again at the reference when re-read: the reference is read *after*
  the other nodes, so a stable reference proves no packet of a newer c block was counted
  anywhere. If c grew, the block simply continues (blocks merge) and is measured later.

A block is measured against the previous finished reading, so the first block seen after
the monitor starts only sets the baseline, unless the reference had never counted that
colour (then zero everywhere is an exact baseline).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import finsy as fy

from icpn.features.ifit import ALTMARK_COUNTER, altmark_index

US = 1e-6
#: Finished blocks kept in memory (the sinks see every one).
MAX_BLOCKS_KEPT = 10_000


class CounterSource(Protocol):
    """What the monitor needs of a switch (``icpn.p4rt.SwitchClient`` has it)."""

    async def read_counters(self, counter: str) -> dict[int, fy.P4CounterData]: ...


class LossCounts:
    """``lost`` and ``ratio`` of whatever has ``sent`` and ``received`` packet counts."""

    sent: int
    received: int

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def ratio(self) -> float:
        return self.lost / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class SegmentLoss(LossCounts):
    """Packets of one block lost between two nodes (``end_to_end``: first to last)."""

    upstream: str
    downstream: str
    sent: int
    received: int
    end_to_end: bool = False


@dataclass(frozen=True)
class AltmarkBlock:
    """One finished colour block of one flow: packets and bytes per node (path order)."""

    flow_mon_id: int
    colour: int
    number: int  # blocks of this flow measured so far, from 1
    finished_at: float  # wall clock, seconds since the epoch
    packets: dict[str, int]
    octets: dict[str, int]

    def segments(self) -> list[SegmentLoss]:
        """Loss between consecutive nodes, then end to end (when there are 3+ nodes,
        end to end is not one of the segments; with 2 it is the same and is still given)."""
        names = list(self.packets)
        out = [
            SegmentLoss(a, b, self.packets[a], self.packets[b])
            for a, b in itertools.pairwise(names)
        ]
        if len(names) >= 2:
            first, last = names[0], names[-1]
            out.append(SegmentLoss(first, last, self.packets[first], self.packets[last], True))
        return out


@dataclass
class _ColourState:
    baseline: dict[str, tuple[int, int]] | None = None  # node -> (packets, octets)
    open: bool = False  # the reference counted packets not yet in a finished block
    last_growth: float | None = None  # monotonic time of the last growth at the reference
    switched_at: float | None = None  # when the other colour was first seen after that
    ref_value: int = 0


@dataclass
class _FlowState:
    colours: tuple[_ColourState, _ColourState] = field(
        default_factory=lambda: (_ColourState(), _ColourState())
    )
    blocks: int = 0
    started: bool = False


Snapshot = dict[str, dict[int, fy.P4CounterData]]
BlockSink = Callable[[AltmarkBlock], None]
BaselineSink = Callable[[int, int], None]
"""Called with (FlowMonID, colour) when a block closed without being measured (it only set
the baseline: the first block after start or after a switch restart): whoever counts that
colour elsewhere (reports, :mod:`icpn.collector.paths`) starts over there too."""


class AltmarkMonitor:
    """Polls ``altmark_colors`` on ``nodes`` (in path order: the first that counted a flow
    is its reference) and emits an :class:`AltmarkBlock` per finished block."""

    def __init__(
        self,
        nodes: Mapping[str, CounterSource],
        flow_mon_ids: Sequence[int],
        period_log2_us: int,
        *,
        guard_s: float | None = None,
        sinks: list[BlockSink] | None = None,
        baseline_sinks: list[BaselineSink] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not nodes:
            raise ValueError("alternate-marking monitor needs at least one node")
        if not 0 <= period_log2_us < 48:
            raise ValueError(f"period_log2_us must be 0..47, not {period_log2_us}")
        self.nodes = dict(nodes)
        self.flow_mon_ids = list(dict.fromkeys(flow_mon_ids))
        self.period_s = (1 << period_log2_us) * US
        self.guard_s = self.period_s / 2 if guard_s is None else guard_s
        self.sinks: list[BlockSink] = list(sinks or [])
        self.baseline_sinks: list[BaselineSink] = list(baseline_sinks or [])
        self.clock = clock
        self.wall_clock = wall_clock
        self.flows = {f: _FlowState() for f in self.flow_mon_ids}
        self.blocks: deque[AltmarkBlock] = deque(maxlen=MAX_BLOCKS_KEPT)  # the latest ones
        self.latest: dict[int, AltmarkBlock] = {}
        self.poll_errors: dict[str, int] = dict.fromkeys(self.nodes, 0)
        self.polls = 0

    @property
    def suggested_interval_s(self) -> float:
        """Poll at T/4 (at least every 50 ms is plenty for BMv2): the switch is then seen
        within a quarter period and the guard is met well before c comes back."""
        return max(self.period_s / 4, 0.05)

    @property
    def settled(self) -> bool:
        """Whether every packet a reference counted is in a finished block (no colour of
        any flow is open): after the traffic stops, the blocks then cover all of it."""
        return all(not cs.open for state in self.flows.values() for cs in state.colours)

    async def _read(self) -> tuple[Snapshot, set[str]]:
        """Read every node; the reference-candidate order matters: the first node is read
        last, so its stability covers the others' readings (see the module docstring)."""
        names = list(self.nodes)
        order = names[1:] + names[:1]
        snapshot: Snapshot = {}
        failed: set[str] = set()
        for name in order:
            try:
                snapshot[name] = await self.nodes[name].read_counters(ALTMARK_COUNTER)
            except Exception:  # any failure: a switch down must not stop the others
                self.poll_errors[name] += 1
                failed.add(name)
        return snapshot, failed

    async def poll_once(self) -> list[AltmarkBlock]:
        """Take one snapshot of every node and return the blocks it finished."""
        snapshot, failed = await self._read()
        now = self.clock()
        self.polls += 1
        finished: list[AltmarkBlock] = []
        if failed:
            return finished  # a partial snapshot cannot close a block consistently
        for flow_mon_id, state in self.flows.items():
            finished += self._update(flow_mon_id, state, snapshot, now)
        for block in finished:
            self.blocks.append(block)
            self.latest[block.flow_mon_id] = block
            for sink in self.sinks:
                sink(block)
        return finished

    def _values(
        self, snapshot: Snapshot, flow_mon_id: int, colour: int
    ) -> dict[str, tuple[int, int]]:
        index = altmark_index(flow_mon_id, colour)
        out = {}
        for name in self.nodes:
            data = snapshot[name].get(index)
            out[name] = (data.packet_count, data.byte_count) if data else (0, 0)
        return out

    def _update(
        self, flow_mon_id: int, state: _FlowState, snapshot: Snapshot, now: float
    ) -> list[AltmarkBlock]:
        values = [self._values(snapshot, flow_mon_id, c) for c in (0, 1)]
        # The reference: the first node (path order) that ever counted this flow.
        totals = {n: values[0][n][0] + values[1][n][0] for n in self.nodes}
        on_path = [n for n in self.nodes if totals[n] > 0]
        if not on_path:
            if not state.started:  # nothing ever sent: zero everywhere is exact
                for cs in state.colours:
                    cs.baseline = dict.fromkeys(self.nodes, (0, 0))
                state.started = True
            return []
        ref = on_path[0]
        grew = [False, False]
        for c, cs in enumerate(state.colours):
            ref_now = values[c][ref][0]
            if not state.started:
                if ref_now == 0:
                    cs.baseline = dict(values[c])
                else:  # mid-block: wait for it to finish, then take the baseline
                    cs.open, cs.last_growth = True, now
                cs.ref_value = ref_now
                continue
            if cs.baseline is not None and any(
                values[c][n][0] < cs.baseline[n][0] for n in self.nodes
            ):  # a counter went back: the switch restarted; start over for this colour
                cs.baseline, cs.open, cs.last_growth = None, True, now
            if ref_now != cs.ref_value:
                grew[c] = True
                cs.ref_value = ref_now
                cs.open, cs.last_growth, cs.switched_at = True, now, None
        state.started = True
        finished = []
        for c, cs in enumerate(state.colours):
            other = 1 - c
            if cs.open and grew[other] and not grew[c] and cs.switched_at is None:
                cs.switched_at = now
            if not cs.open or grew[c] or cs.last_growth is None:
                continue
            switched_long_ago = cs.switched_at is not None and now - cs.switched_at >= self.guard_s
            period_over = now - cs.last_growth >= self.period_s + self.guard_s
            if not (switched_long_ago or period_over):
                continue
            cs.open, cs.switched_at = False, None
            if cs.baseline is None:
                cs.baseline = dict(values[c])
                for baseline_sink in self.baseline_sinks:
                    baseline_sink(flow_mon_id, c)
                continue
            nodes = on_path  # a node that never counted the flow is not on its path
            state.blocks += 1
            block = AltmarkBlock(
                flow_mon_id=flow_mon_id,
                colour=c,
                number=state.blocks,
                finished_at=self.wall_clock(),
                packets={n: values[c][n][0] - cs.baseline[n][0] for n in nodes},
                octets={n: values[c][n][1] - cs.baseline[n][1] for n in nodes},
            )
            cs.baseline = dict(values[c])
            finished.append(block)
        return finished
