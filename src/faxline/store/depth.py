"""How much waits: unfinished deliveries by status and pending outbox messages by channel,
with the oldest due one of each, read in one query (for the scrape of GET /metrics).

Only unfinished rows are counted: finished ones grow without bound, and the due index
(status, next_attempt_at) of both tables serves exactly these filters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import case, func, literal, select, text, union_all
from sqlalchemy.orm import Session

from faxline.store.models import Delivery, OutboxMessage, UtcDateTime
from faxline.store.status import UNFINISHED, DeliveryStatus

_WAITING = (DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value)
OUTBOX_CHANNELS = ("webhook", "mail")


@dataclass(frozen=True)
class Depth:
    deliveries: dict[str, int]  # every unfinished status, 0 included
    oldest_due_delivery: dt.datetime | None  # queued or retrying, due by now
    outbox: dict[str, int]  # pending messages by channel, 0 included
    oldest_due_outbox: dict[str, dt.datetime] = field(default_factory=dict)


def depth(session: Session, now: dt.datetime) -> Depth:
    """The queue's depth now."""
    due_delivery = case(
        (
            Delivery.status.in_(_WAITING) & (Delivery.next_attempt_at <= now),
            Delivery.next_attempt_at,
        )
    )
    deliveries = select(
        literal("delivery").label("kind"),
        Delivery.status.label("key"),
        func.count().label("n"),
        func.min(due_delivery, type_=UtcDateTime).label("oldest"),
    ).where(Delivery.status.in_([s.value for s in UNFINISHED]))
    due_message = case((OutboxMessage.next_attempt_at <= now, OutboxMessage.next_attempt_at))
    messages = select(
        literal("outbox"),
        OutboxMessage.channel,
        func.count(),
        func.min(due_message, type_=UtcDateTime),
    ).where(OutboxMessage.status == "pending")
    query = union_all(
        deliveries.group_by(Delivery.status), messages.group_by(OutboxMessage.channel)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Both halves are index scans of a few ms; PostgreSQL's planner still sends the
        # union to parallel workers, whose start-up cost ten times the query (bench/metrics).
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    by_status = {s.value: 0 for s in DeliveryStatus if s in UNFINISHED}
    by_channel = dict.fromkeys(OUTBOX_CHANNELS, 0)
    oldest: dt.datetime | None = None
    oldest_outbox: dict[str, dt.datetime] = {}
    for kind, key, n, first in session.execute(query):
        if kind == "delivery":
            by_status[key] = n
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        else:
            by_channel[key] = n
            if first is not None:
                oldest_outbox[key] = first
    return Depth(by_status, oldest, by_channel, oldest_outbox)
