"""Send prebuilt frames from inside an emulated host, paced, for the BMv2 study backend.

Run as ``python -m icpn.study.host_sender FRAMES IFNAME RATE_PPS`` in the host's network
namespace (``mnexec -a <pid>``). FRAMES holds length-prefixed frames (4-octet big-endian
length, then the frame), sent in file order. Frames leave in bursts of at most 8, because
BMv2 reads its ports through libpcap and loses frames of longer back-to-back bursts; at the
emulated rates (hundreds of packets/s) pacing is the point, not speed. Prints one line of
JSON: frames sent, seconds taken, and the monotonic time the first frame left.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

BURST = 8
ETH_P_ALL = 0x0003


def read_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    frames, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        frames.append(data[at + 4 : at + 4 + length])
        at += 4 + length
    return frames


def write_frames(path: Path, frames: list[bytes]) -> None:
    path.write_bytes(b"".join(len(f).to_bytes(4, "big") + f for f in frames))


def send(ifname: str, frames: list[bytes], rate_pps: float) -> dict[str, float]:
    if rate_pps <= 0:
        raise ValueError(f"rate must be > 0 packets/s, not {rate_pps}")
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((ifname, 0))
        started = time.monotonic()
        for i in range(0, len(frames), BURST):
            due = started + i / rate_pps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for frame in frames[i : i + BURST]:
                sock.send(frame)
        return {"sent": len(frames), "seconds": time.monotonic() - started, "started": started}


def main() -> None:
    frames_file, ifname, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    print(json.dumps(send(ifname, read_frames(Path(frames_file)), rate)), flush=True)


if __name__ == "__main__":
    main()
