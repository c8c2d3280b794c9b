"""Nodes' heartbeats, and the cluster as `faxline status` shows it.

Every process that shares the database (`faxline serve`, `faxline worker`) writes its row
in `nodes` every few seconds: when it started, when it was last seen (the database's
clock, like leases), how many calls it is running. A node is alive while its last beat is
recent; one killed with SIGKILL simply stops beating, and its row is swept an hour later.
The calls a node really holds are read from the deliveries' leases, which are the truth
the dispatchers act on; the beat's figure adds the inbound calls it is answering.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from faxline.store.dbclock import db_now
from faxline.store.models import Delivery, Node
from faxline.store.status import DeliveryStatus

FORGET_AFTER_S = 3600.0
"""A node silent this long is removed from the table (it is not coming back as itself)."""


@dataclass(frozen=True)
class NodeIdentity:
    id: str
    host: str
    pid: int
    role: str  # serve | worker
    max_calls: int


def beat(session: Session, node: NodeIdentity, calls_running: int) -> None:
    """Write `node`'s heartbeat (creating its row on the first beat). Commits.

    Only the node itself writes its row, so update-then-insert cannot race."""
    done = session.execute(
        update(Node)
        .where(Node.id == node.id)
        .values(last_seen_at=db_now(), calls_running=calls_running, max_calls=node.max_calls)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(
            insert(Node).values(
                id=node.id,
                host=node.host,
                pid=node.pid,
                role=node.role,
                started_at=db_now(),
                last_seen_at=db_now(),
                calls_running=calls_running,
                max_calls=node.max_calls,
            )
        )
    session.execute(delete(Node).where(Node.last_seen_at < db_now(-FORGET_AFTER_S)))
    session.commit()


def leave(session: Session, node_id: str) -> None:
    """A node that stops cleanly takes its row away. Commits."""
    session.execute(delete(Node).where(Node.id == node_id))
    session.commit()


@dataclass(frozen=True)
class NodeState:
    id: str
    host: str
    pid: int
    role: str
    started_at: dt.datetime
    last_seen_at: dt.datetime
    alive: bool
    calls_running: int  # its last beat: outbound and inbound calls
    leases: int  # deliveries it holds now (sending, lease not run out)
    max_calls: int


@dataclass(frozen=True)
class ClusterStatus:
    now: dt.datetime  # the database's
    nodes: list[NodeState]
    queue: dict[str, int]  # deliveries by status
    due: int  # queued or retrying and due now
    oldest_due_id: int | None
    oldest_due_at: dt.datetime | None
    orphaned: int  # sending, but the lease ran out (its node died; another will take it)

    @property
    def alive(self) -> list[NodeState]:
        return [n for n in self.nodes if n.alive]


def cluster_status(session: Session, stale_after_s: float) -> ClusterStatus:
    """The cluster now: a node is alive if it beat within `stale_after_s` seconds."""
    now = session.scalar(select(db_now()))
    assert now is not None
    threshold = session.scalar(select(db_now(-stale_after_s)))
    sending = DeliveryStatus.SENDING.value
    leases = dict(
        session.execute(
            select(Delivery.lease_owner, func.count())
            .where(Delivery.status == sending, Delivery.lease_expires_at > db_now())
            .group_by(Delivery.lease_owner)
        ).all()
    )
    nodes = [
        NodeState(
            id=n.id,
            host=n.host,
            pid=n.pid,
            role=n.role,
            started_at=n.started_at,
            last_seen_at=n.last_seen_at,
            alive=threshold is not None and n.last_seen_at >= threshold,
            calls_running=n.calls_running,
            leases=int(leases.get(n.id, 0)),
            max_calls=n.max_calls,
        )
        for n in session.scalars(select(Node).order_by(Node.started_at, Node.id))
    ]
    queue = {
        status: int(count)
        for status, count in session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)
        ).all()
    }
    waiting = (DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value)
    due_now = (Delivery.status.in_(waiting), Delivery.next_attempt_at <= now)
    due = session.scalar(select(func.count()).where(*due_now)) or 0
    oldest = session.execute(
        select(Delivery.id, Delivery.next_attempt_at)
        .where(*due_now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(1)
    ).first()
    orphaned = (
        session.scalar(
            select(func.count()).where(
                Delivery.status == sending, Delivery.lease_expires_at <= db_now()
            )
        )
        or 0
    )
    return ClusterStatus(
        now=now,
        nodes=nodes,
        queue=queue,
        due=int(due),
        oldest_due_id=oldest[0] if oldest else None,
        oldest_due_at=oldest[1] if oldest else None,
        orphaned=int(orphaned),
    )


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render(status: ClusterStatus) -> str:
    """`faxline status`'s text: nodes, their calls, the queue."""
    lines = [f"nodes: {len(status.alive)} alive, {len(status.nodes) - len(status.alive)} silent"]
    for n in status.nodes:
        seen = _age((status.now - n.last_seen_at).total_seconds())
        state = "alive" if n.alive else "silent"
        lines.append(
            f"  {n.id}  {n.role:<6} {state:<6} pid {n.pid} on {n.host}, "
            f"{n.leases}/{n.max_calls} deliveries sending, {n.calls_running} calls "
            f"(last seen {seen} ago, up {_age((status.now - n.started_at).total_seconds())})"
        )
    order = [s.value for s in DeliveryStatus]
    known = [s for s in order if s in status.queue] + sorted(set(status.queue) - set(order))
    counts = ", ".join(f"{s} {status.queue[s]}" for s in known) or "empty"
    lines.append(f"deliveries: {counts}")
    if status.orphaned:
        lines.append(f"  {status.orphaned} sending on a lease that ran out (taken over next)")
    if status.oldest_due_at is not None:
        wait = _age((status.now - status.oldest_due_at).total_seconds())
        lines.append(
            f"due now: {status.due}; oldest is delivery {status.oldest_due_id}, due for {wait}"
        )
    else:
        lines.append("due now: 0")
    return "\n".join(lines)
