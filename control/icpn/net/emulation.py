"""A topology intent as a Mininet network of BMv2 switches and namespace hosts.

Mininet (Debian's ``mininet`` package, linked into the virtualenv by ``make setup``) gives
the hosts (shells in their own network namespaces), the veth links and ``tc`` shaping:
``TCLink`` puts the link's latency (netem) and scaled rate (HTB) on both ends, so each
direction sees the intent's one-way delay. The switches are BMv2 processes in the root
namespace, one per intent switch, serving P4Runtime at the intent's ``grpc`` address, so
the controller needs no translation. Switch ports keep the intent's numbers.

Hosts get their IPv6 address without duplicate address detection and a default route through
``<network>::1``; they resolve that gateway's MAC by neighbour discovery, which the switch
punts to the controller and the controller answers (:mod:`icpn.neighbor`).

Every interface gets its port's MTU from the intent (:meth:`icpn.intent.Intent.port_mtu`):
core links their ``mtu`` (jumbo by default, so an access-MTU packet fits with what a headend
pushes), host links the access MTU; the switches check the same MTUs (``port_mtu``).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icpn.constants import CPU_PORT, QOS_QUEUES
from icpn.intent import Intent
from icpn.neighbor import gateway_of
from icpn.net.ports import listener, port_of
from icpn.paths import BUILD_DIR
from icpn.targets import toolchain
from icpn.targets.bmv2.switch import free_tcp_port, has_thrift, stop_process, wait_serving

NET_DIR = BUILD_DIR / "net"
#: Mininet interface names are ``<node>-eth<port>``; Linux allows 15 characters.
MAX_IFNAME = 15


class EmulationError(RuntimeError):
    """The network could not be built; the message says what and where to look."""


def mininet_available() -> str | None:
    """None if Mininet can be used here, else why not."""
    if os.geteuid() != 0:
        return "Mininet needs root"
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return "Mininet's Python module is missing: run `make setup` (Debian package mininet)"
    if subprocess.run(["which", "mnexec"], capture_output=True).returncode != 0:
        return "mnexec is missing: install Debian's mininet package"
    return None


@functools.cache
def netem_available() -> bool:
    """Whether this kernel can delay packets (sch_netem). Some minimal kernels lack it;
    links then get their rate but not their delay, and ``icpn net up`` says so."""
    probe = f"icpnq{os.getpid() % 100000}"
    made = subprocess.run(
        ["ip", "link", "add", probe, "type", "dummy"], capture_output=True, check=False
    )
    if made.returncode != 0:
        return False
    try:
        added = subprocess.run(
            ["tc", "qdisc", "add", "dev", probe, "root", "netem", "delay", "1ms"],
            capture_output=True,
            check=False,
        )
        return added.returncode == 0
    finally:
        subprocess.run(["ip", "link", "del", probe], capture_output=True, check=False)


def link_rate_mbps(capacity_gbps: float, scale: float) -> float:
    """The emulated rate of a link: its capacity times the scale, in Mbit/s."""
    return capacity_gbps * 1000.0 * scale


@dataclass
class Emulation:
    """A running emulated network: what ``icpn net`` records to clean up after a crash."""

    topology: str
    intent: Intent
    log_dir: Path
    net: Any = None  # mininet.net.Mininet
    bmv2_pids: dict[str, int] = field(default_factory=dict)
    host_pids: dict[str, int] = field(default_factory=dict)
    interfaces: list[str] = field(default_factory=list)

    def host(self, name: str) -> Any:
        return self.net.get(name)

    def switches(self) -> dict[str, Any]:
        """The BMv2 switches (Mininet nodes with ``process``, ``launch``, ``serving``)."""
        return {s.name: s for s in self.net.switches}


def _bmv2_switch_class() -> type:
    """Mininet's Switch with BMv2 inside, built on first use (Mininet is imported lazily:
    it is optional and needs root)."""
    from mininet.node import Switch

    class Bmv2MininetSwitch(Switch):  # type: ignore[misc]
        """simple_switch_grpc with one port per Mininet interface, numbered as in the
        intent, no program (the controller pushes it)."""

        def __init__(self, name: str, grpc: str = "", log_dir: str = "", **params: Any) -> None:
            super().__init__(name, **params)
            self.grpc = grpc
            self.log_dir = Path(log_dir)
            self.process: subprocess.Popen[bytes] | None = None
            self.thrift_port: int | None = None
            #: every BMv2 pid this switch has had, restarts included: all of them must go
            self.started: list[int] = []

        def start(self, controllers: Any) -> None:
            self.launch()

        def launch(self) -> None:
            """Start BMv2 (again, after it exited): refused when another process already
            listens on the switch's gRPC port (BMv2 would start anyway, beside it)."""
            holder = listener(port_of(self.grpc))
            if holder is not None:
                raise EmulationError(
                    f"BMv2 {self.name} cannot serve gRPC on {self.grpc}: {holder.describe()}"
                )
            executable = toolchain.bmv2().path
            if executable is None:
                raise EmulationError(f"simple_switch_grpc not found: {toolchain.INSTALL_HINT}")
            cmd = [executable, "--device-id", "0"]
            for port, intf in sorted(self.intfs.items()):
                if intf.name != "lo" and port > 0:
                    cmd += ["-i", f"{port}@{intf.name}"]
                    subprocess.run(
                        ["sysctl", "-qw", f"net.ipv6.conf.{intf.name}.disable_ipv6=1"],
                        check=False,
                        capture_output=True,
                    )
            cmd += ["--log-file", str(self.log_dir / f"{self.name}.log"), "--log-level", "warn"]
            if has_thrift(executable):  # each switch its own port, not all of them 9090
                self.thrift_port = self.thrift_port or free_tcp_port()
                cmd += ["--thrift-port", str(self.thrift_port)]
            cmd += ["--no-p4", "--", "--grpc-server-addr", self.grpc]
            cmd += ["--cpu-port", str(CPU_PORT), "--priority-queues", str(QOS_QUEUES)]
            mode = "ab" if self.started else "wb"  # a restart keeps the earlier output
            with (self.log_dir / f"{self.name}.stdout").open(mode) as out:
                self.process = subprocess.Popen(
                    cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.started.append(self.process.pid)

        def serving(self, timeout_s: float) -> str | None:
            """None once the (re)started BMv2 accepts gRPC connections, else why not."""
            assert self.process is not None
            return wait_serving(self.process, self.grpc, timeout_s)

        def stop(self, deleteIntfs: bool = True) -> None:  # Mininet names the argument
            stop_process(self.process)
            super().stop(deleteIntfs)

    return Bmv2MininetSwitch


def _check_names(intent: Intent) -> None:
    ports = [(s, p) for s, sw in intent.switches.items() for p in sw.ports] + [
        tuple(end.split(":")) for link in intent.links for end in (link.a, link.b)
    ]
    for node, port in ports:
        if len(f"{node}-eth{port}") > MAX_IFNAME:
            raise EmulationError(f"interface name {node}-eth{port} is too long for Linux")


@contextmanager
def emulate(topology: str, intent: Intent, log_dir: Path) -> Iterator[Emulation]:
    """Build and start the network; stop and remove everything on exit (also on error)."""
    reason = mininet_available() or toolchain.bmv2_unavailable_reason()
    if reason is not None:
        raise EmulationError(reason)
    from mininet.link import TCLink
    from mininet.log import setLogLevel
    from mininet.net import Mininet

    _check_names(intent)
    _check_ports(intent)
    log_dir.mkdir(parents=True, exist_ok=True)
    with _mininet_log(log_dir / "mininet.log"):  # not the terminal: see _mininet_log
        setLogLevel("info")
        emu = Emulation(topology, intent, log_dir)
        scale = intent.emulation.bandwidth_scale
        queue = intent.emulation.queue_packets
        net = Mininet(
            topo=None, controller=None, switch=_bmv2_switch_class(), link=TCLink, build=False
        )
        emu.net = net
        # Mininet puts the queue limit on its netem qdisc; without netem the HTB class gets a
        # pfifo of that length after start (below), else queues would be 1000 packets deep.
        queue_option: dict[str, Any] = {"max_queue_size": queue} if netem_available() else {}
        try:
            for name, switch in intent.switches.items():
                net.addSwitch(name, grpc=switch.grpc, log_dir=str(log_dir))
            for name, host in intent.hosts.items():
                net.addHost(name, ip=None, mac=host.mac)
                net.addLink(
                    name,
                    host.switch,
                    port2=host.port,
                    bw=link_rate_mbps(intent.emulation.host_gbps, scale),
                    **queue_option,
                )
            if intent.collector is not None:
                attach, _, port = intent.collector.attach.partition(":")
                net.addHost("collector", ip=None, mac=intent.collector.mac)
                net.addLink("collector", attach, port2=int(port))
            for link in intent.links:
                (a, pa), (b, pb) = (end.split(":") for end in (link.a, link.b))
                shaping: dict[str, Any] = {"bw": link_rate_mbps(link.capacity_gbps, scale)}
                if netem_available():
                    shaping["delay"] = f"{link.latency:.3f}ms"
                net.addLink(a, b, port1=int(pa), port2=int(pb), **shaping, **queue_option)
            net.build()
            net.start()
            if not netem_available():
                _limit_queues(net, queue)
            _set_mtus(emu)
            _configure_hosts(emu)
            _wait_serving(emu)
            emu.bmv2_pids = {s.name: s.process.pid for s in net.switches if s.process}
            emu.host_pids = {h.name: h.pid for h in net.hosts}
            emu.interfaces = [i.name for s in net.switches for i in s.intfList() if i.name != "lo"]
            yield emu
        finally:
            net.stop()


def _check_ports(intent: Intent) -> None:
    """Every switch's gRPC port must be free: a BMv2 left from an earlier run (or started by
    hand) would otherwise serve beside the new one, and the controller might attach to it."""
    held = []
    for name, switch in intent.switches.items():
        holder = listener(port_of(switch.grpc))
        if holder is not None:
            held.append(f"{name} ({switch.grpc}): {holder.describe()}")
    if held:
        raise EmulationError(
            "cannot start the switches, their gRPC ports are taken:\n  " + "\n  ".join(held)
        )


@contextmanager
def _mininet_log(path: Path) -> Iterator[None]:
    """Mininet's messages go to ``path`` instead of the terminal: what it says while it
    builds the network (tc's "Specified qdisc kind is unknown" where a kernel lacks a
    qdisc it tries, "*** Error" lines it prints for them) is for the log, not the user."""
    import logging

    from mininet.log import lg

    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    saved = list(lg.handlers)
    for old in saved:
        lg.removeHandler(old)
    lg.addHandler(handler)
    try:
        yield
    finally:
        lg.removeHandler(handler)
        handler.close()
        for old in saved:
            lg.addHandler(old)


def _limit_queues(net: Any, packets: int) -> None:
    """A pfifo of ``packets`` under each shaped interface's HTB class (Mininet's 5:1)."""
    for node in [*net.switches, *net.hosts]:
        for intf in node.intfList():
            if intf.name == "lo" or not getattr(intf, "params", {}).get("bw"):
                continue
            command = f"tc qdisc add dev {intf.name} parent 5:1 handle 10: pfifo limit {packets}"
            if node in net.switches:  # root namespace
                subprocess.run(command.split(), capture_output=True, check=False)
            else:
                node.cmd(command)


def _set_mtus(emu: Emulation) -> None:
    """Each switch port's veth, and the host end of each host link, to the port's MTU."""
    intent = emu.intent
    for switch in emu.net.switches:
        for port, intf in switch.intfs.items():
            if intf.name != "lo" and port > 0:
                mtu = intent.port_mtu(switch.name, port)
                subprocess.run(
                    ["ip", "link", "set", "dev", intf.name, "mtu", str(mtu)],
                    check=True,
                    capture_output=True,
                )
    attached = {name: (h.switch, h.port) for name, h in intent.hosts.items()}
    if intent.collector is not None:
        attach, _, port = intent.collector.attach.partition(":")
        attached["collector"] = (attach, int(port))
    for name, (switch_name, port) in attached.items():
        host = emu.host(name)
        mtu = intent.port_mtu(switch_name, port)
        host.cmd(f"ip link set dev {host.defaultIntf().name} mtu {mtu}")


def _configure_hosts(emu: Emulation) -> None:
    intent = emu.intent
    for name, spec in intent.hosts.items():
        _host_address(emu.host(name), spec.address, gateway_of(spec.address))
    if intent.collector is not None:
        address = f"{intent.collector.address}/64"
        _host_address(emu.host("collector"), address, gateway_of(address))


def _host_address(host: Any, address: str, gateway: str) -> None:
    intf = host.defaultIntf().name
    for command in (
        f"sysctl -qw net.ipv6.conf.{intf}.disable_ipv6=0",
        f"sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.{intf}.accept_ra=0",
        f"ip -6 addr add {address} dev {intf} nodad",
        f"ip -6 route add default via {gateway} dev {intf}",
        f"ethtool -K {intf} tx off rx off",  # no offloaded checksums: BMv2 sees real ones
    ):
        host.cmd(command)


def _wait_serving(emu: Emulation, timeout_s: float = 20.0) -> None:
    for switch in emu.net.switches:
        problem = switch.serving(timeout_s)
        if problem is not None:
            log = emu.log_dir / f"{switch.name}.stdout"
            raise EmulationError(f"BMv2 {switch.name}: {problem}; see {log}")
