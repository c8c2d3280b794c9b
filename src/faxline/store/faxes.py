"""Faxes: created with their documents, deliveries and file in one step; read and cancelled."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from faxline.documents.faxtiff import check_fax_tiff
from faxline.store.files import FileStore
from faxline.store.models import Delivery, Extension, Fax, FaxFile
from faxline.store.status import UNFINISHED, DeliveryStatus

_DELIVERIES = selectinload(Fax.deliveries).selectinload(Delivery.attempt_log)


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
    files: FileStore,
    *,
    extension_id: int,
    user_id: int,
    recipients: Sequence[tuple[str, str]],
    documents: Sequence[StoredFile],
    tiff: bytes,
    pages: int,
    resolution: str,
    now: dt.datetime,
) -> NewFax:
    """Store a fax to send and one queued delivery per (recipient, destination); commits.

    The TIFF is on disk under its final name before the commit and removed if the commit
    fails, so a failed request leaves neither a row nor a file behind. Plain INSERTs, not
    the ORM's unit of work: this is on the Create Faxes path.
    """
    uid = secrets.token_hex(16)
    name = f"{uid}.tif"
    staged = files.stage(tiff)
    with files.committing(session, staged) as written:
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
            )
            .returning(Fax.id)
        ).scalar_one()
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
        written.append(files.publish(staged, name))
    return NewFax(fax_id, uid)


def add_incoming(
    session: Session,
    files: FileStore,
    staged: Path,
    *,
    extension_id: int,
    pages: int,
    resolution: str,
    remote_ident: str | None,
    remote_number: str | None,
    now: dt.datetime,
) -> tuple[Fax, Path]:
    """Add a received fax (its TIFF staged at `staged`) to an extension's inbox.

    Publishes the file and flushes, without committing: the caller commits together with
    whatever else the reception changes, and discards the returned path if that fails.
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
    return fax, files.publish(staged, name)


def add_received(
    session: Session,
    files: FileStore,
    staged: Path,
    *,
    extension_id: int,
    remote_ident: str | None,
    remote_number: str | None,
    now: dt.datetime,
) -> tuple[Fax, Path]:
    """`add_incoming` for a TIFF a fax session just wrote: pages and resolution are read
    from the file, which must be a valid fax TIFF."""
    info = check_fax_tiff(staged)
    return add_incoming(
        session,
        files,
        staged,
        extension_id=extension_id,
        pages=info.pages,
        resolution="fine" if info.page_info[0].y_dpi > 150 else "standard",
        remote_ident=remote_ident,
        remote_number=remote_number,
        now=now,
    )


def create_incoming(
    session: Session,
    files: FileStore,
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
    staged = files.stage(tiff)
    with files.committing(session, staged) as written:
        fax, published = add_incoming(
            session,
            files,
            staged,
            extension_id=extension.id,
            pages=pages,
            resolution=resolution,
            remote_ident=remote_ident,
            remote_number=remote_number,
            now=now,
        )
        written.append(published)
    return fax


def list_for_extension(
    session: Session, extension_id: int, *, direction: str | None, start: int, count: int
) -> tuple[int, list[Fax]]:
    """(total, page) of an extension's faxes, newest first."""
    where = [Fax.extension_id == extension_id]
    if direction is not None:
        where.append(Fax.direction == direction)
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


def get_for_extension(session: Session, extension_id: int, fax_id: int) -> Fax | None:
    fax = session.get(Fax, fax_id, options=[_DELIVERIES, selectinload(Fax.documents)])
    if fax is None or fax.extension_id != extension_id:
        return None
    return fax


def cancel(session: Session, fax: Fax, now: dt.datetime) -> None:
    """Cancel what has not finished; a call in progress is asked to stop. Commits."""
    waiting = [DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value]
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
    session.commit()
    session.refresh(fax, ["deliveries"])
    for d in fax.deliveries:
        session.refresh(d)


def delete_incoming(session: Session, files: FileStore, fax: Fax) -> None:
    """Remove a received fax and its document. Commits."""
    name = fax.document
    session.delete(fax)
    session.commit()
    files.discard(files.path(name))


def is_unfinished(status: str) -> bool:
    return DeliveryStatus(status) in UNFINISHED
