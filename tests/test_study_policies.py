"""Study building blocks: the policies' hashes agree with icpn.hashing, the metrics' math,
the manager model's placement rule."""

from __future__ import annotations

import numpy as np
import pytest

from icpn import hashing
from icpn.study import metrics
from icpn.study.model_backend import ManagerModel
from icpn.study.policies import FlowColumns, deep_hash_members, ecmp_5tuple_members
from icpn.study.scenarios import SCENARIOS, PathSpec, Scenario, TrafficMix, get_scenario
from icpn.study.traffic import FlowTable


def _int(address: np.ndarray) -> int:
    return int.from_bytes(bytes(address.tolist()), "big")


def _random_flows(n: int, seed: int) -> FlowColumns:
    rng = np.random.default_rng(seed)
    return FlowColumns(
        src=rng.integers(0, 256, (n, 16), dtype=np.uint8),
        dst=rng.integers(0, 256, (n, 16), dtype=np.uint8),
        proto=rng.choice(np.array([6, 17], np.uint8), n),
        sport=rng.integers(0, 1 << 16, n).astype(np.uint16),
        dport=rng.integers(0, 1 << 16, n).astype(np.uint16),
        dest_qp=rng.integers(0, 1 << 24, n).astype(np.uint32),
        apn_id=rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32),
    )


@pytest.mark.parametrize("paths", [2, 3, 4, 7])
def test_policy_hashes_agree_with_icpn_hashing(paths: int) -> None:
    flows = _random_flows(64, paths)
    ecmp = ecmp_5tuple_members(flows, paths)
    deep = deep_hash_members(flows, paths)
    for i in range(len(flows)):
        key = [
            (_int(flows.src[i]), 128),
            (_int(flows.dst[i]), 128),
            (0, 20),
            (int(flows.proto[i]), 8),
            (int(flows.sport[i]), 16),
            (int(flows.dport[i]), 16),
        ]
        assert ecmp[i] == hashing.ecmp_member(key, paths)
        deep_key = [(int(flows.apn_id[i]), 128), (int(flows.dest_qp[i]), 24)]
        assert deep[i] == hashing.ecmp_member(deep_key, paths)


def test_roce_qps_share_their_pair_5tuple_but_not_the_deep_hash() -> None:
    scenario = get_scenario("data-ingestion")
    table = FlowTable(scenario)
    pairs = scenario.traffic.roce_host_pairs
    pair_of_qp = np.arange(table.elephants) % pairs
    for pair in range(pairs):
        assert len(set(table.ecmp[: table.elephants][pair_of_qp == pair].tolist())) == 1
    assert len(set(table.deep[: table.elephants].tolist())) > 1
    # Mice: DestQP 0, one APN ID -> one segment list under the deep hash.
    table.add_mice(50, np.random.default_rng(1))
    assert len(set(table.deep[table.elephants :].tolist())) == 1
    assert len(set(table.ecmp[table.elephants :].tolist())) > 1


def test_jain_and_busiest_over_mean_by_hand() -> None:
    assert metrics.jain_index([1, 1, 1, 1]) == 1.0
    assert metrics.jain_index([1, 0, 0, 0]) == 0.25
    assert metrics.jain_index([1, 2, 3]) == pytest.approx(36 / 42)
    assert metrics.jain_index([0, 0]) == 1.0
    assert metrics.busiest_over_mean([1, 1, 2]) == pytest.approx(1.5)
    assert metrics.busiest_over_mean([5, 0, 0, 0]) == 4.0
    assert metrics.busiest_over_mean([3, 3]) == 1.0
    with pytest.raises(ValueError):
        metrics.jain_index([])
    with pytest.raises(ValueError):
        metrics.jain_index([1, -1])


def test_fluid_model_by_hand() -> None:
    offered = np.array([[150.0, 40.0], [50.0, 40.0], [0.0, 200.0]])
    result = metrics.fluid(offered, np.array([100.0, 100.0]), np.array([20.0, 0.0]))
    assert result.delivered.tolist() == [[100, 40], [70, 40], [0, 100]]
    assert result.queued.tolist() == [[20, 0], [0, 0], [0, 0]]
    assert result.dropped.tolist() == [[30, 0], [0, 0], [0, 100]]
    # Conservation: offered = delivered + dropped + what is still queued.
    assert offered.sum() == result.delivered.sum() + result.dropped.sum() + result.queued[-1].sum()


def test_manager_model_places_on_the_least_loaded_list() -> None:
    manager = ManagerModel(3, 10, control_loop_s=0.01, idle_polls=2, default_rate=8.0)
    manager.poll(np.array([10.0, 0.0, 5.0]), np.zeros(10), 1.0)
    manager.report(4, 1.0)
    manager.report(5, 1.0)
    manager.report(6, 1.0)
    manager.report(4, 1.1)  # already pinned: no new placement
    assert manager.chosen[[4, 5, 6]].tolist() == [1, 2, 1]
    assert manager.installed == 3
    # In force only after the control loop.
    times = np.array([1.0, 1.005, 1.02, 1.03])
    keys = np.array([4, 4, 4, 7])
    placed = manager.place(times, keys, np.array([0, 0, 0, 0]))
    assert placed.tolist() == [0, 0, 1, 0]
    # Idle pins age out after idle_polls polls without bytes.
    key_bytes = np.zeros(10)
    key_bytes[5] = 1.0
    manager.poll(np.zeros(3), key_bytes, 1.0)
    manager.poll(np.zeros(3), key_bytes, 1.0)
    assert manager.chosen[[4, 5, 6]].tolist() == [-1, 2, -1]
    assert manager.aged_out == 2


def test_scenarios_are_consistent() -> None:
    assert set(SCENARIOS) == {"data-ingestion", "storage-compute", "cross-dc-training"}
    ingestion = SCENARIOS["data-ingestion"]
    assert len(ingestion.paths) == 4
    assert ingestion.paths[0].latency_ms == pytest.approx(15.0)  # 3000 km at 5 us/km
    assert SCENARIOS["cross-dc-training"].convergence_ratio == 16
    with pytest.raises(ValueError, match="valid names: data-ingestion"):
        get_scenario("nope")
    mix = TrafficMix(
        roce_qps=2, roce_host_pairs=1, elephant_byte_share=0.5, mice_workload="web-search"
    )
    with pytest.raises(ValueError, match="unknown"):
        Scenario("x", "x", "x", ("a", "b"), (PathSpec("p", ("a", "c"), 1, 1),) * 2, mix)
