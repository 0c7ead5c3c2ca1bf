"""Telemetry-driven re-steering: when to drain a degraded segment list and when to give it
back (issue 12 part 3). Pure: samples and a clock in, decisions out; the elephant manager
applies them (:meth:`icpn.elephant.ElephantManager.set_drained`).

A sample is what the network measured on one segment list over one measurement interval:
its loss ratio (alternate marking, RFC 9341: one finished colour block) and/or its delay
(IOAM, RFC 9197). A list *degrades* when ``bad_samples`` consecutive samples exceed its SR
policy's bounds (loss above ``max_loss``, or delay above the policy's latency bound): one
bad block can be a burst, two in a row a fault. A degraded list is drained — its WCMP weight
goes to 0 (it leaves the policy's selector group) and its pinned elephants move — unless it
is the policy's last list in service: then there is nowhere better to go.

A drained list carries no traffic, so it cannot prove itself healthy; it is restored after
a hold time. Flapping is damped the way BGP damps route flaps (RFC 2439): a list that
degrades again within one hold time of its restoration gets twice the hold (up to
``max_hold_s``); one that stays healthy for a hold time after it gets the base hold back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class SteerSettings:
    max_loss: float = 0.01  # loss ratio above which a sample is bad
    bad_samples: int = 2  # consecutive bad samples that drain a list
    hold_s: float = 10.0  # a drained list comes back after this long
    max_hold_s: float = 160.0  # the longest hold flap damping reaches

    def __post_init__(self) -> None:
        if not 0 <= self.max_loss < 1:
            raise ValueError(f"max_loss must be in [0, 1), not {self.max_loss}")
        if self.bad_samples < 1 or self.hold_s <= 0 or self.max_hold_s < self.hold_s:
            raise ValueError("need bad_samples >= 1 and 0 < hold_s <= max_hold_s")


class Action(Enum):
    DRAIN = "drain"
    RESTORE = "restore"


@dataclass(frozen=True)
class Decision:
    action: Action
    policy: int
    list_id: int
    at: float
    reason: str


@dataclass
class _List:
    policy: int
    max_delay_ms: float | None
    bad_run: int = 0
    drained_at: float | None = None
    restored_at: float | None = None
    hold_s: float = 0.0


@dataclass
class Resteer:
    """The health of every segment list: ``lists`` maps a list id to its SR policy and the
    policy's latency bound in ms (None: loss only)."""

    lists: Mapping[int, tuple[int, float | None]]
    settings: SteerSettings = field(default_factory=SteerSettings)

    def __post_init__(self) -> None:
        self._state = {
            list_id: _List(policy, bound, hold_s=self.settings.hold_s)
            for list_id, (policy, bound) in self.lists.items()
        }
        self.decisions: list[Decision] = []

    def drained(self, policy: int) -> set[int]:
        """The policy's list ids out of service now."""
        return {
            i for i, s in self._state.items() if s.policy == policy and s.drained_at is not None
        }

    def hold_s(self, list_id: int) -> float:
        return self._state[list_id].hold_s

    def observe(
        self,
        list_id: int,
        now: float,
        *,
        loss: float | None = None,
        delay_ms: float | None = None,
    ) -> Decision | None:
        """One sample of one list; returns the drain it causes, if any."""
        state = self._state.get(list_id)
        if state is None:
            raise ValueError(f"segment list {list_id} is not under any SR policy")
        if state.drained_at is not None:
            return None  # leftovers in flight when it was drained
        reasons = []
        if loss is not None and loss > self.settings.max_loss:
            reasons.append(f"loss {loss:.2%} > {self.settings.max_loss:.2%}")
        bound = state.max_delay_ms
        if delay_ms is not None and bound is not None and delay_ms > bound:
            reasons.append(f"delay {delay_ms:.3g} ms > {bound:.3g} ms")
        if not reasons:
            state.bad_run = 0
            if state.restored_at is not None and now - state.restored_at >= state.hold_s:
                state.hold_s, state.restored_at = self.settings.hold_s, None  # stable again
            return None
        state.bad_run += 1
        if state.bad_run < self.settings.bad_samples:
            return None
        in_service = {
            i for i, s in self._state.items() if s.policy == state.policy and s.drained_at is None
        }
        if in_service == {list_id}:
            return None  # the policy's last list: keep it
        if state.restored_at is not None and now - state.restored_at < state.hold_s:
            state.hold_s = min(2 * state.hold_s, self.settings.max_hold_s)  # a flap
        state.drained_at, state.restored_at, state.bad_run = now, None, 0
        decision = Decision(Action.DRAIN, state.policy, list_id, now, ", ".join(reasons))
        self.decisions.append(decision)
        return decision

    def due(self, now: float) -> list[Decision]:
        """Restorations whose hold has passed (call it every poll)."""
        out = []
        for list_id, state in self._state.items():
            if state.drained_at is not None and now - state.drained_at >= state.hold_s:
                state.drained_at, state.restored_at = None, now
                out.append(
                    Decision(Action.RESTORE, state.policy, list_id, now, f"held {state.hold_s:g} s")
                )
        self.decisions += out
        return out
