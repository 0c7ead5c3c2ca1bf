"""Study building blocks: the policies' hashes agree with icpn.hashing, the metrics' math,
the manager model's placement rule."""

from __future__ import annotations

import numpy as np
import pytest

from icpn import hashing, placement
from icpn.study import metrics
from icpn.study.model_backend import ManagerModel
from icpn.study.policies import FlowColumns, deep_hash_members, ecmp_5tuple_members
from icpn.study.scenarios import SCENARIOS, PathSpec, Scenario, TrafficMix, get_scenario
from icpn.study.traffic import FlowTable, TrafficSource


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
        assert deep[i] == hashing.sr_list_member(deep_key, [1] * paths)


def test_roce_qps_share_their_pair_5tuple_but_not_the_deep_hash() -> None:
    scenario = get_scenario("data-ingestion")
    table = FlowTable(scenario)
    pairs = scenario.traffic.roce_host_pairs
    pair_of_qp = np.arange(table.elephants) % pairs
    for pair in range(pairs):
        assert len(set(table.ecmp[: table.elephants][pair_of_qp == pair].tolist())) == 1
    assert len(set(table.deep[: table.elephants].tolist())) > 1
    # Mice: DestQP 0, one APN ID -> one segment list under the deep hash.
    mice = table.add_mice(50, np.random.default_rng(1))
    assert len(set(mice.deep.tolist())) == 1
    assert len(set(mice.ecmp.tolist())) > 1
    assert len(table) == table.elephants + 50


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


def test_manager_model_places_measures_and_ages() -> None:
    lists = [placement.ListState(100.0) for _ in range(3)]
    manager = ManagerModel(
        lists,
        np.zeros(10, dtype=np.int64),  # the deep hash puts every key on list 0
        control_loop_s=0.01,
        idle_polls=2,
        default_rate=8.0,
        settings=placement.PlacementSettings(hold_down_s=10.0),  # no moves in this test
    )
    manager.poll(1.0, np.array([10.0, 0.0, 5.0]), np.zeros(10), 1.0)
    manager.report(4, 1.0)
    manager.report(5, 1.0)
    manager.report(6, 1.0)
    manager.report(4, 1.1)  # already pinned: no new placement
    # 10/0/5 + 8 per placement: list 1 (8), list 2 (13), then list 1 again (16 vs 18 and 21)
    assert [manager.pinned[k].list for k in (4, 5, 6)] == [1, 2, 1]
    assert manager.installed == 3
    # In force only after the control loop; packets an override placed are marked.
    times = np.array([1.0, 1.005, 1.02, 1.03])
    keys = np.array([4, 4, 4, 7])
    placed, by_pin = manager.place(times, keys, np.array([0, 0, 0, 0]))
    assert placed.tolist() == [0, 0, 1, 0]
    assert by_pin.tolist() == [False, False, True, False]
    # Measured: key 5 sends 30 B/s from 1.01 on (its override's bytes), the others nothing;
    # list 2 carried it and 5 B/s of background. Idle pins age out after idle_polls polls.
    pinned = np.zeros(10)
    pinned[5] = 30.0 * 0.99
    manager.poll(2.0, np.array([0.0, 0.0, 5.0 + 30.0 * 0.99]), pinned, 1.0)
    assert manager.pinned[5].rate == pytest.approx(30.0)
    assert manager.lists[2].background == pytest.approx(5.0)
    pinned[5] = 30.0
    manager.poll(3.0, np.array([0.0, 0.0, 35.0]), pinned, 1.0)
    assert sorted(manager.pinned) == [5]
    assert manager.aged_out == 2
    assert manager.decisions == [("place", 4, 1), ("place", 5, 2), ("place", 6, 1)]


def test_manager_model_moves_an_elephant_off_a_busy_list() -> None:
    lists = [placement.ListState(100.0) for _ in range(2)]
    manager = ManagerModel(
        lists,
        np.zeros(4, dtype=np.int64),
        control_loop_s=0.01,
        idle_polls=3,
        default_rate=10.0,
        settings=placement.PlacementSettings(hold_down_s=0.5),
    )
    manager.report(1, 0.0)
    manager.report(2, 0.0)
    assert [manager.pinned[k].list for k in (1, 2)] == [0, 1]
    # both send 20 B/s; list 0 also carries 40 B/s of hashed traffic: 60 vs 20
    pinned = np.array([0.0, 20.0 * 0.99, 20.0 * 0.99, 0.0])
    manager.poll(1.0, np.array([40.0 + 20.0 * 0.99, 20.0 * 0.99]), pinned, 1.0)
    assert manager.decisions[-1] == ("move", 1, 1)
    assert manager.moves == 1
    # the move takes effect after the control loop
    placed, _ = manager.place(np.array([1.005, 1.02]), np.array([1, 1]), np.array([0, 0]))
    assert placed.tolist() == [0, 1]


def test_scenarios_are_consistent() -> None:
    assert set(SCENARIOS) == {
        "data-ingestion",
        "storage-compute",
        "cross-dc-training",
        "model-distribution",
    }
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


def test_the_traffic_source_holds_only_the_mice_still_sending() -> None:
    """Memory bounded by the chunk: the flow table keeps the elephants only, the source the
    mice still sending, however long the run (it kept every mouse ever drawn before)."""
    scenario = get_scenario("data-ingestion")
    packets = 2_000_000
    source = TrafficSource(scenario, packets, np.random.default_rng(3))
    step = scenario.duration_s / 50
    held, sent = [], 0
    for i in range(50):
        chunk = source.chunk(i * step, (i + 1) * step)
        assert np.all(np.diff(chunk.time_s) >= 0)
        assert len({len(column) for column in chunk.columns()}) == 1
        sent += len(chunk)
        held.append(len(source._mice.key))
    assert source.flows.mice_added > 10 * max(held)  # most mice are gone ...
    assert max(held[25:]) < 2 * max(held[:25]) + 100  # ... and the live ones do not pile up
    assert len(source.flows.ecmp) == len(source.flows.deep) == source.flows.elephants
    assert sent > packets * 0.9
