"""Skips that every test directory shares: a test marked ``bmv2`` needs p4c, BMv2 and root;
one marked ``netadmin`` needs root and iproute2. Where that is missing the test is reported
skipped with the reason, never run half-way and never counted as passed."""

from __future__ import annotations

import pytest

from icpn.targets import toolchain


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bmv2_reason = toolchain.bmv2_unavailable_reason()
    links_ok = toolchain.can_manage_links()
    for item in items:
        if "bmv2" in item.keywords and bmv2_reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"needs BMv2: {bmv2_reason}"))
        elif "netadmin" in item.keywords and not links_ok:
            item.add_marker(pytest.mark.skip(reason="needs root (CAP_NET_ADMIN) and iproute2"))
