"""What bf-p4c says a compiled TNA program uses: stages per gress, memories, hash bits,
stateful ALUs and PHV, per table and in total; and whether the compiled parser is sound.

Read from the compiler's own files (``context.json``, ``logs/resources.json``,
``logs/metrics.json``, the ``.bfa``), so the figures are the compiler's, not estimates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Memory kinds as context.json names them, and as icpn reports them.
_MEMORY_KINDS = {"sram": "sram", "tcam": "tcam", "map_ram": "map_ram", "ingress_buffer": "sram"}


@dataclass
class TableUse:
    """One logical table (match, action data, register, selector, condition) and its place."""

    name: str
    gress: str
    kind: str
    size: int
    stages: list[int]
    memories: dict[str, int] = field(default_factory=dict)


@dataclass
class Usage:
    """Totals of one compile, each figure with its capacity where the compiler states one."""

    stages: dict[str, int]
    stage_limit: int
    srams: int
    srams_capacity: int
    tcams: int
    tcams_capacity: int
    map_rams: int
    map_rams_capacity: int
    hash_bits: int
    stateful_alus: int
    stateful_alus_capacity: int
    phv_containers: dict[str, int]
    phv_bits: dict[str, int]
    tables: list[TableUse]


def _stages_of(node: Any) -> list[int]:
    """Every ``stage_number`` below a context.json node."""
    found: list[int] = []
    if isinstance(node, dict):
        if isinstance(node.get("stage_number"), int):
            found.append(node["stage_number"])
        for value in node.values():
            found.extend(_stages_of(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_stages_of(value))
    return found


def _memories_of(node: Any, into: dict[str, int]) -> None:
    if isinstance(node, dict):
        alloc = node.get("memory_resource_allocation")
        if isinstance(alloc, dict):
            kind = _MEMORY_KINDS.get(str(alloc.get("memory_type")), str(alloc.get("memory_type")))
            units = sum(
                len(u.get("memory_units", [])) for u in alloc.get("memory_units_and_vpns", [])
            )
            if units:
                into[kind] = into.get(kind, 0) + units
        for key, value in node.items():
            if key != "memory_resource_allocation":
                _memories_of(value, into)
    elif isinstance(node, list):
        for value in node:
            _memories_of(value, into)


def tables(context: dict[str, Any]) -> list[TableUse]:
    """The tables of a context.json that occupy stages, in pipeline order."""
    found = []
    for table in context["tables"]:
        stages = sorted(set(_stages_of(table)))
        if not stages:
            continue
        memories: dict[str, int] = {}
        _memories_of(table, memories)
        found.append(
            TableUse(
                name=table["name"],
                gress=table.get("direction", "ingress"),
                kind=table.get("table_type", "?"),
                size=int(table.get("size", 0)),
                stages=stages,
                memories=memories,
            )
        )
    return sorted(found, key=lambda t: (t.gress, t.stages[0], t.name))


def _gress_of(name: str) -> str:
    if "Egress" in name:
        return "egress"
    if "Ingress" in name:
        return "ingress"
    return "unknown"  # compiler-made tables (tbl_*, cond-*) carry no control name


def tables_from_resources(res: dict[str, Any]) -> list[TableUse]:
    """The tables and their memories from resources.json, where context.json has none (bf-p4c
    writes an empty one when the assembler fails after placement)."""
    found: dict[str, TableUse] = {}

    def use(name: str, stage: int) -> TableUse:
        table = found.setdefault(name, TableUse(name, _gress_of(name), "?", 0, []))
        if stage not in table.stages:
            table.stages.append(stage)
        return table

    for stage in res["mau"]["mau_stages"]:
        number = int(stage["stage_number"])
        for logical in stage.get("logical_tables", {}).get("ids", []):
            use(str(logical["table_name"]), number)
        for key, items, kind in (
            ("rams", "srams", "sram"),
            ("tcams", "tcams", "tcam"),
            ("map_rams", "maprams", "map_ram"),
        ):
            for unit in stage.get(key, {}).get(items, []):
                for usage_ in unit.get("usages", []):
                    table = use(str(usage_["used_by"]), number)
                    table.memories[kind] = table.memories.get(kind, 0) + 1
    return sorted(found.values(), key=lambda t: (t.gress, t.stages[0], t.name))


_BFA_STAGE = re.compile(r"^stage (\d+) (ingress|egress):", re.M)


def bfa_stages(bfa: str) -> dict[str, int]:
    """Stages per gress as the assembly lays them out."""
    stages = {"ingress": 0, "egress": 0}
    for number, gress in _BFA_STAGE.findall(bfa):
        stages[gress] = max(stages[gress], int(number) + 1)
    return stages


def _used(stage: dict[str, Any], key: str, items: str) -> int:
    return len(stage.get(key, {}).get(items, []))


def usage(pipe_dir: Path, stage_limit: int) -> Usage:
    """Read one compile's ``pipe/`` directory."""
    context = json.loads((pipe_dir / "context.json").read_text())
    res = json.loads((pipe_dir / "logs" / "resources.json").read_text())["resources"]
    metrics = json.loads((pipe_dir / "logs" / "metrics.json").read_text())
    table_uses = tables(context)
    if table_uses:
        last = {
            gress: max((s for t in table_uses if t.gress == gress for s in t.stages), default=-1)
            for gress in ("ingress", "egress")
        }
        stages = {gress: 1 + stage for gress, stage in last.items()}
    else:
        # Placed but not assembled: context.json is a stub; the .bfa has the stages.
        table_uses = tables_from_resources(res)
        stages = bfa_stages((pipe_dir / "icpn.bfa").read_text())
    mau = res["mau"]["mau_stages"]
    n = stage_limit  # capacities of the whole pipeline, not only of the stages used

    def capacity(key: str, a: str, b: str) -> int:
        first = mau[0].get(key, {}) if mau else {}
        return n * int(first.get(a, 0)) * int(first.get(b, 1))

    containers: dict[str, int] = {}
    bits: dict[str, int] = {}
    for kind, rows in metrics.get("phv", {}).items():
        for row in rows:
            name = f"{kind}_{row['bit_width']}b"
            containers[name] = int(row["containers_occupied"])
            bits[name] = int(row["bits_occupied"])
    return Usage(
        stages=stages,
        stage_limit=stage_limit,
        srams=sum(_used(s, "rams", "srams") for s in mau),
        srams_capacity=capacity("rams", "nColumns", "nRows"),
        tcams=sum(_used(s, "tcams", "tcams") for s in mau),
        tcams_capacity=capacity("tcams", "nColumns", "nRows"),
        map_rams=sum(_used(s, "map_rams", "maprams") for s in mau),
        map_rams_capacity=capacity("map_rams", "nUnits", "nRows"),
        hash_bits=sum(_used(s, "hash_bits", "bits") for s in mau),
        stateful_alus=sum(_used(s, "meter_alus", "meters") for s in mau),
        stateful_alus_capacity=n * int(mau[0]["meter_alus"]["nAlus"]) if mau else 0,
        phv_containers=containers,
        phv_bits=bits,
        tables=table_uses,
    )


