"""The deliveries table as a queue: claim with a lease, record attempts, finish exactly once.

A claim is a conditional UPDATE (the row is taken only if it is still due, or its lease has
expired); on PostgreSQL the candidates are picked with FOR UPDATE SKIP LOCKED so that
workers do not queue behind each other. A claim opens the attempt's record, and the
delivery names that attempt as the lease's holder (``lease_attempt_id``): every later write
of the attempt is conditional on it (a fence), so an attempt whose lease was taken over
changes nothing, and the caller hears so (the functions return False).

Lease times are the database's (:class:`faxline.store.dbclock.db_now`): two workers whose
clocks disagree still agree on whose lease has run out. When a delivery is next due stays
the dispatcher's clock (the retry policy's time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session, aliased

from faxline.delivery.calls import CallOutcome
from faxline.delivery.policy import Decision
from faxline.store import outbox
from faxline.store.claiming import skip_locked
from faxline.store.dbclock import db_now
from faxline.store.models import Attempt, Delivery, UtcDateTime
from faxline.store.status import DeliveryStatus

_WAITING = (DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value)
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    fax_id: int
    destination: str
    attempts: int  # attempts made before this one
    attempt_id: int  # this attempt's record; it holds the lease


def _due(now: dt.datetime):  # type: ignore[no-untyped-def]
    return or_(
        and_(Delivery.status.in_(_WAITING), Delivery.next_attempt_at <= now),
        and_(
            Delivery.status == DeliveryStatus.SENDING.value,
            Delivery.lease_expires_at < db_now(),
        ),
    )


def claim_due(
    session: Session, worker: str, limit: int, now: dt.datetime, lease_s: float
) -> list[Claim]:
    """Take up to `limit` due deliveries for `worker`, each with a new attempt. Commits."""
    candidates = skip_locked(
        session,
        select(Delivery.id).where(_due(now)).order_by(Delivery.next_attempt_at, Delivery.id),
    )
    ids = list(session.scalars(candidates.limit(limit * 2)))
    claims: list[Claim] = []
    for delivery_id in ids:
        if len(claims) >= limit:
            break
        taken = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, _due(now))
            .values(
                status=DeliveryStatus.SENDING.value,
                lease_owner=worker,
                lease_expires_at=db_now(lease_s),
                call_route=None,  # a dead holder's slot is not ours: take one anew
                updated_at=now,
            )
            .returning(Delivery.fax_id, Delivery.destination, Delivery.attempts)
        ).first()
        if taken is None:
            continue
        # A call of an earlier holder that never finished (its process died) ends here.
        session.execute(
            update(Attempt)
            .where(Attempt.delivery_id == delivery_id, Attempt.ended_at.is_(None))
            .values(ended_at=now, outcome=INTERRUPTED)
        )
        attempt = Attempt(delivery_id=delivery_id, started_at=now)
        session.add(attempt)
        session.flush()
        session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(lease_attempt_id=attempt.id)
        )
        claims.append(
            Claim(delivery_id, taken.fax_id, taken.destination, taken.attempts, attempt.id)
        )
        outbox.delivery_changed(session, taken.fax_id, [delivery_id], now, finished=False)
    session.commit()
    return claims


def _ours(claim: Claim):  # type: ignore[no-untyped-def]
    return and_(
        Delivery.id == claim.delivery_id,
        Delivery.lease_attempt_id == claim.attempt_id,
        Delivery.status == DeliveryStatus.SENDING.value,
    )


SLOT_LOCKS = 0x66786C  # "fxl": the first half of a route's advisory lock key on PostgreSQL


def take_slot(session: Session, claim: Claim, route: str, max_calls: int) -> bool:
    """Take one of `route`'s `max_calls` call slots for our claimed delivery; False when
    all are taken on some node of the cluster (or the lease is no longer ours). Commits.

    A slot is a `sending` delivery whose `call_route` names the route and whose lease has
    not run out, so the count is cluster-wide and a dead node's slots free themselves when
    its leases run out. Counting and taking are one conditional UPDATE. SQLite runs a
    write statement under its database lock, so two processes cannot interleave in it. On
    PostgreSQL two such statements would each count the other's row as not yet there, so
    takers of one route queue on an advisory lock (held to the commit) first; under READ
    COMMITTED the UPDATE that follows the lock sees the slots committed before it.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(SLOT_LOCKS, func.hashtext(route))))
    other = aliased(Delivery)
    in_use = (
        select(func.count())
        .select_from(other)
        .where(
            other.call_route == route,
            other.status == DeliveryStatus.SENDING.value,
            other.lease_expires_at > db_now(),
        )
        .scalar_subquery()
    )
    done = session.execute(
        update(Delivery).where(_ours(claim), in_use < max_calls).values(call_route=route)
    )
    session.commit()
    return done.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def start_attempt(
    session: Session,
    claim: Claim,
    now: dt.datetime,
    *,
    trunk: str | None = None,
    local_number: str | None = None,
) -> bool:
    """Count the attempt (its call is about to start) and note its call record's route and
    numbers; False if the lease is no longer ours. Commits."""
    done = session.execute(
        update(Delivery).where(_ours(claim)).values(attempts=Delivery.attempts + 1, updated_at=now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return False
    session.execute(
        update(Attempt)
        .where(Attempt.id == claim.attempt_id)
        .values(
            started_at=now,
            trunk=trunk,
            local_number=local_number,
            remote_number=claim.destination,
            fax_id=claim.fax_id,
        )
    )
    session.commit()
    return True


def renew(session: Session, claim: Claim, lease_s: float) -> bool:
    """Extend our lease by `lease_s` from the database's now; False if it is gone. Commits."""
    done = session.execute(
        update(Delivery).where(_ours(claim)).values(lease_expires_at=db_now(lease_s))
    )
    session.commit()
    return done.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def interrupt(session: Session, claim: Claim, now: dt.datetime) -> None:
    """Record our attempt as interrupted (its call was stopped), unless it has ended already.
    Touches only the attempt's own record: the delivery is no longer ours. Commits."""
    session.execute(
        update(Attempt)
        .where(Attempt.id == claim.attempt_id, Attempt.ended_at.is_(None))
        .values(ended_at=now, outcome=INTERRUPTED)
    )
    session.commit()


def release(
    session: Session, claim: Claim, now: dt.datetime, delay_s: float, *, started: bool
) -> bool:
    """Give a claimed delivery back (capacity, shutdown). A call it had `started` ends as
    interrupted; an attempt that never started is forgotten. False if the lease was no
    longer ours. Commits."""
    done = session.execute(
        update(Delivery)
        .where(_ours(claim))
        .values(
            status=case(
                (Delivery.attempts > 0, DeliveryStatus.RETRYING.value),
                else_=DeliveryStatus.QUEUED.value,
            ),
            lease_owner=None,
            lease_expires_at=None,
            lease_attempt_id=None,
            call_route=None,
            next_attempt_at=now + dt.timedelta(seconds=delay_s),
            updated_at=now,
        )
    )
    ours = done.rowcount == 1  # type: ignore[attr-defined]
    if ours and not started:
        session.execute(delete(Attempt).where(Attempt.id == claim.attempt_id))
    else:
        session.execute(
            update(Attempt)
            .where(Attempt.id == claim.attempt_id, Attempt.ended_at.is_(None))
            .values(ended_at=now, outcome=INTERRUPTED)
        )
    if ours:  # the delivery is back in the queue: its status changed
        outbox.delivery_changed(session, claim.fax_id, [claim.delivery_id], now, finished=False)
    session.commit()
    return ours  # type: ignore[no-any-return]


def finish(
    session: Session,
    claim: Claim,
    outcome: CallOutcome,
    decision: Decision,
    now: dt.datetime,
) -> bool:
    """Record the attempt's outcome and the delivery's new state, if the lease is still ours.

    Does not commit: the caller adds what goes with it (a received fax) and commits, so that
    the delivery and what it delivered are written together or not at all.
    """
    final = decision.status in (
        DeliveryStatus.DELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.CANCELLED,
    )
    values: dict[str, object] = {
        "status": decision.status.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "lease_attempt_id": None,
        "call_route": None,
        "next_attempt_at": decision.next_attempt_at,
        "failure_reason": decision.failure_reason,
        "updated_at": now,
        "completed_at": now if final else None,
    }
    if outcome.transport is not None:
        values.update(
            pages_sent=outcome.pages,
            bit_rate=outcome.bit_rate,
            ecm=outcome.ecm,
            transport=outcome.transport,
            bad_rows=outcome.bad_rows,
            t30_code=outcome.t30_code,
            t30_text=outcome.t30_text,
        )
    done = session.execute(update(Delivery).where(_ours(claim)).values(**values))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(
        update(Attempt)
        .where(Attempt.id == claim.attempt_id)
        .values(
            ended_at=now,
            answered_at=_answered(now, outcome.talk_s),
            outcome=outcome.cause.value,
            pages_sent=outcome.pages,
            bit_rate=outcome.bit_rate,
            ecm=outcome.ecm,
            transport=outcome.transport,
            bad_rows=outcome.bad_rows,
            remote_ident=outcome.remote_ident,
            t30_code=outcome.t30_code,
            t30_text=outcome.t30_text,
            sip_status=outcome.sip_status,
            sip_reason=outcome.sip_reason,
            resolution=outcome.resolution,
        )
    )
    outbox.delivery_changed(session, claim.fax_id, [claim.delivery_id], now, finished=final)
    return True


def _answered(now: dt.datetime, talk_s: float | None):  # type: ignore[no-untyped-def]
    """When the call was answered: its talk time before `now`, never before its start."""
    if talk_s is None:
        return None
    answered = literal(now - dt.timedelta(seconds=talk_s), UtcDateTime)
    return case((Attempt.started_at > answered, Attempt.started_at), else_=answered)
