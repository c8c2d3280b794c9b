"""SQLAlchemy models: tenants, apps and tokens, faxes and their deliveries.

The deliveries table is the dispatcher's queue (STYLE.md point 8): no second source of truth.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
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


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The id that appears in URLs (`/uapi/faxes/alice/...`) and in the provisioning file.
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    role: Mapped[str] = mapped_column(String(16))  # user | organization | admin

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


class Fax(Base):
    __tablename__ = "faxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    direction: Mapped[str] = mapped_column(String(3))  # out | in
    extension_id: Mapped[int] = mapped_column(ForeignKey("extensions.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    pages: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[str] = mapped_column(String(8))
    document: Mapped[str] = mapped_column(String(255))  # file name inside the documents dir
    # Incoming faxes: who sent it.
    remote_ident: Mapped[str | None] = mapped_column(String(32))
    remote_number: Mapped[str | None] = mapped_column(String(64))
    # Outgoing faxes: the recipients as given in the request.
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)

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

    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)


class Attempt(Base):
    """One call made for a delivery."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
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

    delivery: Mapped[Delivery] = relationship(back_populates="attempt_log")


class Route(Base):
    """Where numbers go besides local extensions: simulators now, SIP trunks later."""

    __tablename__ = "routes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # simulator
    max_calls: Mapped[int] = mapped_column(Integer, default=4)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
