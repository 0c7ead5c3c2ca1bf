"""RoCEv2 helpers. scapy.contrib.roce supplies BTH (with the ICRC) and AETH; the extended
transport headers that carry the destination of UD and RDMA traffic are added here: DETH
(datagram, UD) and RETH (RDMA address), InfiniBand Architecture Specification vol. 1,
sections 9.3.3 and 9.3.4."""

from __future__ import annotations

from scapy.contrib.roce import BTH, opcode
from scapy.fields import BitField, IntField, LongField, XByteField, XIntField
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Raw, bind_layers

from icpn.constants import UDP_PORT_ROCEV2


class DETH(Packet):
    """Datagram Extended Transport Header: Q_Key and the source QP (UD only)."""

    name = "DETH"
    fields_desc = [XIntField("qkey", 0), XByteField("reserved", 0), BitField("src_qp", 0, 24)]


class RETH(Packet):
    """RDMA Extended Transport Header: remote virtual address, R_Key, DMA length."""

    name = "RETH"
    fields_desc = [LongField("va", 0), XIntField("rkey", 0), IntField("dma_len", 0)]


UD_SEND_ONLY = opcode("UD", "SEND_ONLY")[0]
RC_RDMA_WRITE_ONLY = opcode("RC", "RDMA_WRITE_ONLY")[0]

for _ud in ("SEND_ONLY", "SEND_ONLY_WITH_IMMEDIATE"):
    bind_layers(BTH, DETH, opcode=opcode("UD", _ud)[0])
for _rc in (
    "RDMA_WRITE_FIRST",
    "RDMA_WRITE_ONLY",
    "RDMA_WRITE_ONLY_WITH_IMMEDIATE",
    "RDMA_READ_REQUEST",
):
    bind_layers(BTH, RETH, opcode=opcode("RC", _rc)[0])


def rocev2_write(
    src: str,
    dst: str,
    dest_qp: int,
    *,
    psn: int = 0,
    sport: int = 49152,
    payload: bytes = b"\x00" * 64,
    tc: int = 0,
    fl: int = 0,
) -> IPv6:
    """An RC RDMA WRITE ONLY over IPv6, ICRC computed: the bulk of training and storage
    traffic, and the case where many QPs share one 5-tuple."""
    if not 0 <= dest_qp < (1 << 24):
        raise ValueError(f"DestQP {dest_qp} does not fit 24 bits")
    return (
        IPv6(src=src, dst=dst, tc=tc, fl=fl)
        / UDP(sport=sport, dport=UDP_PORT_ROCEV2)
        / BTH(opcode=RC_RDMA_WRITE_ONLY, dqpn=dest_qp, psn=psn, ackreq=1)
        / RETH(va=0x1000, rkey=0x1234, dma_len=len(payload))
        / Raw(payload)
    )


def rocev2_ud_send(
    src: str,
    dst: str,
    dest_qp: int,
    src_qp: int,
    *,
    qkey: int = 0x11111111,
    sport: int = 49152,
    payload: bytes = b"\x00" * 64,
) -> IPv6:
    """A UD SEND ONLY over IPv6 with DETH, ICRC computed."""
    return (
        IPv6(src=src, dst=dst)
        / UDP(sport=sport, dport=UDP_PORT_ROCEV2)
        / BTH(opcode=UD_SEND_ONLY, dqpn=dest_qp)
        / DETH(qkey=qkey, src_qp=src_qp)
        / Raw(payload)
    )
