"""The outbox: side effects (webhook posts, mails) written in the same transaction as the change
that causes them, then claimed by a sender with a lease, like deliveries (STYLE.md 16).

Events of one fax reach one endpoint in the order they were written: a message is due only
when no earlier message of the same fax to the same endpoint (for a mail: no earlier mail
of the fax) is still pending. A sender that dies holding a lease loses it when it expires,
and the message is sent again (at least once, with the same webhook-id).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, event, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased, selectinload, sessionmaker
from sqlalchemy.sql.expression import ColumnElement, Exists

from faxline.store.claiming import skip_locked
from faxline.store.models import (
    App,
    Delivery,
    Extension,
    Fax,
    OutboxAttempt,
    OutboxMessage,
    User,
    WebhookEndpoint,
)
from faxline.store.status import FaxStatus, fax_status
from faxline.store.views import delivery_view, fax_view, iso

FAX_CREATED = "fax.created"
FAX_DELIVERY_UPDATED = "fax.delivery.updated"
FAX_COMPLETED = "fax.completed"
FAX_RECEIVED = "fax.received"
EVENT_TYPES = (FAX_CREATED, FAX_DELIVERY_UPDATED, FAX_COMPLETED, FAX_RECEIVED)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

_FINISHED_FAX = frozenset(
    {FaxStatus.SENT, FaxStatus.PARTIALLY_SENT, FaxStatus.FAILED, FaxStatus.CANCELLED}
)
_FAX_LOAD = (
    selectinload(Fax.deliveries).selectinload(Delivery.attempt_log),
    selectinload(Fax.documents),
)


_WRITTEN = "faxline.outbox_written"


def _written(session: Session) -> None:
    """Mark the session's transaction as one that wrote messages (see `on_commit`)."""
    session.info[_WRITTEN] = True


def on_commit(sessions: sessionmaker[Session], wake: Callable[[], None]) -> Callable[[], None]:
    """Call `wake` after each commit, in this process, of a session from `sessions` that
    wrote outbox messages (in the committing thread; `wake` must be thread-safe), so a
    sender starts on them at once rather than at its next poll. Returns the undo.

    Commits of other processes are found by polling as before."""

    def committed(session: Session) -> None:
        if session.info.pop(_WRITTEN, False):
            wake()

    def rolled_back(session: Session) -> None:
        session.info.pop(_WRITTEN, None)

    event.listen(sessions, "after_commit", committed)
    event.listen(sessions, "after_rollback", rolled_back)

    def undo() -> None:
        event.remove(sessions, "after_commit", committed)
        event.remove(sessions, "after_rollback", rolled_back)

    return undo


def _audience(session: Session, extension_id: int, event_type: str) -> list[int]:
    """The endpoints that get this extension's events: those of every app whose owner may
    act for the extension's owner (the API's rule, `faxline.auth.context.Principal`)."""
    ext = session.execute(
        select(Extension.owner_id, Extension.organization_id).where(Extension.id == extension_id)
    ).one()
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events, User.id, User.role, User.organization_id)
        .join(App, WebhookEndpoint.app_id == App.id)
        .join(User, App.owner_id == User.id)
    ).all()
    out: list[int] = []
    for endpoint_id, events, user_id, role, org_id in rows:
        if events is not None and event_type not in events:
            continue
        if role == "admin" or (
            (role == "organization" and org_id is not None and org_id == ext.organization_id)
            or user_id == ext.owner_id
        ):
            out.append(endpoint_id)
    return out


