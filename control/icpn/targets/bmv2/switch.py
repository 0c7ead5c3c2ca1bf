"""Run ``simple_switch_grpc`` for a compiled program, with veth ports, and always clean up.

A :class:`Bmv2Switch` is a context manager: on entry it creates its veth pairs, starts BMv2
bound to their switch ends with P4Runtime on 127.0.0.1 at a free port, and waits until the
gRPC port accepts connections; on exit, whatever happened inside, it stops the process and
deletes the pairs. Two more nets catch what a ``with`` cannot:

* BMv2 is started under ``setpriv --pdeathsig KILL``: if our process is killed outright, the
  kernel kills the switch too (the thread that starts the switch must outlive it; use the
  main one).
* veths carry their owner's pid (:mod:`icpn.targets.veth`); every new switch first reaps pairs whose
  owner died.

The pipeline is not loaded here: BMv2 starts with ``--no-p4`` and the P4Runtime client pushes
the program (SetForwardingPipelineConfig), as a controller would.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from icpn.constants import CPU_PORT, QOS_QUEUES
from icpn.paths import LOG_DIR
from icpn.targets import toolchain, veth

_switch_numbers = itertools.count()


class Bmv2Error(RuntimeError):
    """BMv2 could not be started; the message includes the end of its log."""


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL`` (util-linux) sets PR_SET_PDEATHSIG and execs BMv2: the
    kernel then kills BMv2 when its parent dies. Done by a program rather than a Python
    ``preexec_fn``, which is unsafe in a process with threads (gRPC's) between fork and exec."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


@functools.cache
def has_thrift(executable: str) -> bool:
    """BMv2 built with Thrift listens on 9090 unless told otherwise: parallel switches clash.
    ``--help`` lists ``--thrift-port`` either way; a build without Thrift carries the message
    it prints when the option is used anyway (simple_switch_grpc here)."""
    out = subprocess.run(
        [executable, "--help"], capture_output=True, text=True, timeout=10, check=False
    )
    binary = Path(shutil.which(executable) or executable)
    without = binary.is_file() and b"compiled without Thrift support" in binary.read_bytes()
    return "--thrift-port" in out.stdout + out.stderr and not without


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float = 5.0) -> None:
    """TERM a process, KILL it if it is still there after ``timeout_s``; None or an exited
    process is fine."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)


