"""The BfRuntime protocol: icpn's own ``bfruntime.proto`` (and Stratum's Tofino device
config, ``stratum_bf.proto``) and the stubs generated from them at install time.

Importing this package makes sure the stubs exist and are newer than the protos.
"""

from icpn.bfrt import stubs as _stubs

if not _stubs.is_current():
    try:
        _stubs.generate()
    except OSError as exc:  # pragma: no cover - read-only install without stubs
        raise ImportError(
            f"the BfRuntime stubs are missing and cannot be written ({exc}); "
            "run `python -m icpn.bfrt.stubs` where the package is installed"
        ) from exc