_STATE = re.compile(r"^    (\S.*):\s*$")
_ROW = re.compile(r"^      (\S[^:]*):\s*(#.*)?$")


def parser_defects(bfa: str) -> list[str]:
    """Parser states of a ``.bfa`` whose transitions cannot all be right.

    A state that selects on packet data lists one row per ``select`` case and a ``match:``
    of the registers it compares. Rows that are all ``*`` (match anything) mean the compiler
    dropped the match registers: only the first row can ever be taken, and the parser follows
    one path whatever the packet says. bf-p4c 34b86e9 does this to every select on packet data
    (p4lang/p4c PR #5753 fixes ``MatcherAllocator::bind_use``). Returns ``gress:state`` names.
    """
    bad: list[str] = []
    gress = ""
    state = ""
    rows: list[str] = []
    matched = False

    def close() -> None:
        if state and len(rows) > 1 and not matched and all(r == "*" for r in rows):
            bad.append(f"{gress}:{state}")

    for line in bfa.splitlines():
        if line.startswith("parser "):
            close()
            gress, state, rows, matched = line.split()[1].rstrip(":"), "", [], False
            continue
        if not gress:
            continue
        if line and not line.startswith(" "):
            close()
            gress, state, rows, matched = "", "", [], False
            continue
        if m := _STATE.match(line):
            close()
            state, rows, matched = m.group(1), [], False
        elif m := _ROW.match(line):
            if m.group(1).strip() == "match":
                matched = True
            else:
                rows.append(m.group(1).strip())
        elif line.startswith("      match:"):
            matched = True
    close()
    return bad
