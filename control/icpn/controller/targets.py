"""One controller, several targets: what differs per switch between BMv2 and Tofino, and
between P4Runtime and BfRuntime, decided here and nowhere else.

* **The program's files.** BMv2: p4c's JSON and P4Info. Tofino: bf-p4c's P4Info,
  ``bfrt.json``, ``context.json`` and binary for the switch's target and build profile
  (``icpn build``; ``build/tofino/<target>/<profile>/``).
* **The entities.** The builders make v1model-shaped entities; a Tofino switch gets them
  through :func:`icpn.targets.tofino.p4info.for_tna`, without the tables its profile leaves out.
  Over BfRuntime, mirror sessions are SDE fixed tables icpn does not write (the TNA
  profiles carry no trace export to mirror anyway).
* **The client.** P4Runtime (:class:`SwitchClient`) for BMv2 and for Stratum on Tofino, with
  the device config packed as Stratum's ``BfPipelineConfig``; BfRuntime
  (:class:`BfrtSwitchClient`) for bf_switchd.
* **Learned state.** The elephant manager writes v1model-shaped override entries;
  :class:`ShapedSwitch` shapes them for TNA on the way out and maps read-back keys (the
  flow's fingerprint) back to the flow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import finsy as fy

from icpn.bfrt.client import BfrtSwitchClient, BfrtTarget, PipelineFiles
from icpn.bfrt.info import BfrtInfo
from icpn.bfrt.proto import stratum_bf_pb2
from icpn.controller.render import SwitchConfig
from icpn.features.icmp import PUNT_METER, PUNT_POLICY
from icpn.features.qos import QOS_TENANT
from icpn.features.sketch import ELEPHANT_DIGEST, ELEPHANT_OVERRIDE
from icpn.intent import SwitchIntent, TlsIntent
from icpn.p4rt.client import SwitchClient, SwitchTarget, TlsFiles
from icpn.targets.bmv2.build import Artifacts
from icpn.targets.tofino import build as tofino_build
from icpn.targets.tofino.p4info import for_tna
from icpn.targets.tofino.profiles import PROFILES, PROGRAM

#: The elephant digest's name in the TNA program's P4Info (v1model names it by its type).
TNA_ELEPHANT_DIGEST = "elephant_digest"
DEFAULT_PROFILE = "icpn"

Client = SwitchClient | BfrtSwitchClient


class TargetError(RuntimeError):
    """A switch's program is not built (or not usable) for the target it names."""


@dataclass(frozen=True)
class TofinoProgram:
    """bf-p4c's outputs for one (target, profile)."""

    target: str
    profile: str
    p4info: Path
    bfrt_json: Path
    context: Path
    binary: Path

    @property
    def loadable(self) -> bool:
        """Can be pushed to a switch: the compiler wrote a binary (not so on Tofino 2 while
        bf-p4c has its parser defect: docs/tofino.md)."""
        return self.binary.exists() and self.context.exists()

    def pipeline(self) -> PipelineFiles | None:
        if not self.loadable:
            return None
        return PipelineFiles(PROGRAM, self.bfrt_json, (("pipe", self.context, self.binary),))

    def stratum_config(self) -> bytes:
        """The P4Runtime device config Stratum expects for Tofino (``BfPipelineConfig``)."""
        if not self.loadable:
            raise TargetError(
                f"{self.target}/{self.profile}: bf-p4c wrote no binary, nothing to push "
                "(see build/tofino/.../outcome.json)"
            )
        config = stratum_bf_pb2.BfPipelineConfig(
            p4_name=PROGRAM, bfruntime_info=self.bfrt_json.read_bytes()
        )
        config.profiles.add(
            profile_name="pipe",
            context=self.context.read_bytes(),
            binary=self.binary.read_bytes(),
            pipe_scope=[0, 1, 2, 3],
        )
        encoded: bytes = config.SerializeToString()
        return encoded


def tofino_program(target: str, profile: str) -> TofinoProgram:
    out = tofino_build.out_dir(target, profile)
    program = TofinoProgram(
        target,
        profile,
        p4info=out / "p4info.txtpb",
        bfrt_json=out / "bfrt.json",
        context=out / "pipe" / "context.json",
        binary=out / "pipe" / f"{target}.bin",
    )
    if not program.p4info.exists() or not program.bfrt_json.exists():
        raise TargetError(
            f"no {profile} build for {target} in {out}: run `icpn build` (needs bf-p4c)"
        )
    return program


def profile_of(switch: SwitchIntent) -> str:
    return switch.profile or DEFAULT_PROFILE


@cache
def schema_of(p4info: Path) -> fy.P4Schema:
    return fy.P4Schema(p4info)


@cache
def bfrt_info_of(path: Path) -> BfrtInfo:
    return BfrtInfo.load(path)


