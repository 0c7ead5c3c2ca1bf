"""Generate the BfRuntime Python stubs from icpn's own ``bfruntime.proto``.

The stubs are made at install time (``make setup`` runs ``python -m icpn.bfrt.stubs`` right
after ``pip install``) with the grpcio-tools installed next to the protobuf runtime, so the
generated code always matches that runtime (stubs from another grpcio-tools may refuse to
load). They are not committed. An install that skipped the step gets them on first import
(``icpn.bfrt.proto``), when the package directory is writable.

``bfruntime.proto`` imports ``google/rpc/status.proto``; finsy already registers that file
(as ``finsy.proto.google.rpc.status_pb2``), so the generated import is pointed there rather
than pulling in a second copy that would clash in protobuf's descriptor pool.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent / "proto"
PROTOS = ("bfruntime.proto", "stratum_bf.proto")
_STATUS_IMPORT = re.compile(r"^from google\.rpc import status_pb2", re.M)


class StubsError(RuntimeError):
    """The stubs could not be generated (grpcio-tools missing or protoc failed)."""


def _include_dirs() -> list[str]:
    import finsy
    from grpc_tools import protoc

    finsy_protos = Path(finsy.__file__).resolve().parent / "proto"
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    return [str(PROTO_DIR), str(finsy_protos), str(well_known)]


def generate(dest: Path = PROTO_DIR) -> list[Path]:
    """Write ``<name>_pb2.py`` (and ``_pb2_grpc.py`` for services) for each proto into
    ``dest``; returns the files written."""
    try:
        from grpc_tools import protoc
    except ImportError as exc:  # pragma: no cover - a broken install
        raise StubsError("grpcio-tools is not installed: run `make setup`") from exc
    dest.mkdir(parents=True, exist_ok=True)
    args = ["protoc", *(f"-I{d}" for d in _include_dirs())]
    args += [f"--python_out={dest}", f"--pyi_out={dest}", f"--grpc_python_out={dest}"]
    args += [str(PROTO_DIR / name) for name in PROTOS]
    if protoc.main(args) != 0:
        raise StubsError(f"protoc failed on {', '.join(PROTOS)}")
    written = sorted([*dest.glob("*_pb2*.py"), *dest.glob("*_pb2.pyi")])
    for path in written:
        text = path.read_text()
        text = _STATUS_IMPORT.sub("from finsy.proto.google.rpc import status_pb2", text)
        # grpc_python_out imports its sibling as a top-level module; make it package-relative.
        text = re.sub(
            r"^import bfruntime_pb2 as", "from . import bfruntime_pb2 as", text, flags=re.M
        )
        path.write_text(text)
    return written


def is_current(dest: Path = PROTO_DIR) -> bool:
    """True when every stub exists and is newer than its proto."""
    for name in PROTOS:
        stub = dest / name.replace(".proto", "_pb2.py")
        if not stub.exists() or stub.stat().st_mtime < (PROTO_DIR / name).stat().st_mtime:
            return False
    return True


if __name__ == "__main__":
    for written_path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_DIR):
        print(written_path)
