"""Who may fax by mail, to what, with which documents (pure)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from email.message import EmailMessage

from faxline.delivery.submit import COVER_LIMITS
from faxline.documents import InputFile


def fax_number(address: str, domain: str) -> str | None:
    """The number in `<number>@<domain>`, or None if the address is not one of ours."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    if not at or host.lower() != domain.lower() or not local:
        return None
    if not all(c.isascii() and (c.isdigit() or c in "+*") for c in local):
        return None
    return local


def is_trusted(peer: str, relays: Sequence[str]) -> bool:
    """Whether `peer` lies in one of the CIDR blocks of trusted relays."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(r, strict=False) for r in relays)


def is_loopback(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    # A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback


def documents(message: EmailMessage) -> list[InputFile]:
    """The attachments in the order of the mail, or, without any, the text body."""
    files = []
    for part in message.iter_attachments():
        data = part.get_payload(decode=True)
        files.append(
            InputFile(filename=part.get_filename(), data=data if isinstance(data, bytes) else b"")
        )
    if files:
        return files
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    assert isinstance(text, str)
    return [InputFile(filename="mail.txt", data=text.encode("utf-8"))]


def _names(message: EmailMessage, header: str) -> str:
    """The display names of a header's addresses (`Bob Jones <211@fax...>`), if any."""
    value = message.get(header)
    addresses = getattr(value, "addresses", ()) if value is not None else ()
    return ", ".join(a.display_name for a in addresses if a.display_name)


def cover_of(message: EmailMessage) -> dict[str, str] | None:
    """The cover page of a mail with attachments: its subject and text body, the display
    names of To and From (left out, the cover shows the numbers and the user id).

    A mail without attachments gets none: its body is the document, and a cover would only
    say it again on a page of its own. Nor does an attachment-only mail (a scanner's): it
    has nothing to say on one. Values longer than the API allows are cut, not refused:
    whoever mails cannot fix a field, and the text is on the next pages anyway.
    """
    if next(message.iter_attachments(), None) is None:
        return None
    subject = str(message.get("Subject") or "").strip()
    body = message.get_body(("plain",))
    notes = body.get_content().strip() if body is not None else ""
    assert isinstance(notes, str)
    if not subject and not notes:
        return None
    cover = {
        "subject": subject,
        "notes": notes,
        "to": _names(message, "To"),
        "from": _names(message, "From"),
    }
    return {k: v[: COVER_LIMITS[k]] for k, v in cover.items() if v}
