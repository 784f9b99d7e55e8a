"""Is a reporter on the network of an organisation under supervision (a police, court or procuratorate
intranet)? Then the report form warns them before they send anything: that network may log the visit.

Checked in memory, per request, from the address the request came from: the address is never stored,
logged or counted, and neither is the answer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def on_supervised_network(address: str, networks: Sequence[Network]) -> bool:
    """True when ``address`` lies in one of ``networks``; an address that does not parse is not on one."""
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.1.2.3 is 10.1.2.3
    return any(ip.version == net.version and ip in net for net in networks)
