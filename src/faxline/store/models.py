"""SQLAlchemy models: tenants, apps and tokens, faxes and their deliveries.

The deliveries table is the dispatcher's queue (STYLE.md point 8): no second source of truth.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The organization's cover page template (text with {field} placeholders; see
    # documents.cover), read from the file that provisioning named; None: the default.
    cover_template: Mapped[str | None] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The id that appears in URLs (`/uapi/faxes/alice/...`) and in the provisioning file.
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    role: Mapped[str] = mapped_column(String(16))  # user | organization | admin
    # Web and SMTP AUTH password (argon2; None: this user cannot sign in); the address
    # faxes by mail come from; the extension they are sent from.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    fax_extension: Mapped[str | None] = mapped_column(String(32))

    organization: Mapped[Organization | None] = relationship(lazy="joined")


class Extension(Base):
    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # full form OOOO*EEE
    short: Mapped[str] = mapped_column(String(16))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    fax_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    caller_id: Mapped[str | None] = mapped_column(String(32))
    header: Mapped[str | None] = mapped_column(String(50))
    dids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Where received faxes (and failures of sent ones) are mailed.
    emails: Mapped[list[str] | None] = mapped_column("email", JSON)

    organization: Mapped[Organization] = relationship(lazy="joined")
    owner: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_extensions_org_short", "organization_id", "short", unique=True),)


class App(Base):
    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    # The `clientSecretHash` of the provisioning file, kept apart from `secret_hash` (which
    # the token endpoint may upgrade to new argon2 parameters): only a different value in
    # the file is a new secret, whose tokens must die.
    provisioned_hash: Mapped[str | None] = mapped_column(String(255))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    owner: Mapped[User] = relationship(lazy="joined")


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)

    app: Mapped[App] = relationship(lazy="joined")


class WebSession(Base):
    """A signed-in browser: the cookie holds the token, the table only its sha256, so that
    any node sharing the database can serve the person."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class Fax(Base):
    __tablename__ = "faxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    direction: Mapped[str] = mapped_column(String(3))  # out | in
    extension_id: Mapped[int] = mapped_column(ForeignKey("extensions.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    pages: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[str] = mapped_column(String(16))  # standard | fine | superfine
    document: Mapped[str] = mapped_column(String(255))  # file name inside the documents dir
    # Incoming faxes: who sent it.
    remote_ident: Mapped[str | None] = mapped_column(String(32))
    remote_number: Mapped[str | None] = mapped_column(String(64))
    # Outgoing faxes: the recipients as given in the request.
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Incoming faxes: when someone with access first opened it in the web fax center.
    read_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Faxes sent by mail: where the replies (queued, completed) go.
    reply_to: Mapped[str | None] = mapped_column(String(254))

    extension: Mapped[Extension] = relationship(lazy="joined")
    documents: Mapped[list[FaxFile]] = relationship(
        back_populates="fax", cascade="all, delete-orphan", order_by="FaxFile.position"
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="fax", cascade="all, delete-orphan", order_by="Delivery.id"
    )


class FaxFile(Base):
    """One uploaded document of a fax (the bytes are not kept; the fax TIFF is)."""

    __tablename__ = "fax_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fax_id: Mapped[int] = mapped_column(ForeignKey("faxes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))  # pdf | tiff | jpeg | text
    size: Mapped[int] = mapped_column(Integer)

    fax: Mapped[Fax] = relationship(back_populates="documents")


