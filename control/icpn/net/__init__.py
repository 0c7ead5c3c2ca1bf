"""Emulated networks: Mininet topologies of BMv2 switches driven by the controller."""
