"""Study scenarios (DESIGN.md section 6): a bundle of SRv6 paths between two sites and the
traffic offered to it.

A scenario names its switches and its paths (each path: the switches it goes through, its
length in km, its bottleneck capacity), so that it can later be matched against an intent
file in ``topologies/`` (same switch names, same number of paths). Latency comes from the
length at 5 us/km (:func:`icpn.topology.latency_from_km`).

Numbers marked "DESIGN" are the operators' trial figures of DESIGN.md section 6; everything
else (path lengths of the alternative routes, numbers of queue pairs, shares, rates) is our
choice, stated here so that a study can be reproduced and argued with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from icpn.constants import SKETCH_DEPTH, SKETCH_WIDTH
from icpn.placement import PlacementSettings
from icpn.topology import latency_from_km
from icpn.traffic.workloads import WORKLOADS


@dataclass(frozen=True)
class PathSpec:
    """One SRv6 path (segment list) of the bundle."""

    name: str
    via: tuple[str, ...]  # switches from headend to tailend
    km: float
    capacity_gbps: float

    def __post_init__(self) -> None:
        if len(self.via) < 2 or self.km <= 0 or self.capacity_gbps <= 0:
            raise ValueError(f"path {self.name}: need >= 2 switches, km > 0, capacity > 0")

    @property
    def latency_ms(self) -> float:
        return latency_from_km(self.km)


@dataclass(frozen=True)
class TrafficMix:
    """What is offered to the bundle.

    * RoCE elephants: ``roce_qps`` queue pairs spread over ``roce_host_pairs`` host pairs,
      each pair one UDP 5-tuple (RDMA NICs use one source port per connection pair), so the
      QPs differ only in DestQP. Rates drawn uniformly in [1 - spread, 1 + spread] x mean,
      constant once started; starts uniform in the first ``elephant_start_fraction`` of the
      run. They carry ``elephant_byte_share`` of the offered bytes.
    * Mice: TCP flows between ``mice_hosts`` x ``mice_hosts`` host pairs, sizes from a
      published workload (:mod:`icpn.traffic.workloads`), Poisson arrivals, each sent paced at
      ``mouse_rate_share`` of one path's capacity (the metro access link).
    """

    roce_qps: int
    roce_host_pairs: int
    elephant_byte_share: float
    mice_workload: str
    mice_hosts: int = 16
    elephant_rate_spread: float = 0.5
    elephant_start_fraction: float = 0.05
    mouse_rate_share: float = 0.1
    roce_frame_bytes: int = 1100  # 1024 B RoCE MTU + BTH/UDP/IPv6/Ethernet
    mouse_frame_bytes: int = 1514  # 1460 B MSS + TCP/IPv6 (no options)/Ethernet, rounded
    roce_apn_id: int = 0x00070001
    mice_apn_id: int = 0x00070002

    def __post_init__(self) -> None:
        if self.roce_qps < 1 or not 1 <= self.roce_host_pairs <= self.roce_qps:
            raise ValueError("need >= 1 QP and 1 <= host pairs <= QPs")
        if not 0 < self.elephant_byte_share <= 1:
            raise ValueError("elephant_byte_share must be in (0, 1]")
        if self.mice_workload not in WORKLOADS:
            raise ValueError(
                f"unknown workload {self.mice_workload!r}; known: {', '.join(WORKLOADS)}"
            )
        if not 0 <= self.elephant_rate_spread < 1 or not 0 <= self.elephant_start_fraction < 1:
            raise ValueError("rate spread and start fraction must be in [0, 1)")


@dataclass(frozen=True)
class ElephantSettings:
    """The sketch profile and the manager, as configured for the study.

    The sketch reports a flow (key SA, DA, DestQP) whose packets in a window reach
    ``threshold_share`` of the bundle's packets per window; windows last
    ``duration / windows_per_run`` rounded down to a power of two of microseconds, as the
    switch does. The manager polls the counters every ``poll_fraction`` of the run; its
    decisions (a pin on a report, moves when it rebalances at a poll, :mod:`icpn.placement`
    with ``rebalance``, the hold-down counted in polls) are in force ``control_loop_ms``
    after it takes them. The defaults are an intent's (``elephants.rebalance``). The sketch
    has ``sketch_depth`` rows of ``sketch_width`` counters (the switch's, by default).
    """

    threshold_share: float = 0.01
    windows_per_run: int = 32
    poll_fraction: float = 0.02
    control_loop_ms: float = 5.0
    idle_polls: int = 3
    rebalance: PlacementSettings = field(default_factory=PlacementSettings)
    hold_down_polls: int = 2
    sketch_width: int = SKETCH_WIDTH
    sketch_depth: int = SKETCH_DEPTH

    def placement(self, poll_s: float) -> PlacementSettings:
        """The manager's placement settings, the hold-down counted in polls of ``poll_s``."""
        return replace(self.rebalance, hold_down_s=self.hold_down_polls * poll_s)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    switches: tuple[str, ...]
    paths: tuple[PathSpec, ...]
    traffic: TrafficMix
    offered_load: float = 1.0  # share of the bundle's capacity offered
    duration_s: float = 10.0  # simulated time the packets are spread over
    buffer_ms: float = 5.0  # per-path queue, in ms of the path's capacity
    convergence_ratio: float | None = None
    elephants: ElephantSettings = field(default_factory=ElephantSettings)
    #: Goals for elephant splitting on the reference model (issue 12): the busiest path's
    #: load over the mean, whole run; what the bundle delivers as a share of its capacity
    #: (None: no goal — where the offered traffic itself falls short of the capacity for long
    #: stretches, as data-mining mice make it, a goodput goal would judge the traffic).
    goal_busiest_over_mean: float = 1.05
    goal_goodput_share: float | None = 0.92

    def __post_init__(self) -> None:
        if len(self.paths) < 2:
            raise ValueError(f"scenario {self.name}: a bundle has at least two paths")
        for path in self.paths:
            unknown = set(path.via) - set(self.switches)
            if unknown:
                raise ValueError(f"path {path.name} goes through unknown {sorted(unknown)}")
        if not 0 < self.offered_load <= 4 or self.duration_s <= 0 or self.buffer_ms < 0:
            raise ValueError("offered load in (0, 4], duration > 0, buffer >= 0")

    @property
    def bundle_gbps(self) -> float:
        return sum(p.capacity_gbps for p in self.paths)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="data-ingestion",
            title="Data ingestion, Shanghai -> Ningxia",
            description=(
                "Dataset ingestion over ~3000 km (~33 ms RTT), 100 Gbit/s backbone, 4 "
                "concurrent SRv6 paths through 3 sites Shanghai-Guangzhou-Ningxia (DESIGN); "
                "as topologies/data-ingestion.yaml: each path its own plane through a "
                "Guangzhou router (1200 + 1800 km). One RoCE transfer between the ingest "
                "source and sink (16 QPs over one 5-tuple) carries 80 % of the bytes; "
                "web-search mice the rest."
            ),
            switches=("sh1", "gz1", "gz2", "gz3", "gz4", "nx1"),
            paths=tuple(
                PathSpec(f"via-gz{i}", ("sh1", f"gz{i}", "nx1"), 1200 + 1800, 100)
                for i in range(1, 5)
            ),
            traffic=TrafficMix(
                roce_qps=16, roce_host_pairs=1, elephant_byte_share=0.8, mice_workload="web-search"
            ),
        ),
        Scenario(
            name="storage-compute",
            title="Storage-compute separation, Hangzhou -> Jinhua",
            description=(
                "Training samples (30 TB, DESIGN) read from storage in Hangzhou by compute in "
                "Jinhua, ~200 km (DESIGN); as topologies/storage-compute.yaml: the direct "
                "200 km fibre and a path through Shaoxing (60 + 160 km), 100 Gbit/s each. "
                "NVMe-oF/RoCE reads between the storage and the compute host (32 QPs over one "
                "5-tuple) carry 70 % of the bytes; data-mining mice the rest."
            ),
            switches=("hz1", "sx1", "jh1"),
            paths=(
                PathSpec("direct", ("hz1", "jh1"), 200, 100),
                PathSpec("via-sx1", ("hz1", "sx1", "jh1"), 60 + 160, 100),
            ),
            traffic=TrafficMix(
                roce_qps=32,
                roce_host_pairs=1,
                elephant_byte_share=0.7,
                mice_workload="data-mining",
            ),
            goal_busiest_over_mean=1.03,
            goal_goodput_share=None,
        ),
        Scenario(
            name="cross-dc-training",
            title="Cross-DC training, two DCs ~300 km apart",
            description=(
                "Data-parallel training across two DCs ~300 km apart with a WAN convergence "
                "ratio of 16:1 (DESIGN); as topologies/cross-dc-training.yaml: two 300 km "
                "WAN paths of 25 Gbit/s through w1 and w2 against 800 Gbit/s of hosts. The "
                "DCs could offer 16x the WAN, so the bundle is saturated (offered load = its "
                "capacity; congestion control holds the senders there). Gradient all-reduce "
                "over RoCE between two host pairs (64 QPs, one 5-tuple per pair) carries "
                "90 % of the bytes; data-mining mice the rest."
            ),
            switches=("dca", "w1", "w2", "dcb"),
            paths=(
                PathSpec("via-w1", ("dca", "w1", "dcb"), 150 + 150, 25),
                PathSpec("via-w2", ("dca", "w2", "dcb"), 150 + 150, 25),
            ),
            traffic=TrafficMix(
                roce_qps=64,
                roce_host_pairs=2,
                elephant_byte_share=0.9,
                mice_workload="data-mining",
            ),
            convergence_ratio=16.0,
            goal_busiest_over_mean=1.03,
            goal_goodput_share=None,
        ),
        Scenario(
            name="model-distribution",
            title="Model distribution, cloud DC -> three edge sites",
            description=(
                "A trained model (hundreds of GB, DESIGN) pushed from the cloud DC to several "
                "edge sites at once over shared paths, with elephant splitting; as "
                "topologies/model-distribution.yaml: the DC's router dc1 reaches the edge "
                "aggregation ag1 over two 300 km paths of 100 Gbit/s (through c1 and c2), and "
                "three edge sites hang off ag1. One RoCE transfer per edge site (8 QPs over "
                "one 5-tuple each) carries 95 % of the bytes, web-search mice the rest. The "
                "time to push the model over the bundle against its ideal (every path "
                "finishing together) is <policy>_completion_over_ideal."
            ),
            switches=("dc1", "c1", "c2", "ag1"),
            paths=(
                PathSpec("via-c1", ("dc1", "c1", "ag1"), 150 + 150, 100),
                PathSpec("via-c2", ("dc1", "c2", "ag1"), 150 + 150, 100),
            ),
            traffic=TrafficMix(
                roce_qps=24,
                roce_host_pairs=3,
                elephant_byte_share=0.95,
                mice_workload="web-search",
                roce_apn_id=0x00090001,
                mice_apn_id=0x00090002,
            ),
            goal_busiest_over_mean=1.05,
        ),
    )
}


def topology_mismatches(scenario: Scenario, switches: Iterable[str], paths: int) -> list[str]:
    """How a topology intent (its switch names, its SR policy's number of paths) differs
    from the scenario; empty when the scenario can be pointed at it."""
    problems = []
    names = set(switches)
    missing = sorted(set(scenario.switches) - names)
    if missing:
        problems.append(f"switches {missing} of scenario {scenario.name} not in the topology")
    if paths != len(scenario.paths):
        problems.append(
            f"topology has {paths} paths, scenario {scenario.name} {len(scenario.paths)}"
        )
    return problems


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; a ValueError listing the valid names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown study {name!r}; valid names: {', '.join(SCENARIOS)}") from None
