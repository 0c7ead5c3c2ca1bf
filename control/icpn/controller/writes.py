"""What a reconciliation writes, counted in the switch's own API: for ``icpn ctl run
--dry-run``, so an operator sees the P4Runtime entities a BMv2 (or Stratum) switch gets and
the BfRuntime table updates (selector groups, action profile members, match entries) a
bf_switchd switch gets, before anything is written."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import finsy as fy
from finsy.proto import p4r

from icpn.bfrt.proto import bfruntime_pb2 as bfrt
from icpn.bfrt.translate import Translator
from icpn.controller.reconcile import Plan
from icpn.controller.targets import bfrt_info_of, profile_of, schema_of, tofino_program
from icpn.p4rt.client import canonical

if TYPE_CHECKING:
    from icpn.controller.core import Controller


def planned_writes(ctl: Controller, name: str, todo: Plan | None) -> Counter[tuple[str, str]]:
    """(table, update type) -> count for one switch; ``todo`` None: from an empty switch."""
    config = ctl.configs[name]
    switch = ctl.intent.switches[name]
    if todo is None:
        todo = Plan(inserts=list(config.entities))
    marked: list[tuple[int, Any]] = [
        *((p4r.Update.DELETE, e) for e in todo.deletes),
        *((p4r.Update.MODIFY, e) for e in todo.modifies),
        *((p4r.Update.INSERT, e) for e in todo.inserts),
    ]
    counts: Counter[tuple[str, str]] = Counter()
    if switch.api == "bfruntime":
        program = tofino_program(switch.target, profile_of(switch))
        schema = schema_of(program.p4info)
        translator = Translator(schema, bfrt_info_of(program.bfrt_json))
        for kind, entity in marked:
            update = p4r.Update(type=kind, entity=entity.encode(schema))  # type: ignore[arg-type]
            for out in translator.updates([update]):
                table = translator.info.table_by_id(out.entity.table_entry.table_id).name
                counts[(table, bfrt.Update.Type.Name(out.type))] += 1
        return counts
    p4info = tofino_program(switch.target, profile_of(switch)).p4info if switch.is_tofino else None
    for kind, entity in marked:
        if p4info is not None:
            canonical(entity, schema_of(p4info))  # refuses what the switch's P4Info cannot hold
        table = (
            str(entity.table_id) if isinstance(entity, fy.P4TableEntry) else type(entity).__name__
        )
        counts[(table, p4r.Update.Type.Name(kind))] += 1
    return counts
