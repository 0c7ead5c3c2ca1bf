"""scapy layers and builders for what icpn puts on the wire: APN6, alternate marking and
IOAM options, RoCEv2 extended transport headers, SRv6 H.Encaps. Importing this package
registers the option layers with scapy's IPv6 option dispatch."""

from icpn.packets.apn_id import ApnIdTemplate
from icpn.packets.ioam import (
    IOAMDex,
    IOAMNode,
    IOAMTrace,
    TraceTypeError,
    node_len_words,
    preallocated_trace,
)
from icpn.packets.options import APN6, IOAM, AltMark, register
from icpn.packets.report import FLAG_ALTMARK, FLAG_COLOUR, InnerFlow, TraceReport
from icpn.packets.roce import DETH, RETH, rocev2_ud_send, rocev2_write
from icpn.packets.srv6 import h_encaps, inner_packet, srh_of

__all__ = [
    "APN6",
    "DETH",
    "FLAG_ALTMARK",
    "FLAG_COLOUR",
    "IOAM",
    "RETH",
    "AltMark",
    "ApnIdTemplate",
    "IOAMDex",
    "IOAMNode",
    "IOAMTrace",
    "InnerFlow",
    "TraceReport",
    "TraceTypeError",
    "h_encaps",
    "inner_packet",
    "node_len_words",
    "preallocated_trace",
    "register",
    "rocev2_ud_send",
    "rocev2_write",
    "srh_of",
]
