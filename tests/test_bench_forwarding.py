"""bench/forwarding.py's arithmetic, from made-up rounds (no BMv2): each build's figures carry
its prefix, the goal flags follow the ratios, an offer-bound baseline is called out, and the
maximum forwarding rate is each round's best over the ladder of offered loads."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "forwarding.py"


@pytest.fixture(scope="module")
def forwarding() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_forwarding", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def build(forwarding: ModuleType, label: str, macros: bool) -> object:
    return forwarding.Bmv2Build(label, f"/x/{label}/simple_switch_grpc", "1.15.5", macros, None)


def rounds(
    forwarding: ModuleType, label: str, pps: dict[str, float], us: dict[str, float]
) -> tuple[list[object], list[object]]:
    """Two rate rounds (2 s received) and two CPU rounds (1,000 frames) a program."""
    rate, cpu = [], []
    for program in pps:
        for _ in range(2):
            received = int(pps[program] * 2)
            rate.append(forwarding.Round(program, 120_000, received, 2.0, 0, label))
            cpu.append(forwarding.Round(program, 1000, 1000, 0.5, int(us[program] * 1e6), label))
    return rate, cpu


def test_each_build_has_its_prefix_and_its_own_goal(forwarding: ModuleType) -> None:
    programs = [forwarding.BASELINE, forwarding.ICPN]
    stock_rate, stock_cpu = rounds(
        forwarding,
        "stock",
        {"port_forward": 50_000, "icpn": 10_000},
        {"port_forward": 20, "icpn": 80},
    )
    perf_rate, perf_cpu = rounds(
        forwarding,
        "perf",
        {"port_forward": 40_000, "icpn": 24_000},
        {"port_forward": 18, "icpn": 30},
    )
    measured = forwarding.Measured(stock_rate + perf_rate, stock_cpu + perf_cpu, [])
    stock, _ = forwarding.build_figures(build(forwarding, "stock", True), programs, measured)
    perf, md = forwarding.build_figures(build(forwarding, "perf", False), programs, measured)
    assert stock["forwarding_ratio_icpn_over_baseline"] == 0.2
    assert stock["cpu_ratio_baseline_over_icpn"] == 0.25
    assert stock["goal_ratio_0_5_pass"] is False and stock["goal_cpu_ratio_0_5_pass"] is False
    assert perf["perf_build_forwarding_ratio_icpn_over_baseline"] == 0.6
    assert perf["perf_build_cpu_ratio_baseline_over_icpn"] == 0.6
    assert perf["perf_build_goal_ratio_0_5_pass"] is True
    assert perf["perf_build_icpn_forwarding_pps_median"] == 24_000
    assert not any(key.startswith("perf_build_") for key in stock)
    assert all(r["build"] == "perf" for r in perf["perf_build_rounds"])
    assert "logging macros compiled out" in md and "compiled in**" not in md


def test_an_offer_bound_baseline_is_called_out(forwarding: ModuleType) -> None:
    programs = [forwarding.BASELINE, forwarding.ICPN]
    # 59,000 of 60,000 frames/s forwarded: the offer, not the capacity.
    rate, cpu = rounds(
        forwarding,
        "perf",
        {"port_forward": 59_000, "icpn": 12_000},
        {"port_forward": 18, "icpn": 50},
    )
    figures, md = forwarding.build_figures(
        build(forwarding, "perf", True), programs, forwarding.Measured(rate, cpu, [])
    )
    assert figures["perf_build_baseline_forwarded_fraction_of_sent_median"] == 0.983
    assert "its rate is about the offer" in md
    assert "**This performance build has its logging macros compiled in**" in md


def ladder(forwarding: ModuleType, program: str, curves: list[dict[int, float]]) -> list[object]:
    """One ladder round per curve (offered load -> forwarded packets/s), 1 s each load."""
    out = []
    for index, curve in enumerate(curves):
        for offered, pps in curve.items():
            received = int(pps * forwarding.MFR_TRIAL_S)
            sent = int(offered * forwarding.MFR_TRIAL_S)
            out.append(
                forwarding.Round(
                    program, sent, received, forwarding.MFR_TRIAL_S, 0, "perf", offered, index
                )
            )
    return out


def perf_figures_with_ladder(
    forwarding: ModuleType, mfr: list[object]
) -> tuple[dict[str, object], str]:
    """A perf build's figures from these ladder rounds, beside fixed-load rounds where icpn
    forwards 23k of 60k packets/s (a collapse) and the baseline 59k."""
    rate, cpu = rounds(
        forwarding,
        "perf",
        {"port_forward": 59_000, "icpn": 23_000},
        {"port_forward": 15, "icpn": 20},
    )
    figures: dict[str, object]
    figures, md = forwarding.build_figures(
        build(forwarding, "perf", False),
        [forwarding.BASELINE, forwarding.ICPN],
        forwarding.Measured(rate, cpu, mfr),
    )
    return figures, md


def test_max_forwarding_rate_is_each_rounds_best_over_the_ladder(forwarding: ModuleType) -> None:
    # icpn collapses above its capacity (40k forwarded at 40k offered, 23k at 60k): its
    # rate at 60k says little, its best says what it can carry.
    icpn = ladder(
        forwarding,
        "icpn",
        [{20_000: 19_900, 40_000: 39_000, 60_000: 23_000}, {20_000: 19_800, 40_000: 37_000}],
    )
    base = ladder(
        forwarding,
        "port_forward",
        [{40_000: 40_000, 80_000: 76_000, 100_000: 50_000}, {40_000: 40_000, 80_000: 70_000}],
    )
    figures, md = perf_figures_with_ladder(forwarding, icpn + base)
    assert figures["perf_build_icpn_max_forwarding_rate_pps_median"] == 38_000
    assert figures["perf_build_baseline_port_forward_max_forwarding_rate_pps_median"] == 73_000
    assert figures["perf_build_icpn_max_forwarding_rate_at_offered_pps"] == [40_000, 40_000]
    assert figures["perf_build_mfr_ratio_icpn_over_baseline"] == round(38 / 73, 3)
    assert figures["perf_build_goal_mfr_ratio_0_5_pass"] is True
    assert figures["perf_build_goal_ratio_0_5_pass"] is False  # 23k / 59k at the fixed load
    assert figures["perf_build_baseline_mfr_bound_by_the_sender"] is False
    assert "Maximum forwarding rate" in md and "**0.521**" in md


def test_a_baseline_best_at_the_top_of_the_ladder_is_called_out(forwarding: ModuleType) -> None:
    top = forwarding.MFR_LADDER[-1]
    base = ladder(forwarding, "port_forward", [{top // 2: top // 2, top: top - 1000}])
    icpn = ladder(forwarding, "icpn", [{top // 2: 30_000, top: 20_000}])
    figures, md = perf_figures_with_ladder(forwarding, base + icpn)
    assert figures["perf_build_baseline_mfr_bound_by_the_sender"] is True
    assert "may be the sender's limit" in md
    # Best at the top load, but far from all of it forwarded: the switch's own limit.
    base = ladder(forwarding, "port_forward", [{top // 2: top // 2 - 9000, top: top * 2 // 3}])
    figures, md = perf_figures_with_ladder(forwarding, base + icpn)
    assert figures["perf_build_baseline_mfr_bound_by_the_sender"] is False
    assert "may be the sender's limit" not in md
