"""The SMTP server of `faxline serve --smtp-listen`: mail to `<number>@<domain>` from a
person who logged in (SMTP AUTH over STARTTLS or on loopback) or from a trusted relay with
a user's address in `From` becomes a fax from that user's fax extension.

Anyone else is refused during the dialogue (550), so faxline never writes to a forged
sender. Replies (queued, completed, rejected) go through the outbox like every mail.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from faxline.auth.secrets import verify_secret
from faxline.config import Settings
from faxline.delivery.submit import CoverSender, cover_text, organization_of, submit
from faxline.directory.resolve import RecipientError, resolve_recipients
from faxline.documents import Resolution
from faxline.documents.errors import DocumentError
from faxline.documents.pool import ConverterPool
from faxline.mailin.rules import cover_of, documents, fax_number, is_loopback, is_trusted
from faxline.store import outbox
from faxline.store.blobs import BlobStore
from faxline.store.models import Extension, User

log = logging.getLogger("faxline.mailin")


@dataclass(frozen=True)
class Sender:
    user_id: int
    uid: str
    extension_id: int | None
    organization_id: int | None
    reply_to: str | None


def _peer(session: Session) -> str:
    peer: Any = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")


class MailIn:
    """The aiosmtpd handler (and authenticator)."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[DbSession],
        files: BlobStore,
        converter: ConverterPool,
        *,
        clock: Callable[[], dt.datetime],
        queued: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.files = files
        self.converter = converter
        self.clock = clock
        self.queued = queued

    # -- who --------------------------------------------------------------------------

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """User id and web password, only over TLS or from loopback."""
        if session.ssl is None and not is_loopback(_peer(session)):
            return AuthResult(success=False, handled=False, message="538 5.7.11 use STARTTLS")
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        uid = data.login.decode("utf-8", "replace")
        with self.sessions() as s:
            user = s.scalar(select(User).where(User.uid == uid))
            ok = user is not None and verify_secret(
                user.password_hash, data.password.decode("utf-8", "replace")
            )
        if not ok:
            # handled=False: aiosmtpd answers 535 itself (True would leave the client waiting).
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=uid)

    def _sender(self, uid: str | None, address: str) -> Sender | None:
        with self.sessions() as s:
            if uid is not None:
                user = s.scalar(select(User).where(User.uid == uid))
            else:
                user = s.scalar(select(User).where(User.email == address.lower()))
                if user is None:  # addresses are compared without case
                    user = next(
                        (
                            u
                            for u in s.scalars(select(User).where(User.email.is_not(None)))
                            if (u.email or "").lower() == address.lower()
                        ),
                        None,
                    )
            if user is None:
                return None
            return Sender(
                user.id,
                user.uid,
                self._fax_extension(s, user),
                user.organization_id,
                user.email or (address if uid is not None else None),
            )

    @staticmethod
    def _fax_extension(s: DbSession, user: User) -> int | None:
        """`users[].faxExtension`, else the first fax-enabled extension the user owns."""
        mine = select(Extension.id).where(
            Extension.owner_id == user.id, Extension.fax_enabled.is_(True)
        )
        if user.fax_extension is not None:
            chosen = s.scalar(mine.where(Extension.number == user.fax_extension))
            if chosen is not None:
                return chosen
        return s.scalar(mine.order_by(Extension.number).limit(1))

    # -- the dialogue -----------------------------------------------------------------

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        uid = session.auth_data if session.authenticated else None
        if uid is None and not is_trusted(_peer(session), self.settings.smtp_trusted_relays):
            return "550 5.7.1 log in (SMTP AUTH) to send faxes by mail"
        sender = await asyncio.to_thread(self._sender, uid, address)
        if sender is None:
            return f"550 5.7.1 {address} is not the address of a faxline user"
        if sender.extension_id is None:
            return f"550 5.7.1 {sender.uid} has no fax-enabled extension"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        session.faxline_sender = sender  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if fax_number(address, self.settings.email_domain) is None:
            return f"550 5.1.1 {address}: write to <number>@{self.settings.email_domain}"
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return (
                f"452 4.5.3 fx_recipients_invalid: at most "
                f"{self.settings.max_recipients} recipients"
            )
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        sender: Sender | None = getattr(session, "faxline_sender", None)
        if sender is None or sender.extension_id is None:
            return "503 5.5.1 MAIL first"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        if not session.authenticated:
            # A relay vouches for the envelope; the person is the one the mail is From.
            header = message.get("From")
            addresses = getattr(header, "addresses", ()) if header is not None else ()
            if not any(a.addr_spec.lower() == (sender.reply_to or "").lower() for a in addresses):
                return "550 5.7.1 From is not the address of a faxline user"
        subject = str(message.get("Subject") or "(no subject)")
        given = [fax_number(a, self.settings.email_domain) or "" for a in envelope.rcpt_tos]
        try:
            recipients = await asyncio.to_thread(self._recipients, sender, given)
            inputs = documents(message)
            if len(inputs) > self.settings.max_files:
                return await self._reject(
                    sender,
                    subject,
                    f"fx_max_files_reached: {len(inputs)} attachments; at most "
                    f"{self.settings.max_files} can be sent in one fax",
                )
            cover = cover_of(message)
            cover_page = None
            if cover is not None:
                cover_sender, organization = await asyncio.to_thread(self._cover_sender, sender)
                cover_page = cover_text(cover, organization, cover_sender, given, self.clock())
            # The API's own step: the same converter, limits, cover page and errors.
            fax = await submit(
                self.sessions,
                self.files,
                self.converter,
                resolution=Resolution(self.settings.resolution),
                clock=self.clock,
                user_id=sender.user_id,
                extension_id=sender.extension_id,
                recipients=recipients,
                inputs=inputs,
                cover=cover_page,
                reply_to=sender.reply_to,
            )
        except RecipientError as e:
            return await self._reject(sender, subject, f"fx_recipients_invalid: {e}")
        except DocumentError as e:
            return await self._reject(sender, subject, f"fx_file_invalid: {e}")
        if fax is None:
            return await self._reject(sender, subject, "fx_file_invalid: the mail holds no pages")
        self.queued()
        log.info("mail from %s queued as fax %d", sender.uid, fax.id)
        return f"250 2.0.0 queued as fax {fax.id}"

    def _cover_sender(self, sender: Sender) -> tuple[CoverSender, tuple[str, str | None]]:
        """Who the cover says the fax is from, and the organization's name and template."""
        with self.sessions() as s:
            ext = s.get(Extension, sender.extension_id)
            assert ext is not None
            return (
                CoverSender(sender.uid, ext.caller_id or ext.number),
                organization_of(s, ext.organization_id),
            )

    def _recipients(self, sender: Sender, given: list[str]) -> list[tuple[str, str]]:
        with self.sessions() as s:
            org = sender.organization_id
            if org is None:
                ext = s.get(Extension, sender.extension_id)
                org = ext.organization_id if ext is not None else 0
            return [(r.given, r.destination) for r in resolve_recipients(s, org, given)]

    async def _reject(self, sender: Sender, subject: str, reason: str) -> str:
        """Nothing is faxed; the sender is told why by mail (and in the SMTP answer)."""
        if sender.reply_to is not None:
            reply_to = sender.reply_to

            def write() -> None:
                with self.sessions() as s:
                    outbox.mail_rejected(s, reply_to, subject, reason, self.clock())

            await asyncio.to_thread(write)
        log.info("mail from %s not faxed: %s", sender.uid, reason)
        return f"250 2.0.0 not faxed, reply sent: {reason}"[:500]


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    cert = settings.smtp_tls_cert or settings.tls_cert
    key = settings.smtp_tls_key or settings.tls_key
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def start(handler: MailIn, host: str, port: int) -> asyncio.Server:
    """Listen on (host, port) on the running loop; the caller closes the server."""
    context = tls_context(handler.settings)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname=handler.settings.email_domain,
            tls_context=context,
            authenticator=handler.authenticate,
            # TLS or loopback is checked by the authenticator (aiosmtpd knows only TLS).
            auth_require_tls=False,
            data_size_limit=handler.settings.max_upload_bytes,
        )

    return await asyncio.get_running_loop().create_server(protocol, host, port)
