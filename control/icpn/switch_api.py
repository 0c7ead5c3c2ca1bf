"""What the controller asks of a switch, whichever API reaches it (P4Runtime on BMv2 or
Stratum, BfRuntime on bf_switchd).

Both clients take and return the same finsy entities (the one entity model); this module
holds the error every caller catches, and counter reads written on top of ``read``.
"""

from __future__ import annotations

from typing import Any

import finsy as fy


class SwitchApiError(RuntimeError):
    """A switch refused or failed a call; the message names the switch."""


class EntityOps:
    """Counter reads in terms of a client's ``read`` (BfRuntime's; P4Runtime's client
    reads one cell directly)."""

    name: str

    async def read(self, entity: Any) -> list[Any]:
        raise NotImplementedError

    async def read_counter(self, counter: str, index: int) -> fy.P4CounterData:
        """One cell of an indirect counter (packets and bytes)."""
        cells = await self.read(fy.P4CounterEntry(counter, index=index))
        cells = [c for c in cells if c.index == index]
        if len(cells) != 1 or cells[0].data is None:
            raise SwitchApiError(f"{self.name}: counter {counter}[{index}] not readable")
        data: fy.P4CounterData = cells[0].data
        return data

    async def read_counters(self, counter: str) -> dict[int, fy.P4CounterData]:
        """Every cell of an indirect counter, by index."""
        cells = await self.read(fy.P4CounterEntry(counter))
        return {c.index: c.data for c in cells if c.data is not None}
