"""Who may call in, and which extension answers (pure rules).

INVITEs are taken only from the addresses of provisioned trunks (403 otherwise); the called
number is a DID or the full number of a fax-enabled extension (404 otherwise); above the
configured number of inbound calls the answer is 486.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class InboundTarget:
    extension_id: int
    number: str  # full extension number
    ident: str  # our CSI


@dataclass(frozen=True)
class Reject:
    status: int
    reason: str


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted(source_ip: str, networks: Iterable[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def called_number(user: str | None) -> str | None:
    """The dialled number from a Request-URI's user part (`+15550100;npdi` -> `+15550100`)."""
    if not user:
        return None
    number = unquote(user.split(";", 1)[0]).strip()
    return number or None


def number_variants(number: str) -> list[str]:
    """A DID may be provisioned with or without its `+`."""
    bare = number.removeprefix("+")
    return [number, bare, "+" + bare]


def admit(
    source_ip: str,
    number: str | None,
    networks: Iterable[IpNetwork],
    target: InboundTarget | None,
    active_calls: int,
    capacity: int,
) -> InboundTarget | Reject:
    """Answer or refuse an incoming INVITE."""
    if not trusted(source_ip, networks):
        return Reject(403, "Forbidden (not a provisioned trunk)")
    if number is None or target is None:
        return Reject(404, "Not Found")
    if active_calls >= capacity:
        return Reject(486, "Busy Here")
    return target
