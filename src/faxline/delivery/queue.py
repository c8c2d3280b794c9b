"""The deliveries table as a queue: claim with a lease, record attempts, finish exactly once.

A claim is a conditional UPDATE (the row is taken only if it is still due, or its lease has
expired); on PostgreSQL the candidates are picked with FOR UPDATE SKIP LOCKED so that
workers do not queue behind each other. Every later write checks that the lease is still
ours, so a worker whose lease was taken over cannot record a second outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from faxline.delivery.calls import CallOutcome
from faxline.delivery.policy import Decision
from faxline.store.models import Attempt, Delivery
from faxline.store.status import DeliveryStatus

_WAITING = (DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value)


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    fax_id: int
    destination: str
    attempts: int  # attempts made before this one


def _due(now: dt.datetime):  # type: ignore[no-untyped-def]
    return or_(
        and_(Delivery.status.in_(_WAITING), Delivery.next_attempt_at <= now),
        and_(Delivery.status == DeliveryStatus.SENDING.value, Delivery.lease_expires_at < now),
    )


def claim_due(
    session: Session, worker: str, limit: int, now: dt.datetime, lease_s: float
) -> list[Claim]:
    """Take up to `limit` due deliveries for `worker`. Commits."""
    candidates = (
        select(Delivery.id).where(_due(now)).order_by(Delivery.next_attempt_at, Delivery.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates.limit(limit * 2)))
    claims: list[Claim] = []
    expires = now + dt.timedelta(seconds=lease_s)
    for delivery_id in ids:
        if len(claims) >= limit:
            break
        taken = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, _due(now))
            .values(
                status=DeliveryStatus.SENDING.value,
                lease_owner=worker,
                lease_expires_at=expires,
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
            .values(ended_at=now, outcome="interrupted")
        )
        claims.append(Claim(delivery_id, taken.fax_id, taken.destination, taken.attempts))
    session.commit()
    return claims


def _ours(delivery_id: int, worker: str):  # type: ignore[no-untyped-def]
    return and_(
        Delivery.id == delivery_id,
        Delivery.lease_owner == worker,
        Delivery.status == DeliveryStatus.SENDING.value,
    )


def start_attempt(session: Session, claim: Claim, worker: str, now: dt.datetime) -> int | None:
    """Count the attempt and open its record; None if the lease is no longer ours. Commits."""
    done = session.execute(
        update(Delivery)
        .where(_ours(claim.delivery_id, worker))
        .values(attempts=Delivery.attempts + 1, updated_at=now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    attempt = Attempt(delivery_id=claim.delivery_id, started_at=now)
    session.add(attempt)
    session.commit()
    return attempt.id


def renew(
    session: Session, delivery_id: int, worker: str, now: dt.datetime, lease_s: float
) -> bool:
    """Extend our lease; False if it is gone. Commits."""
    done = session.execute(
        update(Delivery)
        .where(_ours(delivery_id, worker))
        .values(lease_expires_at=now + dt.timedelta(seconds=lease_s))
    )
    session.commit()
    return done.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def release(session: Session, claim: Claim, worker: str, now: dt.datetime, delay_s: float) -> None:
    """Give a claimed delivery back (capacity, shutdown); a call it had open ends as
    interrupted. Commits."""
    done = session.execute(
        update(Delivery)
        .where(_ours(claim.delivery_id, worker))
        .values(
            status=case(
                (Delivery.attempts > 0, DeliveryStatus.RETRYING.value),
                else_=DeliveryStatus.QUEUED.value,
            ),
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=now + dt.timedelta(seconds=delay_s),
            updated_at=now,
        )
    )
    if done.rowcount == 1:  # type: ignore[attr-defined]
        session.execute(
            update(Attempt)
            .where(Attempt.delivery_id == claim.delivery_id, Attempt.ended_at.is_(None))
            .values(ended_at=now, outcome="interrupted")
        )
    session.commit()


def finish(
    session: Session,
    claim: Claim,
    worker: str,
    attempt_id: int | None,
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
    done = session.execute(
        update(Delivery).where(_ours(claim.delivery_id, worker)).values(**values)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False
    if attempt_id is not None:
        session.execute(
            update(Attempt)
            .where(Attempt.id == attempt_id)
            .values(
                ended_at=now,
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
            )
        )
    return True