class Delivery(Base):
    """One recipient of an outgoing fax; also the dispatcher's queue entry."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fax_id: Mapped[int] = mapped_column(ForeignKey("faxes.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(64))  # as the client wrote it
    destination: Mapped[str] = mapped_column(String(64))  # normalised number or full extension
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # The attempt holding the lease: every write of an attempt is conditional on it.
    lease_attempt_id: Mapped[int | None] = mapped_column(Integer)
    # The route whose call slot this delivery holds while `sending` (its call counts
    # against the route's maxCalls on every node until the lease ends; see store.slots).
    call_route: Mapped[str | None] = mapped_column(String(64))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    pages_sent: Mapped[int | None] = mapped_column(Integer)
    bit_rate: Mapped[int | None] = mapped_column(Integer)
    ecm: Mapped[bool | None] = mapped_column(Boolean)
    transport: Mapped[str | None] = mapped_column(String(8))
    bad_rows: Mapped[int | None] = mapped_column(Integer)
    failure_reason: Mapped[str | None] = mapped_column(String(32))
    t30_code: Mapped[int | None] = mapped_column(Integer)
    t30_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    fax: Mapped[Fax] = relationship(back_populates="deliveries")
    attempt_log: Mapped[list[Attempt]] = relationship(
        back_populates="delivery", cascade="all, delete-orphan", order_by="Attempt.id"
    )

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_call_route", "call_route", "status"),
    )


class Attempt(Base):
    """One call: made for a delivery (`out`), or answered for an extension (`in`, with no
    delivery). Together they are the call records (`faxline records`)."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(3), default="out", server_default="out")
    # The route (trunk name, `local`, a simulator) the call went through or came in by.
    trunk: Mapped[str | None] = mapped_column(String(64))
    # Ours (the sending or the called extension) and theirs (destination or caller id).
    local_number: Mapped[str | None] = mapped_column(String(64))
    remote_number: Mapped[str | None] = mapped_column(String(64))
    # The fax sent, or the one received (not a foreign key: records outlive deleted faxes).
    fax_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    pages_sent: Mapped[int | None] = mapped_column(Integer)
    bit_rate: Mapped[int | None] = mapped_column(Integer)
    ecm: Mapped[bool | None] = mapped_column(Boolean)
    transport: Mapped[str | None] = mapped_column(String(8))
    bad_rows: Mapped[int | None] = mapped_column(Integer)
    remote_ident: Mapped[str | None] = mapped_column(String(32))
    t30_code: Mapped[int | None] = mapped_column(Integer)
    t30_text: Mapped[str | None] = mapped_column(Text)
    sip_status: Mapped[int | None] = mapped_column(Integer)
    sip_reason: Mapped[str | None] = mapped_column(String(128))
    # "standard" when the far end refused fine pages and they were resent at standard.
    resolution: Mapped[str | None] = mapped_column(String(16))

    delivery: Mapped[Delivery] = relationship(back_populates="attempt_log")


class Route(Base):
    """Where numbers go besides local extensions: simulators now, SIP trunks later."""

    __tablename__ = "routes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # simulator
    max_calls: Mapped[int] = mapped_column(Integer, default=4)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Node(Base):
    """A `faxline serve` or `faxline worker` process sharing the database: its heartbeat."""

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the dispatcher's worker id
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # serve | worker
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)  # database time
    calls_running: Mapped[int] = mapped_column(Integer)
    max_calls: Mapped[int] = mapped_column(Integer)  # its FAXLINE_MAX_CALLS


class RegistrationLease(Base):
    """The node that keeps a trunk's registration, until `expires_at` (database time)."""

    __tablename__ = "registration_leases"

    trunk: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class WebhookEndpoint(Base):
    """Where an app wants its events (`apps[].webhooks` of the provisioning file)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(255))  # whsec_<base64>
    events: Mapped[list[str] | None] = mapped_column(JSON)  # None: every event

    app: Mapped[App] = relationship(lazy="joined")


class OutboxMessage(Base):
    """A side effect to carry out (a webhook to post), written in the same transaction as
    the change that causes it and claimed by the sender with a lease (STYLE.md point 16)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # webhook | mail
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    # Messages of one fax to one endpoint go out in id order; not a foreign key, so that
    # the log outlives a deleted fax.
    fax_id: Mapped[int | None] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(64))  # webhook-id, the same on every retry
    # A webhook's exact body (signed and sent as is); a mail's facts as JSON.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    endpoint: Mapped[WebhookEndpoint | None] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_order", "endpoint_id", "fax_id", "id"),
    )


class OutboxAttempt(Base):
    """One try at an outbox message: the answer's status code, or what went wrong."""

    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))

    message: Mapped[OutboxMessage] = relationship(lazy="joined")


class Blob(Base):
    """A stored document on PostgreSQL (see store.blobrows): its name is `Fax.document`.

    No foreign key to faxes: a blob is written before its fax row exists in the same
    transaction, and SQLite keeps the same names as files instead."""

    __tablename__ = "blobs"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class BlobChunk(Base):
    """One piece of a blob, `Blob.chunk_size` bytes (the last may be shorter)."""

    __tablename__ = "blob_chunks"

    blob_name: Mapped[str] = mapped_column(
        String(255), ForeignKey("blobs.name", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
