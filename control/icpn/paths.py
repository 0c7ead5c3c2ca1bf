"""Where the project's files are: sources, build outputs, logs.

icpn is used from a checkout (``pip install -e .``): the P4 sources and the build tree sit
next to the package. ``ICPN_HOME`` points elsewhere when the package is installed apart from
its checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("ICPN_HOME", Path(__file__).resolve().parents[2]))
P4SRC_DIR = PROJECT_ROOT / "p4src"
BUILD_DIR = Path(os.environ.get("ICPN_BUILD_DIR", PROJECT_ROOT / "build"))
LOG_DIR = BUILD_DIR / "logs"
