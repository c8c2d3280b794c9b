"""JSON shapes of the UAPI resources (null fields are left out); webhook events carry them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from faxline.documents.filenames import clean_filename
from faxline.store.models import Attempt, Delivery, Fax
from faxline.store.status import fax_status


def iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if t is not None else None


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def attempt_view(a: Attempt) -> dict[str, Any]:
    return _compact(
        {
            "started": iso(a.started_at),
            "ended": iso(a.ended_at),
            "outcome": a.outcome,
            "pagesSent": a.pages_sent,
            "bitRate": a.bit_rate,
            "ecm": a.ecm,
            "transport": a.transport,
            "badRows": a.bad_rows or None,
            "remoteIdent": a.remote_ident,
            "t30Code": a.t30_code,
            "t30Text": a.t30_text,
            "sipStatus": a.sip_status,
            "sipReason": a.sip_reason,
            "resolution": a.resolution,
        }
    )


def delivery_view(d: Delivery) -> dict[str, Any]:
    return _compact(
        {
            "id": d.id,
            "recipient": d.recipient,
            "destination": d.destination if d.destination != d.recipient else None,
            "status": d.status,
            "attempts": d.attempts,
            "pagesSent": d.pages_sent,
            "bitRate": d.bit_rate,
            "ecm": d.ecm,
            "transport": d.transport,
            "badRows": d.bad_rows or None,
            "failureReason": d.failure_reason,
            "t30Code": d.t30_code,
            "t30Text": d.t30_text,
            "nextAttemptAt": iso(d.next_attempt_at) if d.status == "retrying" else None,
            "created": iso(d.created_at),
            "updated": iso(d.updated_at),
            "completed": iso(d.completed_at),
            "history": [attempt_view(a) for a in d.attempt_log] or None,
        }
    )


def fax_view(fax: Fax) -> dict[str, Any]:
    outgoing = fax.direction == "out"
    body: dict[str, Any] = {
        "id": fax.id,
        "uid": fax.uid,
        "direction": fax.direction,
        "extension": fax.extension.number,
        "recipients": list(fax.recipients),
        "status": fax_status(d.status for d in fax.deliveries).value,
        "pages": fax.pages,
        "resolution": fax.resolution,
        "created": iso(fax.created_at),
    }
    if outgoing:
        body["documents"] = [
            # Cleaned again when shown: rows stored before names were cleaned may hold any.
            _compact(
                {
                    "name": clean_filename(f.filename, i) if f.filename else None,
                    "type": f.kind,
                    "size": f.size,
                }
            )
            for i, f in enumerate(fax.documents)
        ]
        body["deliveries"] = [delivery_view(d) for d in fax.deliveries]
    else:
        body["remoteIdent"] = fax.remote_ident
        body["callerId"] = fax.remote_number
    return _compact(body)
