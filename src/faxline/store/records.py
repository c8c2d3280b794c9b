"""Call records: one per call, outgoing (an attempt of a delivery) or incoming (answered
for an extension), like HylaFAX's xferfaxlog or a CDR. The attempts table holds them;
:func:`export` reads them back for `faxline records`."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faxline.store.models import Attempt

FIELDS = (
    "id",
    "direction",
    "started",
    "answered",
    "ended",
    "local_number",
    "remote_number",
    "trunk",
    "transport",
    "remote_ident",
    "pages",
    "bit_rate",
    "ecm",
    "bad_rows",
    "t30_code",
    "t30_text",
    "sip_status",
    "sip_reason",
    "outcome",
    "fax_id",
    "delivery_id",
)
"""The columns of an export, in order."""


@dataclass(frozen=True)
class CallRecord:
    """A call to write (incoming ones; outgoing attempts are written by the queue)."""

    direction: str
    started_at: dt.datetime
    trunk: str | None = None
    local_number: str | None = None
    remote_number: str | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    outcome: str | None = None
    transport: str | None = None
    pages: int = 0
    bit_rate: int | None = None
    ecm: bool | None = None
    bad_rows: int | None = None
    remote_ident: str | None = None
    t30_code: int | None = None
    t30_text: str | None = None
    sip_status: int | None = None
    sip_reason: str | None = None
    fax_id: int | None = None


def add(session: Session, record: CallRecord) -> None:
    """Add `record` (without a delivery) to the session; the caller commits."""
    values = dataclasses.asdict(record)
    values["pages_sent"] = values.pop("pages")
    session.add(Attempt(delivery_id=None, **values))


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if t is not None else None


def _row(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "direction": a.direction,
        "started": _iso(a.started_at),
        "answered": _iso(a.answered_at),
        "ended": _iso(a.ended_at),
        "local_number": a.local_number,
        "remote_number": a.remote_number,
        "trunk": a.trunk,
        "transport": a.transport,
        "remote_ident": a.remote_ident,
        "pages": a.pages_sent,
        "bit_rate": a.bit_rate,
        "ecm": a.ecm,
        "bad_rows": a.bad_rows,
        "t30_code": a.t30_code,
        "t30_text": a.t30_text,
        "sip_status": a.sip_status,
        "sip_reason": a.sip_reason,
        "outcome": a.outcome,
        "fax_id": a.fax_id,
        "delivery_id": a.delivery_id,
    }


def export(
    session: Session, since: dt.datetime | None = None, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every call record started at or after `since`, oldest first, as plain values
    (times in ISO 8601 UTC). Read in batches by id, so a long history streams."""
    last = 0
    while True:
        query = select(Attempt).where(Attempt.id > last).order_by(Attempt.id).limit(batch)
        if since is not None:
            query = query.where(Attempt.started_at >= since)
        rows = session.scalars(query).all()
        if not rows:
            return
        for a in rows:
            yield _row(a)
        last = rows[-1].id
        session.expunge_all()


def write_csv(rows: Iterable[dict[str, Any]], out: io.TextIOBase) -> None:
    """CSV with a header line; empty cells for missing values, ECM as 1/0."""
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: ("" if v is None else int(v) if isinstance(v, bool) else v) for k, v in row.items()}
        )


def write_json(rows: Iterable[dict[str, Any]], out: io.TextIOBase) -> None:
    """One JSON object per line (JSON Lines), so that a long export streams."""
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Read an export written by :func:`write_csv` back into the values it held."""
    numbers = {"id", "pages", "bit_rate", "bad_rows", "t30_code", "sip_status", "fax_id"}
    numbers.add("delivery_id")
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = {}
        for k, v in raw.items():
            if v == "":
                row[k] = None
            elif k in numbers:
                row[k] = int(v)
            elif k == "ecm":
                row[k] = v == "1"
            else:
                row[k] = v
        rows.append(row)
    return rows
