"""Which outbox messages a claim takes: the oldest fax's first, one at a time per fax (for
an endpoint and for mails), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from faxline.clock import utc_now
from faxline.store import outbox
from faxline.store.models import Fax, OutboxMessage
from tests.notify.conftest import World, secret

Make = Callable[..., Any]


def claim(world: World, *, per_endpoint: int, mails: bool = False) -> list[tuple[int, str]]:
    """(fax id, event type) of what one claim takes; the leases are let go at once."""
    with world.sessions() as s:
        taken = outbox.claim(
            s,
            "test",
            utc_now(),
            per_endpoint=per_endpoint,
            busy={},
            mails=mails,
            limit=100,
            lease_s=60,
            mail_lease_s=60,
        )
        ids = [m.id for m in taken]
        rows = s.execute(
            select(OutboxMessage.fax_id, OutboxMessage.event_type)
            .where(OutboxMessage.id.in_(ids))
            .order_by(OutboxMessage.id)
        ).all()
        s.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(lease_expires_at=None)
        )
        s.commit()
    return [(f, t) for f, t in rows]


def settle(world: World, fax_id: int, event_type: str) -> None:
    with world.sessions() as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.fax_id == fax_id, OutboxMessage.event_type == event_type)
            .values(status=outbox.DELIVERED)
        )
        s.commit()


def test_the_oldest_fax_goes_first_not_the_oldest_message(make_world: Make) -> None:
    world = make_world({"alice": [{"url": "http://127.0.0.1:9/", "secret": secret(1)}]})
    first, second = world.queue(["5550100"]), world.queue(["5550101"])
    settle(world, first, outbox.FAX_CREATED)
    with world.sessions() as s:  # the first fax's delivery changes after both were queued
        outbox.fax_event(s, first, outbox.FAX_DELIVERY_UPDATED, utc_now())
        s.commit()
    # One post in flight for the endpoint: the first fax's change, not the second's
    # (older) fax.created.
    assert claim(world, per_endpoint=1) == [(first, outbox.FAX_DELIVERY_UPDATED)]
    assert claim(world, per_endpoint=2) == [
        (second, outbox.FAX_CREATED),
        (first, outbox.FAX_DELIVERY_UPDATED),
    ]


def test_the_mails_of_a_fax_go_one_after_the_other(make_world: Make) -> None:
    world = make_world({})
    fax_id = world.queue(["5550100"])
    now = utc_now()
    with world.sessions() as s:
        s.execute(update(Fax).where(Fax.id == fax_id).values(reply_to="alice@acme.test"))
        outbox.mail_reply(s, fax_id, "queued", now)
        outbox.mail_reply(s, fax_id, "completed", now + dt.timedelta(milliseconds=1))
        s.commit()
    assert claim(world, per_endpoint=16, mails=True) == [(fax_id, "mail.queued")]
    settle(world, fax_id, "mail.queued")
    assert claim(world, per_endpoint=16, mails=True) == [(fax_id, "mail.completed")]