def shape_config(config: SwitchConfig, switch: SwitchIntent) -> SwitchConfig:
    """The desired state as the switch's program takes it."""
    if not switch.is_tofino:
        return config
    profile = PROFILES[profile_of(switch)]
    entities = []
    for entity in config.entities:
        if getattr(entity, "table_id", None) in profile.without_tables:
            continue
        if switch.api == "bfruntime" and isinstance(entity, fy.P4CloneSessionEntry):
            continue
        # Tenant meters: only in profiles with qos.p4, and not translated to BfRuntime yet.
        if isinstance(entity, fy.P4MeterEntry) and (
            QOS_TENANT in profile.without_tables or switch.api == "bfruntime"
        ):
            continue
        # Punt meters: only where icmp.p4's punt_policy is.
        if (
            isinstance(entity, fy.P4MeterEntry)
            and entity.meter_id == PUNT_METER
            and (PUNT_POLICY in profile.without_tables)
        ):
            continue
        entities.append(for_tna(entity))
    detects = config.detects_elephants and ELEPHANT_OVERRIDE not in profile.without_tables
    return dataclasses.replace(config, entities=entities, detects_elephants=detects)


def make_client(
    name: str,
    switch: SwitchIntent,
    *,
    artifacts: Artifacts | None,
    election_id: int,
    tls: TlsIntent | None = None,
    force_pipeline: bool = False,
    client_id: int = 1,
) -> Client:
    """The client that reaches this switch through its API, loaded with its program.
    ``client_id`` tells BfRuntime clients of one switch apart (the controller's is 1)."""
    tls_files = TlsFiles(tls.ca_cert, tls.cert, tls.key) if tls else None
    if not switch.is_tofino:
        return SwitchClient(
            SwitchTarget(
                name,
                switch.grpc,
                device_id=switch.device_id,
                p4info=artifacts.p4info if artifacts else None,
                p4blob=artifacts.json if artifacts else None,
                election_id=election_id,
                force_pipeline=force_pipeline,
                tls=tls_files,
            )
        )
    program = tofino_program(switch.target, profile_of(switch))
    if switch.api == "p4runtime":
        return SwitchClient(
            SwitchTarget(
                name,
                switch.grpc,
                device_id=switch.device_id,
                p4info=program.p4info,
                p4blob=program.stratum_config() if program.loadable else None,
                election_id=election_id,
                force_pipeline=force_pipeline,
                tls=tls_files,
            )
        )
    if tls_files is not None:
        raise TargetError(f"{name}: icpn's BfRuntime client speaks plaintext gRPC only")
    return BfrtSwitchClient(
        BfrtTarget(
            name,
            switch.grpc,
            p4info=schema_of(program.p4info),
            bfrt_info=bfrt_info_of(program.bfrt_json),
            p4_name=PROGRAM,
            device_id=switch.device_id,
            client_id=client_id,
            pipeline=program.pipeline(),
            force_pipeline=force_pipeline,
        )
    )


def elephant_digest(switch: SwitchIntent) -> str:
    return TNA_ELEPHANT_DIGEST if switch.is_tofino else ELEPHANT_DIGEST


class ShapedSwitch:
    """A switch as the elephant manager sees it: v1model-shaped override entries in and out,
    whatever the target. On BMv2 it passes everything through."""

    def __init__(self, client: Client, switch: SwitchIntent) -> None:
        self.client = client
        self.tofino = switch.is_tofino
        self.digest = elephant_digest(switch)
        self._flows: dict[tuple[int, int], Any] = {}  # (policy, fingerprint) -> v1model match

    def _out(self, entities: Sequence[Any]) -> list[Any]:
        if not self.tofino:
            return list(entities)
        shaped = []
        for entity in entities:
            tna = for_tna(entity)
            if isinstance(entity, fy.P4TableEntry) and entity.table_id == ELEPHANT_OVERRIDE:
                self._flows[_override_key(tna)] = entity.match
            shaped.append(tna)
        return shaped

    def digests(self, digest: str) -> AsyncIterator[fy.P4DigestList]:
        return self.client.digests(self.digest if digest == ELEPHANT_DIGEST else digest)

    async def insert(self, entities: Sequence[Any], **kwargs: Any) -> None:
        await self.client.insert(self._out(entities), **kwargs)

    async def modify(self, entities: Sequence[Any], **kwargs: Any) -> None:
        await self.client.modify(self._out(entities), **kwargs)

    async def delete(self, entities: Sequence[Any], **kwargs: Any) -> None:
        await self.client.delete(self._out(entities), **kwargs)

    async def read_counter(self, counter: str, index: int) -> fy.P4CounterData:
        return await self.client.read_counter(counter, index)

    async def read(self, entity: Any) -> list[Any]:
        found = await self.client.read(entity)
        if not self.tofino:
            return found
        return [self._back(e) for e in found]

    def _back(self, entity: Any) -> Any:
        entry = (
            getattr(entity, "table_entry", None)
            if isinstance(entity, fy.P4DirectCounterEntry)
            else entity
        )
        if not isinstance(entry, fy.P4TableEntry) or entry.table_id != ELEPHANT_OVERRIDE:
            return entity
        match = self._flows.get(_override_key(entry))
        if match is None:
            return entity  # not pinned by this manager: left as the switch has it
        original = dataclasses.replace(entry, match=match)
        if isinstance(entity, fy.P4DirectCounterEntry):
            return dataclasses.replace(entity, table_entry=original)
        return original


def _override_key(entry: fy.P4TableEntry) -> tuple[int, int]:
    fields = dict(entry.match or {})
    return int(fields["sr_policy_id"]), int(fields["fingerprint"])