def fax_event(
    session: Session,
    fax_id: int,
    event_type: str,
    now: dt.datetime,
    *,
    delivery_id: int | None = None,
) -> int:
    """Write `event_type` for this fax to every endpoint that may see it, inside the
    caller's transaction (nothing is committed); how many messages were written."""
    extension_id = session.scalar(select(Fax.extension_id).where(Fax.id == fax_id))
    if extension_id is None:
        return 0
    endpoints = _audience(session, extension_id, event_type)
    if not endpoints:
        return 0
    # Read the fax as this transaction leaves it, not as the session remembers it.
    fax = session.execute(
        select(Fax)
        .where(Fax.id == fax_id)
        .options(*_FAX_LOAD)
        .execution_options(populate_existing=True)
    ).scalar_one()
    data: dict[str, Any] = fax_view(fax)
    if delivery_id is not None:
        for d in fax.deliveries:
            if d.id == delivery_id:
                data["delivery"] = delivery_view(d)
    body = json.dumps(
        {"type": event_type, "timestamp": iso(now), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    session.execute(
        insert(OutboxMessage),
        [
            {
                "channel": "webhook",
                "endpoint_id": endpoint_id,
                "fax_id": fax_id,
                "event_type": event_type,
                "message_id": "msg_" + secrets.token_hex(16),
                "payload": body,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in endpoints
        ],
    )
    _written(session)
    return len(endpoints)


def delivery_changed(
    session: Session,
    fax_id: int,
    delivery_ids: Sequence[int],
    now: dt.datetime,
    *,
    finished: bool,
) -> None:
    """`fax.delivery.updated` for each changed delivery, then `fax.completed` if one of
    them `finished` and that finished the fax. Inside the caller's transaction."""
    if not delivery_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Two workers finishing the last two deliveries of one fax: the second to take
        # this lock sees the first's commit, so exactly one of them writes fax.completed.
        session.execute(select(Fax.id).where(Fax.id == fax_id).with_for_update())
    for delivery_id in delivery_ids:
        fax_event(session, fax_id, FAX_DELIVERY_UPDATED, now, delivery_id=delivery_id)
    if not finished:
        return
    statuses = session.scalars(select(Delivery.status).where(Delivery.fax_id == fax_id)).all()
    status = fax_status(statuses)
    if status in _FINISHED_FAX:
        fax_event(session, fax_id, FAX_COMPLETED, now)
    if status in (FaxStatus.FAILED, FaxStatus.PARTIALLY_SENT):
        mail_failed(session, fax_id, now)
    if status in _FINISHED_FAX:
        mail_reply(session, fax_id, "completed", now)


def _mail(session: Session, fax_id: int | None, facts: dict[str, Any], now: dt.datetime) -> None:
    _written(session)
    session.execute(
        insert(OutboxMessage).values(
            channel="mail",
            endpoint_id=None,
            fax_id=fax_id,
            event_type="mail." + facts["kind"],
            message_id=secrets.token_hex(16),
            payload=json.dumps(facts, ensure_ascii=False),
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def mail_received(session: Session, fax_id: int, now: dt.datetime) -> None:
    """A mail with the received fax to its extension's addresses, if it has any."""
    fax = session.get(Fax, fax_id)
    if fax is None or not fax.extension.emails:
        return
    _mail(
        session,
        fax_id,
        {
            "kind": "received",
            "to": list(fax.extension.emails),
            "faxId": fax.id,
            "extension": fax.extension.number,
            "document": fax.document,
            "pages": fax.pages,
            "callerId": fax.remote_number,
            "remoteIdent": fax.remote_ident,
            "when": iso(fax.created_at),
        },
        now,
    )


def mail_failed(session: Session, fax_id: int, now: dt.datetime) -> None:
    """A mail to the sending extension's addresses: the fax failed or went only in part."""
    fax = session.execute(
        select(Fax)
        .where(Fax.id == fax_id)
        .options(*_FAX_LOAD)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if not fax.extension.emails:
        return
    _mail(
        session, fax_id, {"kind": "failed", "to": list(fax.extension.emails), **_outcome(fax)}, now
    )


def _outcome(fax: Fax) -> dict[str, Any]:
    return {
        "faxId": fax.id,
        "extension": fax.extension.number,
        "pages": fax.pages,
        "status": fax_status(d.status for d in fax.deliveries).value,
        "when": iso(fax.created_at),
        "deliveries": [
            {
                "recipient": d.recipient,
                "status": d.status,
                "failureReason": d.failure_reason,
                "pagesSent": d.pages_sent,
                "attempts": d.attempts,
            }
            for d in fax.deliveries
        ],
    }


def mail_reply(session: Session, fax_id: int, kind: str, now: dt.datetime) -> None:
    """For a fax sent by mail: a reply to its sender that it was `queued` or `completed`."""
    fax = session.execute(
        select(Fax)
        .where(Fax.id == fax_id)
        .options(*_FAX_LOAD)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if fax.reply_to is None:
        return
    _mail(session, fax_id, {"kind": kind, "to": [fax.reply_to], **_outcome(fax)}, now)


def mail_rejected(session: Session, to: str, subject: str, reason: str, now: dt.datetime) -> None:
    """A reply to a mail that could not become a fax (nothing was sent). Commits."""
    _mail(
        session, None, {"kind": "rejected", "to": [to], "subject": subject, "reason": reason}, now
    )
    session.commit()


# The senders' side.


@dataclass(frozen=True)
class Message:
    id: int
    endpoint_id: int | None  # None: a mail
    url: str
    secret: str
    message_id: str
    payload: str
    attempts: int  # made before this one


def _due(now: dt.datetime):  # type: ignore[no-untyped-def]
    earlier = aliased(OutboxMessage)

    def blocked(channel: ColumnElement[bool]) -> Exists:
        return exists().where(
            channel,
            earlier.fax_id == OutboxMessage.fax_id,
            earlier.id < OutboxMessage.id,
            earlier.status == PENDING,
        )

    # Two plain lookups on ix_outbox_order, not one with an OR in it (which no index
    # serves: every claim would read the whole backlog once per pending row). Mails (no
    # endpoint) of one fax go in order too: the reply that a fax is queued before the one
    # that it failed, however fast it fails.
    return and_(
        OutboxMessage.status == PENDING,
        OutboxMessage.next_attempt_at <= now,
        _lease_free(now),
        or_(
            OutboxMessage.fax_id.is_(None),
            and_(
                OutboxMessage.endpoint_id.is_not(None),
                ~blocked(earlier.endpoint_id == OutboxMessage.endpoint_id),
            ),
            and_(OutboxMessage.endpoint_id.is_(None), ~blocked(earlier.endpoint_id.is_(None))),
        ),
    )


def _lease_free(now: dt.datetime):  # type: ignore[no-untyped-def]
    return or_(OutboxMessage.lease_expires_at.is_(None), OutboxMessage.lease_expires_at < now)


def claim(
    session: Session,
    worker: str,
    now: dt.datetime,
    *,
    per_endpoint: int,
    busy: Mapping[int | None, int],
    mails: bool,
    limit: int,
    lease_s: float,
    mail_lease_s: float,
) -> list[Message]:
    """Take up to `limit` due messages in one transaction, oldest fax first: of each endpoint
    at most `per_endpoint` less those it has `busy` (in flight), and mails (the None
    endpoint) only if `mails`. Commits.

    Only the first pending message of a fax per endpoint is ever due, so a batch never holds
    two messages of one fax for one endpoint: the next goes out after this one is settled.
    An endpoint's share is bounded inside the query (its oldest rows only), so a backlog at
    one endpoint cannot crowd the others out of the batch.
    """

    def room(endpoint_id: int | None) -> int:
        return per_endpoint - busy.get(endpoint_id, 0)

    full = [e for e in busy if e is not None and room(e) <= 0]
    where = [_due(now)]
    if full:
        where.append(
            or_(OutboxMessage.endpoint_id.is_(None), OutboxMessage.endpoint_id.not_in(full))
        )
    if not mails or room(None) <= 0:
        where.append(OutboxMessage.endpoint_id.is_not(None))
    # Oldest fax first, not oldest message: the dispatcher sends the oldest faxes first,
    # so their delivery events are not held behind a burst of new faxes' fax.created
    # (1,000 faxes queued at once: 3 s of lag at p99 for the first deliveries). Order
    # within a fax is kept anyway (only its first pending message is due).
    fax_first = (func.coalesce(OutboxMessage.fax_id, 0), OutboxMessage.id)
    rank = (
        func.row_number()
        .over(partition_by=OutboxMessage.endpoint_id, order_by=fax_first)
        .label("rank")
    )
    ranked = (
        select(
            OutboxMessage.id,
            OutboxMessage.endpoint_id,
            func.coalesce(OutboxMessage.fax_id, 0).label("fax"),
            rank,
        )
        .where(*where)
        .subquery()
    )
    rows = session.execute(
        select(ranked.c.id, ranked.c.endpoint_id)
        .where(ranked.c.rank <= per_endpoint)
        .order_by(ranked.c.fax, ranked.c.id)
        .limit(limit)
    ).all()
    shares: Counter[int | None] = Counter()
    chosen: list[int] = []
    for message, endpoint_id in rows:
        if shares[endpoint_id] < room(endpoint_id):
            shares[endpoint_id] += 1
            chosen.append(message)
    if chosen:  # PostgreSQL: leave out rows another sender is claiming right now
        chosen = list(
            session.scalars(
                skip_locked(
                    session,
                    select(OutboxMessage.id)
                    .where(OutboxMessage.id.in_(chosen))
                    .order_by(OutboxMessage.id),
                )
            )
        )
    if not chosen:
        session.rollback()
        return []
    taken: list[Any] = []
    for is_mail, seconds in ((False, lease_s), (True, mail_lease_s)):
        channel = (
            OutboxMessage.endpoint_id.is_(None)
            if is_mail
            else OutboxMessage.endpoint_id.is_not(None)
        )
        taken += session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(chosen),
                channel,
                OutboxMessage.status == PENDING,
                _lease_free(now),
            )
            .values(lease_owner=worker, lease_expires_at=now + dt.timedelta(seconds=seconds))
            .returning(
                OutboxMessage.id,
                OutboxMessage.endpoint_id,
                OutboxMessage.message_id,
                OutboxMessage.payload,
                OutboxMessage.attempts,
            )
        ).all()
    endpoints = {
        e.id: e
        for e in session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id.in_({row.endpoint_id for row in taken} - {None})
            )
        )
    }
    session.commit()
    out = []
    for row in sorted(taken, key=lambda r: r.id):
        endpoint = endpoints.get(row.endpoint_id)
        out.append(
            Message(
                row.id,
                row.endpoint_id,
                endpoint.url if endpoint is not None else "",
                endpoint.secret if endpoint is not None else "",
                row.message_id,
                row.payload,
                row.attempts,
            )
        )
    return out


@dataclass(frozen=True)
class Outcome:
    """What one attempt at a message came to."""

    message: Message
    started: dt.datetime
    ended: dt.datetime
    ok: bool
    status_code: int | None
    error: str | None


def record(
    session: Session, worker: str, outcomes: Sequence[Outcome], schedule: Sequence[float]
) -> list[Outcome]:
    """Log each attempt and settle its message, all in one transaction: delivered, due again
    after the schedule's next delay, or failed when the schedule is spent. Returns the
    outcomes whose lease was lost meanwhile (nothing recorded for them). Commits."""
    lost = []
    for o in outcomes:
        attempts = o.message.attempts + 1
        values: dict[str, object] = {
            "attempts": attempts,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if o.ok:
            values.update(status=DELIVERED, completed_at=o.ended)
        elif attempts <= len(schedule):
            values.update(next_attempt_at=o.ended + dt.timedelta(seconds=schedule[attempts - 1]))
        else:
            values.update(status=FAILED, completed_at=o.ended)
        done = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == o.message.id,
                OutboxMessage.lease_owner == worker,
                OutboxMessage.status == PENDING,
            )
            .values(**values)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            lost.append(o)
            continue
        session.add(
            OutboxAttempt(
                message_id=o.message.id,
                started_at=o.started,
                ended_at=o.ended,
                ok=o.ok,
                status_code=o.status_code,
                error=o.error[:200] if o.error else None,
            )
        )
    session.commit()
    return lost


def attempts_of_app(
    session: Session, app_id: int, *, start: int, count: int
) -> tuple[int, list[OutboxAttempt]]:
    """(total, page) of the attempts made for an app's endpoints, newest first."""
    return webhook_attempts(session, WebhookEndpoint.app_id == app_id, start=start, count=count)


def attempts_of_organization(
    session: Session, organization_id: int | None, *, start: int, count: int
) -> tuple[int, list[OutboxAttempt]]:
    """(total, page) of the attempts made for the endpoints of every app whose owner is in
    this organization (None: of every app, for the global admin), newest first."""
    if organization_id is None:
        return webhook_attempts(session, start=start, count=count)
    apps = (
        select(App.id)
        .join(User, App.owner_id == User.id)
        .where(User.organization_id == organization_id)
    )
    return webhook_attempts(session, WebhookEndpoint.app_id.in_(apps), start=start, count=count)


def webhook_attempts(
    session: Session, *where: Any, start: int, count: int
) -> tuple[int, list[OutboxAttempt]]:
    """(total, page) of the webhook attempts whose endpoint matches `where`, newest first
    (each with its message, endpoint and app loaded: the views need them)."""
    found = (
        select(OutboxAttempt.id)
        .join(OutboxMessage, OutboxAttempt.message_id == OutboxMessage.id)
        .join(WebhookEndpoint, OutboxMessage.endpoint_id == WebhookEndpoint.id)
        .where(*where)
    )
    total = session.scalar(select(func.count()).select_from(found.subquery())) or 0
    rows = session.scalars(
        select(OutboxAttempt)
        .where(OutboxAttempt.id.in_(found))
        .order_by(OutboxAttempt.id.desc())
        .offset(start)
        .limit(count)
    ).all()
    return total, list(rows)


def attempt_view(a: OutboxAttempt) -> dict[str, Any]:
    m = a.message
    view: dict[str, Any] = {
        "id": a.id,
        "webhookId": m.message_id,
        "type": m.event_type,
        "url": m.endpoint.url if m.endpoint is not None else None,
        "faxId": m.fax_id,
        "started": iso(a.started_at),
        "ended": iso(a.ended_at),
        "ok": a.ok,
        "statusCode": a.status_code,
        "error": a.error,
        "messageStatus": m.status,
    }
    return {k: v for k, v in view.items() if v is not None}
