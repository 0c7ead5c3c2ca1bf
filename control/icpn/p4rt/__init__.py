"""P4Runtime access for icpn: one client (async, on finsy) and a blocking facade over it."""

from icpn.p4rt.client import (
    DEFAULT_BATCH_SIZE,
    P4RuntimeError,
    SwitchClient,
    SwitchTarget,
    canonical,
)
from icpn.p4rt.sync import SyncSwitchClient

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "P4RuntimeError",
    "SwitchClient",
    "SwitchTarget",
    "SyncSwitchClient",
    "canonical",
]
