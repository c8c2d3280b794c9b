"""Create Faxes after its checks: documents (and the cover) converted to fax pages, then the
fax and one delivery per recipient stored in one step.

The API, the web fax center and email to fax all come here, so a fax is made the same way
(the same converter, limits, cover page and `DocumentError`s) whichever door it came in by.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faxline.directory.resolve import ExtensionInfo, UserInfo
from faxline.documents import InputFile, Resolution
from faxline.documents.convert import CoverText
from faxline.documents.cover import CoverFields, render_cover
from faxline.documents.pool import ConverterPool
from faxline.documents.sniff import sniff
from faxline.store import faxes as fax_store
from faxline.store.blobs import BlobStore
from faxline.store.models import Organization

COVER_LIMITS = {"subject": 200, "notes": 4000, "to": 200, "from": 200}
"""The fields of a cover and their longest values, in characters."""


@dataclass(frozen=True)
class CoverSender:
    """Who a cover page says the fax is from (the defaults of `from`)."""

    user_uid: str
    number: str  # the extension's caller id, else its number

    @classmethod
    def of(cls, user: UserInfo, extension: ExtensionInfo) -> CoverSender:
        """The sender of a fax from `extension` made by `user` (API and web fax center)."""
        return cls(user.uid, extension.caller_id or extension.number)


def organization_of(session: Session, organization_id: int) -> tuple[str, str | None]:
    """(name, cover template) of the sender's organization."""
    row = session.execute(
        select(Organization.name, Organization.cover_template).where(
            Organization.id == organization_id
        )
    ).one()
    return row.name, row.cover_template


def cover_text(
    cover: Mapping[str, str],
    organization: tuple[str, str | None],
    sender: CoverSender,
    recipients: Sequence[str],
    now: dt.datetime,
) -> CoverText:
    """The cover page's text for `cover` (subject, notes, to, from; all optional), given
    the fax's page count once the documents are converted."""
    name, template = organization

    def text(pages: int) -> str:
        fields = CoverFields(
            organization=name,
            sender_name=cover.get("from") or sender.user_uid,
            sender_number=sender.number,
            recipient_name=cover.get("to", ""),
            recipient_number=", ".join(recipients),
            date=now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            pages=pages,
            subject=cover.get("subject", ""),
            notes=cover.get("notes", ""),
        )
        return render_cover(fields, template)

    return text


async def submit(
    sessions: sessionmaker[Session],
    files: BlobStore,
    converter: ConverterPool,
    *,
    resolution: Resolution,
    clock: Callable[[], dt.datetime],
    user_id: int,
    extension_id: int,
    recipients: list[tuple[str, str]],
    inputs: list[InputFile],
    cover: CoverText | None = None,
    reply_to: str | None = None,
    in_thread: Callable[
        [Callable[[], fax_store.NewFax]], Awaitable[fax_store.NewFax]
    ] = asyncio.to_thread,
) -> fax_store.NewFax | None:
    """Convert the documents and queue one delivery per recipient (as `(given,
    destination)`). None when the documents hold no pages (nothing is stored; a cover alone
    is no fax). Raises DocumentError (the converter's limits, the file that is wrong).
    `in_thread` runs the database work (the API passes its own thread pool)."""
    document = await converter.convert(inputs, resolution=resolution, cover=cover)
    if document.pages == 0 or document.tiff is None:
        return None
    stored = [
        fax_store.StoredFile(
            filename=f.filename, kind=sniff(f.data, f.filename) or "unknown", size=len(f.data)
        )
        for f in inputs
    ]
    tiff = document.tiff

    def save() -> fax_store.NewFax:
        with sessions() as session:
            return fax_store.create_outgoing(
                session,
                files,
                extension_id=extension_id,
                user_id=user_id,
                recipients=recipients,
                documents=stored,
                tiff=tiff,
                pages=document.pages,
                resolution=resolution.value,
                now=clock(),
                reply_to=reply_to,
            )

    return await in_thread(save)