def wait_serving(process: subprocess.Popen[bytes], address: str, timeout_s: float) -> str | None:
    """Wait until a starting BMv2 accepts connections on its gRPC ``address``; None when it
    does, else what went wrong (it exited, or it did not serve in time)."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"simple_switch_grpc exited with {process.returncode}"
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return None
        except OSError:
            time.sleep(0.05)
    return f"simple_switch_grpc did not serve gRPC on {address} within {timeout_s} s"


@dataclass(frozen=True)
class Bmv2Options:
    """How to run one switch. ``log_level`` is BMv2's (trace, debug, info, warn, error, off):
    ``info`` logs every table hit, which tests want and benchmarks do not."""

    num_ports: int = 4
    #: Pairs of ports cabled to each other (a packet out of one comes back in the other),
    #: so that one switch can play two hops. They are not among ``host_interfaces``.
    hairpins: tuple[tuple[int, int], ...] = ()
    device_id: int = 0
    log_level: str = "info"
    pcap: bool = False
    cpu_port: int = CPU_PORT
    start_timeout_s: float = 20.0
    #: Serve P4Runtime over TLS with this certificate and key; with ``tls_client_ca`` the
    #: switch also requires a client certificate signed by that CA (mutual TLS).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    #: Egress queues per port (``--priority-queues``): the traffic classes of qos.p4.
    priority_queues: int = QOS_QUEUES
    #: The simple_switch_grpc to run (a path or a name on PATH); None: the toolchain's
    #: (``ICPN_BMV2`` or PATH). bench/forwarding.py runs the same programs on a second,
    #: performance build this way, without changing the environment of the process.
    executable: str | None = None


class Bmv2Switch:
    """One BMv2 process and its veth ports. Ports are numbered 1..num_ports."""

    def __init__(self, name: str = "sw", options: Bmv2Options | None = None) -> None:
        self.name = name
        self.options = options or Bmv2Options()
        number = next(_switch_numbers)
        cabled = {p for pair in self.options.hairpins for p in pair}
        self.pairs = [
            veth.pair_names(os.getpid(), number, port)
            for port in range(1, self.options.num_ports + 1)
            if port not in cabled
        ]
        self.hairpins = [
            veth.hairpin_names(os.getpid(), number, a, b) for a, b in self.options.hairpins
        ]
        self.grpc_port = 0
        #: Thrift runtime port (queue rates, icpn.features.qos.QueueRates); None when BMv2
        #: lacks Thrift.
        self.thrift_port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.log_dir = LOG_DIR / f"{name}-{os.getpid()}-{number}"

    # -- what tests and controllers need
    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def device_id(self) -> int:
        return self.options.device_id

    @property
    def host_interfaces(self) -> dict[int, str]:
        """Switch port number → the veth end a test sends on and listens to."""
        return {p.port: p.host_if for p in self.pairs}

    @property
    def log_file(self) -> Path:
        return self.log_dir / "bmv2.log.txt"  # BMv2 appends ".txt" to --log-file

    # -- lifecycle
    def _executable(self) -> str:
        wanted = self.options.executable
        if wanted is not None:
            executable = shutil.which(wanted)
            if executable is None:
                raise Bmv2Error(f"Bmv2Options.executable {wanted!r}: no such executable")
            return executable
        executable = toolchain.bmv2().path
        if executable is None:
            raise Bmv2Error(f"simple_switch_grpc not found: {toolchain.INSTALL_HINT}")
        return executable

    def start(self) -> Bmv2Switch:
        executable = self._executable()
        veth.reap_stale()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        veth.create(self.pairs + self.hairpins)
        try:
            self._launch(executable)
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def crash(self) -> None:
        """Kill BMv2 the way a crash would (SIGKILL), keeping its ports and address."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def restart(self) -> None:
        """Start BMv2 again after :meth:`crash`: same ports, same gRPC address, and, like
        any switch coming back from a crash, no pipeline and no entries."""
        if self.running:
            raise Bmv2Error(f"{self.name} is still running")
        self._launch(self._executable())
        self._wait_until_serving()

    def _launch(self, executable: str) -> None:
        self.grpc_port = self.grpc_port or free_tcp_port()
        cmd = [*_die_with_parent_prefix(), executable, "--device-id", str(self.options.device_id)]
        for p in self.pairs:
            cmd += ["-i", f"{p.port}@{p.switch_if}"]
        for (a, b), cable in zip(self.options.hairpins, self.hairpins, strict=True):
            cmd += ["-i", f"{a}@{cable.switch_if}", "-i", f"{b}@{cable.host_if}"]
        cmd += ["--log-file", str(self.log_dir / "bmv2.log"), "--log-flush"]
        cmd += ["--log-level", self.options.log_level]
        if self.options.pcap:
            cmd += ["--pcap", str(self.log_dir)]
        if has_thrift(executable):
            self.thrift_port = self.thrift_port or free_tcp_port()
            cmd += ["--thrift-port", str(self.thrift_port)]
        cmd += ["--no-p4", "--"]
        cmd += ["--grpc-server-addr", self.grpc_address, "--cpu-port", str(self.options.cpu_port)]
        cmd += ["--priority-queues", str(self.options.priority_queues)]
        opts = self.options
        if opts.tls_cert is not None and opts.tls_key is not None:
            cmd += ["--grpc-server-ssl", "--grpc-server-cert", str(opts.tls_cert)]
            cmd += ["--grpc-server-key", str(opts.tls_key)]
            if opts.tls_client_ca is not None:
                cmd += ["--grpc-server-cacert", str(opts.tls_client_ca)]
                cmd += ["--grpc-server-with-client-auth"]
        self._spawn(cmd)

    def _spawn(self, cmd: list[str]) -> None:
        with (self.log_dir / "stdout.txt").open("wb") as out:
            self.process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not BMv2
            )

    def _wait_until_serving(self) -> None:
        assert self.process is not None
        problem = wait_serving(self.process, self.grpc_address, self.options.start_timeout_s)
        if problem is not None:
            raise Bmv2Error(f"{problem}:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.log_dir / "stdout.txt", self.log_file):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text.strip() or "(no output)"

    def stop(self) -> None:
        """Stop BMv2 (TERM, then KILL after 5 s) and delete the veths. Safe to call twice."""
        stop_process(self.process)
        veth.delete(self.pairs + self.hairpins)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Bmv2Switch:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThriftSwitch(Bmv2Switch):
    """``simple_switch`` (the Thrift build, no P4Runtime) with a program loaded from its JSON
    at start, for what only Thrift reaches: queue rates (:class:`icpn.features.qos.QueueRates`),
    which the simple_switch_grpc here, built without Thrift, cannot set."""

    def __init__(self, json_path: Path, name: str = "sw", options: Bmv2Options | None = None):
        super().__init__(name, options)
        self.json_path = json_path

    def _executable(self) -> str:
        executable = shutil.which("simple_switch")
        if executable is None or not has_thrift(executable):
            raise Bmv2Error(f"simple_switch with Thrift not found: {toolchain.INSTALL_HINT}")
        return executable

    def _launch(self, executable: str) -> None:
        self.thrift_port = self.thrift_port or free_tcp_port()
        cmd = [*_die_with_parent_prefix(), executable, "--device-id", str(self.options.device_id)]
        for p in self.pairs:
            cmd += ["-i", f"{p.port}@{p.switch_if}"]
        cmd += ["--log-file", str(self.log_dir / "bmv2.log"), "--log-level", self.options.log_level]
        cmd += ["--thrift-port", str(self.thrift_port), str(self.json_path), "--"]
        cmd += ["--priority-queues", str(self.options.priority_queues)]
        self._spawn(cmd)

    def _wait_until_serving(self) -> None:
        assert self.process is not None
        address = f"127.0.0.1:{self.thrift_port}"
        problem = wait_serving(self.process, address, self.options.start_timeout_s)
        if problem is not None:
            raise Bmv2Error(f"{problem}:\n{self._log_tail()}")
