"""Faxes: created with their documents, deliveries and file in one step; read and cancelled."""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, String, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from faxline.documents.faxtiff import check_fax_tiff, resolution_of
from faxline.metrics import registry
from faxline.store import outbox
from faxline.store.blobs import BlobStore, BlobWrites, chunked
from faxline.store.models import Delivery, Extension, Fax, FaxFile, Organization
from faxline.store.status import UNFINISHED, DeliveryStatus, fax_status

_DELIVERIES = selectinload(Fax.deliveries).selectinload(Delivery.attempt_log)


# The sender's organization, for the metrics (a primary-key lookup).
_ORGANIZATION_CODE = select(Organization.code).join(
    Extension, Extension.organization_id == Organization.id
)


@dataclass(frozen=True)
class StoredFile:
    filename: str | None
    kind: str
    size: int


@dataclass(frozen=True)
class NewFax:
    id: int
    uid: str


def create_outgoing(
    session: Session,
    blobs: BlobStore,
    *,
    extension_id: int,
    user_id: int,
    recipients: Sequence[tuple[str, str]],
    documents: Sequence[StoredFile],
    tiff: bytes,
    pages: int,
    resolution: str,
    now: dt.datetime,
    reply_to: str | None = None,
) -> NewFax:
    """Store a fax to send and one queued delivery per (recipient, destination); commits.

    The TIFF is written to the blob store (in chunks) in the same transaction as the rows,
    so a failed request leaves neither a row nor a blob behind. Plain INSERTs, not the
    ORM's unit of work: this is on the Create Faxes path.
    """
    uid = secrets.token_hex(16)
    name = f"{uid}.tif"
    with blobs.transaction(session) as writes:
        writes.write(name, chunked(tiff))
        fax_id = session.execute(
            insert(Fax)
            .values(
                uid=uid,
                direction="out",
                extension_id=extension_id,
                created_by_id=user_id,
                created_at=now,
                pages=pages,
                resolution=resolution,
                document=name,
                recipients=[given for given, _ in recipients],
                reply_to=reply_to,
            )
            .returning(Fax.id)
        ).scalar_one()
        organization = session.scalar(_ORGANIZATION_CODE.where(Extension.id == extension_id))
        if documents:
            session.execute(
                insert(FaxFile),
                [
                    {
                        "fax_id": fax_id,
                        "position": i,
                        "filename": d.filename,
                        "kind": d.kind,
                        "size": d.size,
                    }
                    for i, d in enumerate(documents)
                ],
            )
        session.execute(
            insert(Delivery),
            [
                {
                    "fax_id": fax_id,
                    "recipient": given,
                    "destination": destination,
                    "status": DeliveryStatus.QUEUED.value,
                    "attempts": 0,
                    "cancel_requested": False,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for given, destination in recipients
            ],
        )
        outbox.fax_event(session, fax_id, outbox.FAX_CREATED, now)
        if reply_to is not None:
            outbox.mail_reply(session, fax_id, "queued", now)
    registry.FAXES_CREATED.labels(organization or "").inc()  # committed by now
    return NewFax(fax_id, uid)


def add_incoming(
    session: Session,
    writes: BlobWrites,
    staged: Path,
    *,
    extension_id: int,
    pages: int,
    resolution: str,
    remote_ident: str | None,
    remote_number: str | None,
    now: dt.datetime,
) -> Fax:
    """Add a received fax (its TIFF staged at `staged`, a local file that `writes` takes
    over) to an extension's inbox.

    Flushes without committing: the caller commits, in the transaction `writes` belongs
    to, together with whatever else the reception changes.
    """
    uid = secrets.token_hex(16)
    name = f"{uid}.tif"
    number = session.scalar(select(Extension.number).where(Extension.id == extension_id))
    fax = Fax(
        uid=uid,
        direction="in",
        extension_id=extension_id,
        created_by_id=None,
        created_at=now,
        pages=pages,
        resolution=resolution,
        document=name,
        remote_ident=remote_ident or None,
        remote_number=remote_number or None,
        recipients=[number] if number else [],
    )
    session.add(fax)
    session.flush()
    outbox.fax_event(session, fax.id, outbox.FAX_RECEIVED, now)
    outbox.mail_received(session, fax.id, now)
    writes.move_in(name, staged)
    return fax


def add_received(
    session: Session,
    writes: BlobWrites,
    staged: Path,
    *,
    extension_id: int,
    remote_ident: str | None,
    remote_number: str | None,
    now: dt.datetime,
) -> Fax:
    """`add_incoming` for a TIFF a fax session just wrote: pages and resolution are read
    from the file, which must be a valid fax TIFF."""
    info = check_fax_tiff(staged)
    return add_incoming(
        session,
        writes,
        staged,
        extension_id=extension_id,
        pages=info.pages,
        resolution=resolution_of(info.page_info[0].y_dpi).value,
        remote_ident=remote_ident,
        remote_number=remote_number,
        now=now,
    )


def create_incoming(
    session: Session,
    blobs: BlobStore,
    *,
    extension: Extension,
    tiff: bytes,
    pages: int,
    resolution: str,
    remote_ident: str | None,
    remote_number: str | None,
    now: dt.datetime,
) -> Fax:
    """Store a received fax in the extension's inbox; commits."""
    staged = blobs.spool_path()
    try:
        staged.write_bytes(tiff)
        with blobs.transaction(session) as writes:
            return add_incoming(
                session,
                writes,
                staged,
                extension_id=extension.id,
                pages=pages,
                resolution=resolution,
                remote_ident=remote_ident,
                remote_number=remote_number,
                now=now,
            )
    finally:
        blobs.discard(staged)


def _list_filter(extension_id: int, direction: str | None, number: str | None) -> list[Any]:
    where: list[Any] = [Fax.extension_id == extension_id]
    if direction is not None:
        where.append(Fax.direction == direction)
    if number:
        pattern = f"%{number}%"
        where.append(
            Fax.remote_number.like(pattern)
            | Fax.id.in_(select(Delivery.fax_id).where(Delivery.destination.like(pattern)))
        )
    return where


def list_for_extension(
    session: Session,
    extension_id: int,
    *,
    direction: str | None,
    start: int,
    count: int,
    number: str | None = None,
) -> tuple[int, list[Fax]]:
    """(total, page) of an extension's faxes, newest first; with `number`, only those whose
    other party's number (sender, or any recipient) contains it."""
    where = _list_filter(extension_id, direction, number)
    total = session.scalar(select(func.count()).select_from(Fax).where(*where)) or 0
    rows = session.scalars(
        select(Fax)
        .where(*where)
        .options(_DELIVERIES, selectinload(Fax.documents))
        .order_by(Fax.created_at.desc(), Fax.id.desc())
        .offset(start)
        .limit(count)
    ).all()
    return total, list(rows)


@dataclass(frozen=True)
class FaxSummary:
    """What a list of faxes shows of one: no documents, deliveries or attempts loaded."""

    id: int
    uid: str
    direction: str
    created_at: dt.datetime
    pages: int
    recipients: list[str]
    remote_number: str | None
    remote_ident: str | None
    read: bool
    status: str


def _delivery_count(status: DeliveryStatus) -> Any:
    return (
        select(func.count())
        .where(Delivery.fax_id == Fax.id, Delivery.status == status.value)
        .correlate(Fax)
        .scalar_subquery()
    )


_STATUSES = list(DeliveryStatus)


@functools.cache
def _summaries_query(by_direction: bool, by_number: bool) -> Any:
    """The list's statement, built once per filter shape with bound parameters: building
    it anew per page (six correlated counts) cost more than running it."""
    where: list[Any] = [Fax.extension_id == bindparam("extension_id")]
    if by_direction:
        where.append(Fax.direction == bindparam("direction"))
    if by_number:
        pattern = bindparam("pattern", type_=String)
        where.append(
            Fax.remote_number.like(pattern)
            | Fax.id.in_(select(Delivery.fax_id).where(Delivery.destination.like(pattern)))
        )
    return (
        select(
            Fax.id,
            Fax.uid,
            Fax.direction,
            Fax.created_at,
            Fax.pages,
            Fax.recipients,
            Fax.remote_number,
            Fax.remote_ident,
            Fax.read_at,
            func.count().over(),
            *(_delivery_count(s) for s in _STATUSES),
        )
        .where(*where)
        .order_by(Fax.created_at.desc(), Fax.id.desc())
        .offset(bindparam("start", type_=Integer))
        .limit(bindparam("count", type_=Integer))
    )


def summaries_for_extension(
    session: Session,
    extension_id: int,
    *,
    direction: str | None,
    start: int,
    count: int,
    number: str | None = None,
) -> tuple[int, list[FaxSummary]]:
    """(total, page) of an extension's faxes as `list_for_extension` finds them, as light
    summaries in one query: the status comes from per-status counts of the deliveries,
    the total from a window count (a second query only for a page past the end)."""
    query = _summaries_query(direction is not None, bool(number))
    params: dict[str, Any] = {"extension_id": extension_id, "start": start, "count": count}
    if direction is not None:
        params["direction"] = direction
    if number:
        params["pattern"] = f"%{number}%"
    rows = session.execute(query, params).all()
    if not rows:
        where = _list_filter(extension_id, direction, number)
        total = session.scalar(select(func.count()).select_from(Fax).where(*where)) or 0
        return total, []
    page = []
    for row in rows:
        counts = row[10:]
        status = fax_status(s for s, n in zip(_STATUSES, counts, strict=True) for _ in range(n))
        page.append(
            FaxSummary(
                id=row[0],
                uid=row[1],
                direction=row[2],
                created_at=row[3],
                pages=row[4],
                recipients=list(row[5] or []),
                remote_number=row[6],
                remote_ident=row[7],
                read=row[8] is not None,
                status=status.value,
            )
        )
    return int(rows[0][9]), page


def get_for_extension(session: Session, extension_id: int, fax_id: int) -> Fax | None:
    fax = session.get(Fax, fax_id, options=[_DELIVERIES, selectinload(Fax.documents)])
    if fax is None or fax.extension_id != extension_id:
        return None
    return fax


def cancel(session: Session, fax: Fax, now: dt.datetime) -> None:
    """Cancel what has not finished; a call in progress is asked to stop. Commits."""
    waiting = [DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value]
    cancelled = session.scalars(
        select(Delivery.id).where(Delivery.fax_id == fax.id, Delivery.status.in_(waiting))
    ).all()
    session.execute(
        update(Delivery)
        .where(Delivery.fax_id == fax.id, Delivery.status.in_(waiting))
        .values(
            status=DeliveryStatus.CANCELLED.value,
            failure_reason="cancelled",
            next_attempt_at=None,
            updated_at=now,
            completed_at=now,
        )
    )
    session.execute(
        update(Delivery)
        .where(Delivery.fax_id == fax.id, Delivery.status == DeliveryStatus.SENDING.value)
        .values(cancel_requested=True, updated_at=now)
    )
    outbox.delivery_changed(session, fax.id, cancelled, now, finished=True)
    session.commit()
    session.refresh(fax, ["deliveries"])
    for d in fax.deliveries:
        session.refresh(d)


def delete_incoming(session: Session, blobs: BlobStore, fax: Fax) -> None:
    """Remove a received fax and its document, in one transaction. Commits."""
    with blobs.transaction(session) as writes:
        writes.delete(fax.document)
        session.delete(fax)


def is_unfinished(status: str) -> bool:
    return DeliveryStatus(status) in UNFINISHED


def send_again(session: Session, fax: Fax, now: dt.datetime) -> int:
    """Queue the failed deliveries of an outgoing fax once more, due now; how many.
    Commits."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.fax_id == fax.id, Delivery.status == DeliveryStatus.FAILED.value)
        .values(
            status=DeliveryStatus.QUEUED.value,
            failure_reason=None,
            t30_code=None,
            t30_text=None,
            next_attempt_at=now,
            updated_at=now,
            completed_at=None,
        )
    )
    session.commit()
    session.refresh(fax, ["deliveries"])
    return int(getattr(result, "rowcount", 0) or 0)


def mark_read(session: Session, fax: Fax, now: dt.datetime) -> None:
    """Note that a received fax has been opened. Commits."""
    if fax.direction == "in" and fax.read_at is None:
        fax.read_at = now
        session.commit()


def delete_outgoing(session: Session, blobs: BlobStore, fax: Fax) -> None:
    """Remove an outgoing fax whose deliveries are all finished, with its document. Commits.
    A fax still being sent is kept (the call holds its document); cancel it first."""
    if any(is_unfinished(d.status) for d in fax.deliveries):
        return
    delete_incoming(session, blobs, fax)
