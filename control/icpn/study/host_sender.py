"""Send prebuilt frames from inside an emulated host, paced, for the BMv2 study backend.

Run as ``python -m icpn.study.host_sender PCAP IFNAME RATE_PPS`` in the host's network
namespace (``mnexec -a <pid>``); the pcap's frames are sent once, in file order, by
:mod:`icpn.traffic.sender` in batches of at most 8: BMv2 reads its ports through libpcap
and loses frames of longer back-to-back bursts, and at the emulated rates (hundreds to a
few thousand packets/s) pacing is the point, not speed. Prints one line of JSON: frames
sent, seconds taken, and the monotonic time the sending started.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from icpn.traffic.pcap import read_frames
from icpn.traffic.sender import send_frames

BURST = 8


def send(ifname: str, frames: list[bytes], rate_pps: float) -> dict[str, float]:
    """Send every frame once with :func:`icpn.traffic.sender.send_frames`, in batches of
    :data:`BURST`; returns what :func:`main` prints."""
    started = time.monotonic()
    result = send_frames(
        ifname, frames, pps=rate_pps, count=len(frames), batch=BURST, progress=False
    )
    return {"sent": result.sent, "seconds": result.elapsed_s, "started": started}


def main() -> None:
    frames_file, ifname, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    print(json.dumps(send(ifname, list(read_frames(Path(frames_file))), rate)), flush=True)


if __name__ == "__main__":
    main()
