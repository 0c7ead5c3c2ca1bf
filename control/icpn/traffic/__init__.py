"""Traffic for studies and topologies: flow-size workloads (:mod:`icpn.traffic.workloads`)."""
