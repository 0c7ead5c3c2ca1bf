"""The BMv2 backend of studies: the same scenario through real BMv2 switches.

Not written yet: :func:`run` is the hook :func:`icpn.study.run_study` calls for
``--backend bmv2``. It must return a :class:`icpn.study.model_backend.ModelRun`-like result
(or the study runner must learn another result type) and raise
:class:`BackendUnavailable` with the reason when it cannot run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from icpn.study.scenarios import Scenario


class BackendUnavailable(RuntimeError):
    """The backend cannot run here; the message says why."""


def run(
    scenario: Scenario,
    packets: int,
    *,
    seed: int,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> NoReturn:
    from icpn import toolchain

    reason = toolchain.bmv2_unavailable_reason()
    detail = reason or "the BMv2 study backend is not implemented yet (icpn.study.bmv2_backend)"
    raise BackendUnavailable(f"BMv2 backend not available: {detail}")
