"""Where elephants go: the one placement algorithm of the elephant manager and the study model.

Pure on purpose: plain values in, decisions out; no I/O, no clock (the time is an
argument), no switch. :class:`icpn.elephant.ElephantManager` feeds it what it reads from a
switch, :class:`icpn.study.model_backend.ManagerModel` what the simulated switch counted;
both act on the same decisions, so a study measures the controller that really runs.

Two decisions:

* :func:`place` — a newly reported elephant goes to the list with the least utilisation
  (load / capacity) once the flows placed since the last measurement are counted at the
  expected elephant rate. Those flows have not been measured yet, so this is an estimate;
  :func:`rebalance` corrects it at the next measurement.
* :func:`rebalance` — from measured rates, move pinned elephants while the busiest list
  carries more than (1 + ``trigger``) x the balanced utilisation (total load / total
  capacity). Greedy, one step at a time: take the busiest list (above the trigger) that has
  an improving step, try every move of one of its flows to another list and every swap of
  one of its flows with a smaller one elsewhere, and make the step that lowers the larger
  of the two lists' utilisations the most, net of its migration cost (``min_gain`` per flow
  moved). This is Graham's LPT rule ("longest
  processing time first", Graham, SIAM J. Appl. Math. 17(2), 1969) applied incrementally
  with a price on migration, as in the reassignment heuristics of Aggarwal, Motwani and Zhu
  ("The load rebalancing problem", SPAA 2003): a bounded number of moves per round, each
  strictly lowering the maximum.

Hysteresis, so that measurement noise does not make flows flap: nothing moves while the
busiest list is within the trigger; a step must gain more than its cost; a flow placed or
moved stays put for ``hold_down_s``; at most ``max_moves`` flows move per round; and the
callers feed it smoothed rates (:func:`smooth`).

Reordering: a RoCE flow that changes path reorders when the new path is faster than the
old one (packets on the new path overtake those still in flight on the old one), and RoCE
go-back-N receivers treat a gap as loss. Flowlet switching (Kandula et al., "Dynamic load
balancing without packet reordering", CCR 37(2), 2007; CONGA, SIGCOMM 2014; LetFlow, NSDI
2017) waits for an idle gap longer than the latency difference; paced RDMA elephants rarely
pause, and the switch keeps no per-flow last-seen time the controller could read. So the
rule here is the latency bound: a flow may go only to a list whose path latency differs
from its current list's by less than ``max_latency_skew_ms`` (for a new elephant, from the
list the deep hash gave it, when known). The worst-case overtaking window is then that
bound; moves per round bound how often it can happen.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


#: A pin's first rate needs at least this share of a poll interval since it took effect. A
#: packet counter read a few ms after the override was installed holds 0, 1 or 2 packets:
#: a rate of nothing or of several elephants, which :func:`smooth` then carried for seconds
#: (on BMv2, pins made just before a poll starved one list for 4 s). Until then the pin
#: counts at the expected elephant rate, as any pin not measured yet. The manager and the
#: study model both apply it.
MIN_RATE_SPAN = 0.5


@dataclass(frozen=True)
class PlacementSettings:
    trigger: float = 0.03  # rebalance while busiest > (1 + trigger) x balanced utilisation
    min_gain: float = 0.01  # a step must lower the max by this share of balanced, per move
    max_moves: int = 4  # flows moved per round
    hold_down_s: float = 1.0  # a flow placed or moved stays at least this long
    max_latency_skew_ms: float = 1.0  # reordering bound between a flow's old and new list
    smoothing: float = 0.3  # weight of the newest measurement (1: no smoothing), see smooth()

    def __post_init__(self) -> None:
        if self.trigger < 0 or self.min_gain < 0 or self.hold_down_s < 0:
            raise ValueError("trigger, min_gain and hold_down_s must be >= 0")
        if self.max_moves < 0 or self.max_latency_skew_ms <= 0:
            raise ValueError("max_moves must be >= 0 and max_latency_skew_ms > 0")
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], not {self.smoothing}")


@dataclass(frozen=True)
class ListState:
    """A segment list: its capacity (any unit, the same for all lists of a policy), its path
    latency, and the rate of its traffic that no override pins (hashed flows), in bytes/s."""

    capacity: float
    latency_ms: float = 0.0
    background: float = 0.0

    def __post_init__(self) -> None:
        if self.capacity <= 0:
            raise ValueError(f"a list's capacity must be > 0, not {self.capacity}")


@dataclass(frozen=True)
class Flow(Generic[K]):
    """A pinned elephant: the list it is on, its measured rate (bytes/s), and when it was
    placed there (seconds, on the caller's clock)."""

    key: K
    list: int
    rate: float
    placed_at: float


@dataclass(frozen=True)
class Move(Generic[K]):
    key: K
    source: int
    target: int


def smooth(previous: float | None, sample: float, settings: PlacementSettings) -> float:
    """A rate as the placement uses it: an exponentially weighted moving average of the
    measurements (the first one taken as is). Mice traffic comes and goes between polls;
    moving elephants after every swing of it would chase noise that the next poll undoes."""
    if previous is None:
        return sample
    return settings.smoothing * sample + (1 - settings.smoothing) * previous


def loads(lists: Sequence[ListState], flows: Sequence[Flow[K]]) -> list[float]:
    """Bytes/s each list carries: its background plus the flows pinned on it."""
    out = [lst.background for lst in lists]
    for flow in flows:
        out[flow.list] += flow.rate
    return out


def expected_rate(flows: Sequence[Flow[K]], default: float) -> float:
    """What an elephant not yet measured is expected to send: the mean measured rate of the
    pinned ones, or ``default`` before any was measured."""
    measured = [f.rate for f in flows if f.rate > 0]
    return sum(measured) / len(measured) if measured else default


def reorder_safe(lists: Sequence[ListState], a: int, b: int, settings: PlacementSettings) -> bool:
    """Whether a flow may change from list ``a`` to list ``b`` (the latency bound)."""
    return abs(lists[a].latency_ms - lists[b].latency_ms) < settings.max_latency_skew_ms


def place(
    lists: Sequence[ListState],
    flows: Sequence[Flow[K]],
    recent: Sequence[int],
    settings: PlacementSettings,
    *,
    origin: int | None = None,
    default_rate: float,
) -> int:
    """The list for a newly reported elephant.

    ``flows``: the measured pinned flows; ``recent``: the lists chosen for flows placed
    since that measurement, each counted at :func:`expected_rate`; ``origin``: the list
    the flow's packets take now (the deep hash's), if known — it wins ties (no path change),
    and only lists within the latency bound of it are candidates.
    """
    if not lists:
        raise ValueError("no segment lists to place on")
    expected = expected_rate(flows, default_rate)
    load = loads(lists, flows)
    for index in recent:
        load[index] += expected
    candidates = [
        i for i in range(len(lists)) if origin is None or reorder_safe(lists, origin, i, settings)
    ]

    def after(i: int) -> tuple[float, bool, int]:
        return ((load[i] + expected) / lists[i].capacity, i != origin, i)

    return min(candidates, key=after)


def rebalance(
    lists: Sequence[ListState],
    flows: Sequence[Flow[K]],
    now: float,
    settings: PlacementSettings,
) -> list[Move[K]]:
    """The moves of one rebalancing round (see the module docstring), in order.

    Each step takes the busiest list above the trigger that has an improving step (when the
    busiest has none — say it holds a single flow — the next one may: fewer lists at the
    peak is progress too). A step replaces the utilisations of its two lists by two values
    below the larger of them, so the sorted utilisations fall lexicographically and the
    round ends; ``max_moves`` bounds it anyway.
    """
    load = loads(lists, flows)
    capacity = [lst.capacity for lst in lists]
    balanced = sum(load) / sum(capacity) if lists else 0.0
    if balanced <= 0:
        return []
    where = {id(f): f.list for f in flows}
    movable = [f for f in flows if f.rate > 0 and now - f.placed_at >= settings.hold_down_s]
    moves: list[Move[K]] = []
    while len(moves) < settings.max_moves:
        order = sorted(range(len(lists)), key=lambda i: (-load[i] / capacity[i], i))
        above = [i for i in order if load[i] / capacity[i] > (1 + settings.trigger) * balanced]
        budget = settings.max_moves - len(moves)
        plan = next(
            (
                p
                for i in above
                if (p := _best_step(lists, load, movable, where, i, budget, balanced, settings))
            ),
            None,
        )
        if plan is None:
            break
        for f, target in plan:
            source = where[id(f)]
            load[source] -= f.rate
            load[target] += f.rate
            where[id(f)] = target
            movable.remove(f)  # once per round
            moves.append(Move(f.key, source, target))
    return moves


def _best_step(
    lists: Sequence[ListState],
    load: list[float],
    movable: list[Flow[K]],
    where: dict[int, int],
    busy: int,
    budget: int,
    balanced: float,
    settings: PlacementSettings,
) -> list[tuple[Flow[K], int]] | None:
    """The best move or swap off list ``busy``: the one that lowers the larger of the two
    lists' utilisations most, net of ``min_gain`` x balanced per flow moved; ties go to the
    step that moves fewer bytes. None when no step gains."""
    capacity = [lst.capacity for lst in lists]
    peak_now = load[busy] / capacity[busy]
    best: tuple[float, float, list[tuple[Flow[K], int]]] | None = None
    for f in (f for f in movable if where[id(f)] == busy):
        for j in range(len(lists)):
            if j == busy or not reorder_safe(lists, busy, j, settings):
                continue
            steps = [(f.rate, [(f, j)])]
            if budget >= 2:  # swap with a smaller flow of list j
                steps += [
                    (f.rate - g.rate, [(f, j), (g, busy)])
                    for g in movable
                    if where[id(g)] == j and g.rate < f.rate
                ]
            for shift, plan in steps:
                peak = max((load[busy] - shift) / capacity[busy], (load[j] + shift) / capacity[j])
                net = peak_now - peak - len(plan) * settings.min_gain * balanced
                moved = sum(g.rate for g, _ in plan)
                if net > 0 and (best is None or (net, -moved) > (best[0], -best[1])):
                    best = (net, moved, plan)
    return None if best is None else best[2]
