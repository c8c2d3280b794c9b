"""Who may call in, and which extension answers (pure rules).

INVITEs are taken only from the addresses of provisioned trunks (403 otherwise); the called
number is a DID or the full number of a fax-enabled extension (404 otherwise); above the
configured number of inbound calls the answer is 486.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from faxline.store.records import CallRecord
from faxline.telephony import SipFaxResult


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


def inbound_record(record: CallRecord, result: SipFaxResult, now: dt.datetime) -> CallRecord:
    """An answered call's record completed from how it went: `received` when a whole fax
    arrived, `failed` otherwise."""
    fax = result.fax
    received = fax is not None and fax.success and fax.pages > 0
    answered = None
    if result.sip_status == 200:
        talk_s = fax.duration_s if fax is not None else 0.0
        answered = max(record.started_at, now - dt.timedelta(seconds=talk_s))
    return dataclasses.replace(
        record,
        answered_at=answered,
        ended_at=now,
        outcome="received" if received else "failed",
        transport=result.transport,
        pages=fax.pages if fax is not None else 0,
        bit_rate=(fax.bit_rate or None) if fax is not None else None,
        ecm=fax.ecm if fax is not None else None,
        bad_rows=fax.bad_rows if fax is not None else None,
        remote_ident=(fax.remote_ident or None) if fax is not None else None,
        t30_code=fax.completion_code if fax is not None else None,
        t30_text=fax.completion_text if fax is not None else None,
        sip_status=result.sip_status,
        sip_reason=f"{result.sip_reason or ''} ({result.ended})".strip(),
    )
