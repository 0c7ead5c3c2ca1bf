"""bench/forwarding.py's arithmetic, from made-up rounds (no BMv2): each build's figures carry
its prefix, the goal flags follow the ratios, and an offer-bound baseline is called out."""

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


def rounds(forwarding: ModuleType, label: str, pps: dict[str, float], us: dict[str, float]):
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
    results, cpu_results = stock_rate + perf_rate, stock_cpu + perf_cpu
    stock, _ = forwarding.build_figures(
        build(forwarding, "stock", True), programs, results, cpu_results
    )
    perf, md = forwarding.build_figures(
        build(forwarding, "perf", False), programs, results, cpu_results
    )
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
    figures, md = forwarding.build_figures(build(forwarding, "perf", True), programs, rate, cpu)
    assert figures["perf_build_baseline_forwarded_fraction_of_sent_median"] == 0.983
    assert "its rate is about the offer" in md
    assert "**This performance build has its logging macros compiled in**" in md
