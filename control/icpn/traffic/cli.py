"""``icpn traffic``: generate traces to pcap, send frames fast, list workloads. A typer
sub-app, mounted by the main CLI as ``app.add_typer(traffic_cli.app, name="traffic")``.
Exit codes as the main CLI: 0 success, 1 the work failed, 2 bad usage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from scapy.error import Scapy_Exception

from icpn.intent import Intent, IntentError, load_intent
from icpn.paths import PROJECT_ROOT
from icpn.traffic import workloads
from icpn.traffic.generators import (
    ETH_HEADER_BYTES,
    ETHERNET_MTU,
    L2,
    ApnMark,
    MiceSpec,
    RoceSpec,
    SrEncap,
    mice,
    mss_for_mtu,
    plan_mice,
    roce_flows,
    roce_max_frame_bytes,
)
from icpn.traffic.pcap import read_frames, write_pcap
from icpn.traffic.sender import SendError, send_frames

app = typer.Typer(help="Traffic: generate traces, send frames fast.", no_args_is_help=True)
gen_app = typer.Typer(help="Write a generated trace to a pcap file.", no_args_is_help=True)
app.add_typer(gen_app, name="gen")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_FAILED = 1
EXIT_USAGE = 2

ApnApp = Annotated[
    int | None, typer.Option(help="App-side APN6 mark: APP-Group ID (no mark if omitted).")
]
ApnUser = Annotated[int, typer.Option(help="USER-Group ID of the APN mark.")]
ApnPerFlow = Annotated[
    bool, typer.Option(help="USER-Group = apn-user + flow/QP index (one APN per flow).")
]
EncapSrc = Annotated[
    str | None,
    typer.Option(help="Emit as after an SRv6 headend: outer source (needs --segment)."),
]
Segments = Annotated[
    list[str] | None, typer.Option("--segment", help="SR segment, in path order; repeat.")
]
Limit = Annotated[int | None, typer.Option(help="Write at most this many packets.")]
Seed = Annotated[int, typer.Option(help="Random seed (QP offsets, flow sizes, arrivals).")]
SrcMac = Annotated[
    str | None, typer.Option(help="Source MAC (default: --from-host's, else 02:00:00:00:00:01).")
]
DstMac = Annotated[
    str | None,
    typer.Option(
        help="Destination MAC (default: the router MAC of --from-host's switch, its gateway)."
    ),
]
IntentRef = Annotated[
    str | None,
    typer.Option(help="Topology name (icpn net list) or intent file naming the hosts."),
]
FromHost = Annotated[
    str | None,
    typer.Option(help="Sending host of --intent: its address and MAC, its gateway's MAC."),
]
ToHost = Annotated[str | None, typer.Option(help="Receiving host of --intent: its address.")]


def _intent(ref: str) -> Intent:
    known = PROJECT_ROOT / "topologies" / f"{ref}.yaml"
    return load_intent(known if "/" not in ref and known.is_file() else Path(ref))


def _lab(
    ref: str | None,
    from_host: str | None,
    to_host: str | None,
    src_mac: str | None,
    dst_mac: str | None,
) -> tuple[str | None, str | None, L2]:
    """(source address, destination address, Ethernet addresses) from the intent's hosts,
    each overridden by what is given explicitly; None where nothing says."""
    src = dst = None
    default = L2()
    smac, dmac = default.src_mac, default.dst_mac
    if (from_host or to_host) and ref is None:
        raise ValueError("--from-host and --to-host need --intent (a topology or intent file)")
    if ref is not None:
        try:
            intent = _intent(ref)
        except IntentError as exc:
            raise ValueError(f"bad intent {ref}: {exc}") from exc
        for name in (from_host, to_host):
            if name is not None and name not in intent.hosts:
                raise ValueError(f"no host {name!r} in {ref}; hosts: {', '.join(intent.hosts)}")
        if from_host is not None:
            host = intent.hosts[from_host]
            src = host.ip
            smac = host.mac or smac
            dmac = intent.switches[host.switch].router_mac
        if to_host is not None:
            dst = intent.hosts[to_host].ip
    return src, dst, L2(src_mac or smac, dst_mac or dmac)


DEFAULT_SRC = "2001:db8:1::10"
DEFAULT_DST = "2001:db8:2::10"


def _marking(
    apn_app: int | None, apn_user: int, per_flow: bool, encap_src: str | None, segs: list[str]
) -> tuple[ApnMark | None, SrEncap | None]:
    apn = ApnMark(apn_app, apn_user, user_group_per_flow=per_flow) if apn_app is not None else None
    if (encap_src is None) != (not segs):
        raise ValueError("--encap-src and --segment go together")
    encap = SrEncap(encap_src, tuple(segs)) if encap_src is not None else None
    return apn, encap


def _fail_usage(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(EXIT_USAGE)


@gen_app.command("roce")
def gen_roce(
    out: Annotated[Path, typer.Argument(help="pcap file to write.")],
    qps: Annotated[int, typer.Option(help="Queue pairs, all on one 5-tuple.")] = 16,
    src: Annotated[
        str, typer.Option(help="Source IPv6 address (default: --from-host's).")
    ] = DEFAULT_SRC,
    dst: Annotated[
        str, typer.Option(help="Destination IPv6 address (default: --to-host's).")
    ] = DEFAULT_DST,
    dest_qp_base: Annotated[int, typer.Option(help="DestQP of QP 0.")] = 0x100,
    sport: Annotated[int, typer.Option(help="UDP source port (same for all QPs).")] = 4791,
    transport: Annotated[str, typer.Option(help="rc-write or ud-send.")] = "rc-write",
    mtu: Annotated[int, typer.Option(help="RoCE path MTU (256..4096).")] = 1024,
    message_bytes: Annotated[int, typer.Option(help="Bytes per message.")] = 65536,
    messages: Annotated[int, typer.Option(help="Messages per QP.")] = 4,
    qp_rate_gbps: Annotated[float, typer.Option(help="Rate of each QP, Gbit/s.")] = 1.0,
    link_mtu: Annotated[
        int, typer.Option(help="MTU of the link it is sent on: every frame must fit.")
    ] = ETHERNET_MTU,
    apn_app: ApnApp = None,
    apn_user: ApnUser = 0,
    apn_per_flow: ApnPerFlow = False,
    encap_src: EncapSrc = None,
    segment: Segments = None,
    src_mac: SrcMac = None,
    dst_mac: DstMac = None,
    intent: IntentRef = None,
    from_host: FromHost = None,
    to_host: ToHost = None,
    limit: Limit = None,
    seed: Seed = 0,
) -> None:
    """RoCEv2 (UDP 4791) from many QPs over one 5-tuple: only the BTH DestQP differs."""
    try:
        apn, encap = _marking(apn_app, apn_user, apn_per_flow, encap_src, segment or [])
        lab_src, lab_dst, l2 = _lab(intent, from_host, to_host, src_mac, dst_mac)
        spec = RoceSpec(
            src=lab_src if lab_src is not None and src == DEFAULT_SRC else src,
            dst=lab_dst if lab_dst is not None and dst == DEFAULT_DST else dst,
            l2=l2,
            qps=qps,
            dest_qp_base=dest_qp_base,
            sport=sport,
            transport=transport,  # type: ignore[arg-type]  # validated by RoceSpec
            mtu=mtu,
            message_bytes=message_bytes,
            messages_per_qp=messages,
            qp_rate_gbps=qp_rate_gbps,
            apn=apn,
            encap=encap,
            seed=seed,
        )
        largest = roce_max_frame_bytes(spec)
        if largest - ETH_HEADER_BYTES > link_mtu:
            raise ValueError(
                f"RoCE path MTU {mtu} makes {largest - ETH_HEADER_BYTES}-octet packets, over "
                f"the link MTU {link_mtu}: use a smaller --mtu (IBA path MTUs 256..4096)"
            )
    except ValueError as exc:
        raise _fail_usage(exc) from exc
    s = write_pcap(roce_flows(spec), out, limit=limit)
    console.print(f"{s.path}: {s.packets:,} packets, {s.bytes:,} bytes, {s.duration_s:.6f} s")


@gen_app.command("mice")
def gen_mice(
    out: Annotated[Path, typer.Argument(help="pcap file to write.")],
    workload: Annotated[str, typer.Option(help="Flow-size workload (see `workloads`).")] = (
        "web-search"
    ),
    flows: Annotated[int, typer.Option(help="Number of flows.")] = 1000,
    protocol: Annotated[str, typer.Option(help="tcp or udp.")] = "tcp",
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Source host; repeat.")
    ] = None,
    destination: Annotated[
        list[str] | None, typer.Option("--destination", help="Destination host; repeat.")
    ] = None,
    load_gbps: Annotated[float, typer.Option(help="Mean offered load, Gbit/s.")] = 1.0,
    flow_rate_gbps: Annotated[float, typer.Option(help="Pace of each flow, Gbit/s.")] = 10.0,
    max_flow_bytes: Annotated[
        int | None, typer.Option(help="Cap flow sizes (changes the distribution).")
    ] = None,
    mtu: Annotated[
        int, typer.Option(help="MTU of the link it is sent on: every frame fits it.")
    ] = ETHERNET_MTU,
    mss: Annotated[
        int | None,
        typer.Option(help="Payload per packet (default: the most the MTU carries, e.g. 1440)."),
    ] = None,
    apn_app: ApnApp = None,
    apn_user: ApnUser = 0,
    apn_per_flow: ApnPerFlow = False,
    encap_src: EncapSrc = None,
    segment: Segments = None,
    src_mac: SrcMac = None,
    dst_mac: DstMac = None,
    intent: IntentRef = None,
    from_host: FromHost = None,
    to_host: ToHost = None,
    limit: Limit = None,
    seed: Seed = 0,
) -> None:
    """TCP/UDP flows with sizes from a published data-centre workload, Poisson arrivals."""
    try:
        apn, encap = _marking(apn_app, apn_user, apn_per_flow, encap_src, segment or [])
        lab_src, lab_dst, l2 = _lab(intent, from_host, to_host, src_mac, dst_mac)
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol must be tcp or udp, not {protocol!r}")
        if mss is None:
            mss = mss_for_mtu(mtu, protocol, apn, encap)  # type: ignore[arg-type]
        lab_sources = (lab_src,) if lab_src is not None else MiceSpec.sources
        lab_destinations = (lab_dst,) if lab_dst is not None else MiceSpec.destinations
        spec = MiceSpec(
            workload=workload,
            flows=flows,
            protocol=protocol,  # type: ignore[arg-type]  # validated by MiceSpec
            sources=tuple(source or lab_sources),
            destinations=tuple(destination or lab_destinations),
            mss=mss,
            mtu=mtu,
            l2=l2,
            load_gbps=load_gbps,
            flow_rate_gbps=flow_rate_gbps,
            max_flow_bytes=max_flow_bytes,
            apn=apn,
            encap=encap,
            seed=seed,
        )
    except ValueError as exc:
        raise _fail_usage(exc) from exc
    plan = plan_mice(spec)
    s = write_pcap(mice(spec, plan), out, limit=limit)
    console.print(
        f"{s.path}: {s.packets:,} packets, {s.bytes:,} bytes, {s.duration_s:.6f} s; "
        f"{spec.flows:,} flows, mean size {plan.mean_flow_bytes:,.0f} B, "
        f"{plan.arrival_rate_per_s:,.1f} flows/s"
    )


@app.command("send")
def send_cmd(
    interface: Annotated[str, typer.Argument(help="Interface to send on.")],
    pcap: Annotated[Path, typer.Argument(help="pcap whose frames are sent, cycled.")],
    pps: Annotated[
        float | None, typer.Option(help="Target frames/s; omitted: as fast as possible.")
    ] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after these seconds.")] = None,
    batch: Annotated[int | None, typer.Option(help="Frames per sendmmsg call.")] = None,
    max_frames: Annotated[
        int, typer.Option(help="Load at most this many frames from the pcap.")
    ] = 1_000_000,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Send a pcap's frames on an AF_PACKET socket with sendmmsg(2), paced or flat out."""
    try:
        frames = list(read_frames(pcap, limit=max_frames))
    except (OSError, ValueError, Scapy_Exception) as exc:
        raise _fail_usage(exc) from exc
    try:
        result = send_frames(
            interface,
            frames,
            pps=pps,
            count=count,
            duration=duration,
            batch=batch,
            progress=progress,
        )
    except ValueError as exc:
        raise _fail_usage(exc) from exc
    except (SendError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    console.print(
        f"sent {result.sent:,} frames in {result.elapsed_s:.3f} s = {result.pps:,.0f} frames/s "
        f"({result.errors} transient errors, stopped by {result.stopped_by})"
    )


@app.command("workloads")
def workloads_cmd() -> None:
    """The flow-size workloads known, with their mean flow size."""
    table = Table("name", "mean flow size (bytes)", "source")
    for w in workloads.WORKLOADS.values():
        table.add_row(w.name, f"{workloads.mean_flow_size(w):,.0f}", w.citation)
    console.print(table)
