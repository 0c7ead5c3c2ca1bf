"""icpn: P4 data plane and Python control plane for an intelligent computing power network."""

__version__ = "0.1.0"
