"""The data-ingestion study on BMv2 + Mininet, short: the scenario's RoCE QPs over one
5-tuple, three policies, measured on the links and by IFIT, reported as the model is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from icpn.study import SCENARIOS, bmv2_backend, run_study

pytestmark = [pytest.mark.bmv2, pytest.mark.netadmin]


def test_data_ingestion_on_bmv2(tmp_path: Path) -> None:
    reason = bmv2_backend.unavailable_reason()
    if reason is not None:
        pytest.skip(f"needs BMv2 and Mininet: {reason}")
    # 20,000 frames a policy: about 12 s of traffic at the emulated rate (docs/studies.md),
    # many IFIT blocks. With 10,000 (6 s) the elephants' placement, late on a loaded
    # machine, weighed on the whole run: one CI run measured 1.53 against 1.03 usually.
    result = run_study("data-ingestion", "bmv2", packets=20_000, out_dir=tmp_path, progress=False)
    f: dict[str, Any] = dict(result.figures)
    assert result.backend == "bmv2"
    # one 5-tuple: 5-tuple ECMP puts every QP on one of the four planes
    assert f["ecmp_5tuple_busiest_over_mean"] >= 3.5
    assert f["deep_hash_elephants_busiest_over_mean"] < f["apn_deep_hash_busiest_over_mean"]
    qps = SCENARIOS["data-ingestion"].traffic.roce_qps
    assert qps // 2 <= f["deep_hash_elephants_elephants_detected"] <= qps
    assert f["manager_overrides_installed"] >= f["deep_hash_elephants_elephants_detected"]
    assert (
        f["deep_hash_elephants_goodput_share_of_bundle"]
        > 2 * f["ecmp_5tuple_goodput_share_of_bundle"]
    )
    # the encapsulated bundle is offered its capacity (the frame size measured first)
    assert f["wire_frame_bytes"] > f["host_frame_bytes"]
    # (sending at the host frame size's rate would overdrive it by wire/host, ~1.18): never
    # above capacity; below it by what BMv2's ingress loses under load, a few per cent on
    # these 2-core machines (0.947-0.972 seen with the sender on pace; docs/studies.md)
    assert 0.90 <= f["deep_hash_elephants_offered_share_of_bundle"] <= 1.05
    # IFIT alternate marking measures the loss the kernel's counters show end to end,
    # within a packet per block: the queues' drops, and what a loaded machine's BMv2s lost
    # at their input (not a queue's; hundreds of frames once in CI)
    for policy in ("apn_deep_hash", "deep_hash_elephants"):
        blocks = f[f"{policy}_ifit_altmark_blocks"]
        assert blocks >= 2
        # (a frame per block either way: the odd neighbour solicitation shares the counters)
        assert f[f"{policy}_loss_beyond_queues_packets"] >= -blocks
        assert abs(f[f"{policy}_ifit_loss_error_vs_end_to_end_packets"]) <= blocks, f
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["goal_splitting_beats_ecmp_pass"] is True
    assert {p.name for p in result.files} >= {
        "results.json",
        "samples.csv",
        "report.md",
        "utilisation_per_path.png",
        "utilisation_over_time.png",
        "busiest_over_mean_over_time.png",
    }
    report = (tmp_path / "report.md").read_text()
    for section in ("## Results", "Per-path utilisation", "## Goals", "## Plots"):
        assert section in report
    for path in SCENARIOS["data-ingestion"].paths:
        assert f"deep_hash_elephants_path_{path.name}_utilisation_share_of_capacity" in f
