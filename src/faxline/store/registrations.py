"""Which node keeps each trunk's registration: a lease row per trunk.

A registrar holds one binding per account, so exactly one node REGISTERs to a trunk at a
time. The node that holds a trunk's row renews it well before it runs out; when that node
dies (SIGKILL), its row runs out within the lease time and the next node to ask takes it.
Times are the database's clock (like deliveries' leases). On SQLite there is one node, and
it always holds every registration.

On PostgreSQL two nodes asking at once for a row that ran out are serialised by the row's
lock: the second one re-reads the row after the first committed, finds it no longer
expired, and gets nothing; two inserting a first row meet the primary key.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from faxline.store.dbclock import db_now
from faxline.store.models import RegistrationLease


def hold(session: Session, trunk: str, owner: str, lease_s: float) -> bool:
    """Take or renew `trunk`'s registration lease for `owner`; False if another node holds
    it. Commits."""
    if session.get_bind().dialect.name == "sqlite":
        return True
    done = session.execute(
        update(RegistrationLease)
        .where(
            RegistrationLease.trunk == trunk,
            or_(RegistrationLease.owner == owner, RegistrationLease.expires_at < db_now()),
        )
        .values(owner=owner, expires_at=db_now(lease_s))
    )
    if done.rowcount == 1:  # type: ignore[attr-defined]
        session.commit()
        return True
    try:
        session.execute(
            insert(RegistrationLease).values(trunk=trunk, owner=owner, expires_at=db_now(lease_s))
        )
        session.commit()
    except IntegrityError:  # the row exists and is another node's
        session.rollback()
        return False
    return True


def let_go(session: Session, trunk: str, owner: str) -> None:
    """Give `trunk`'s lease up (a clean stop), so that another node takes it at once."""
    session.execute(
        delete(RegistrationLease).where(
            RegistrationLease.trunk == trunk, RegistrationLease.owner == owner
        )
    )
    session.commit()
