"""Leases: fenced by the attempt that holds them, timed by the database, and a call that
loses its lease stops (the fax reaches the far end once)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, update

from faxline.delivery import queue
from faxline.delivery.calls import CallOutcome
from faxline.delivery.policy import Cause, decide
from faxline.store.models import Attempt, Delivery
from faxline.testing.waiting import eventually
from tests.delivery.conftest import World


def attempts(world: World, delivery_id: int) -> list[Attempt]:
    with world.sessions() as s:
        return list(
            s.scalars(
                select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.id)
            )
        )


def expire_lease(world: World, delivery_id: int) -> None:
    """As if the holder's renewals had stopped reaching the database long ago."""
    with world.sessions() as s:
        s.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(lease_expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        )
        s.commit()


def test_lease_times_come_from_the_database_clock(world: World) -> None:
    # The dispatcher's clock (a manual one) is a week behind the database's.
    (fax_id,) = [world.queue(["5550001"])]
    with world.sessions() as s:
        (claim,) = queue.claim_due(s, "w1", 1, world.clock(), lease_s=60)
    before = dt.datetime.now(dt.UTC)
    (d,) = world.deliveries(fax_id)
    assert d.lease_expires_at is not None
    assert abs((d.lease_expires_at - before).total_seconds() - 60) < 30
    # Expired by the database's clock, though not by the worker's: another worker takes it.
    expire_lease(world, claim.delivery_id)
    with world.sessions() as s:
        (again,) = queue.claim_due(s, "w2", 1, world.clock(), lease_s=60)
    assert again.delivery_id == claim.delivery_id and again.attempt_id != claim.attempt_id


def test_writes_of_an_attempt_that_lost_its_lease_change_nothing(world: World) -> None:
    fax_id = world.queue(["5550001"])
    with world.sessions() as s:
        (old,) = queue.claim_due(s, "w1", 1, world.clock(), lease_s=60)
        assert queue.start_attempt(s, old, world.clock())
    expire_lease(world, old.delivery_id)
    # The same worker claims it again: only the attempt id tells the two attempts apart.
    with world.sessions() as s:
        (new,) = queue.claim_due(s, "w1", 1, world.clock(), lease_s=60)
    (before,) = world.deliveries(fax_id)
    outcome = CallOutcome(Cause.DELIVERED, transport="t38", pages=3)
    decision = decide(
        Cause.DELIVERED,
        attempts=1,
        cancel_requested=False,
        policy=world.dispatcher().policy,
        now=world.clock(),
    )
    with world.sessions() as s:
        assert queue.renew(s, old, 60) is False
        assert queue.start_attempt(s, old, world.clock()) is False
        assert queue.finish(s, old, outcome, decision, world.clock()) is False
        s.commit()
        assert queue.release(s, old, world.clock(), 0, started=True) is False
    (after,) = world.deliveries(fax_id)
    assert (after.status, after.lease_attempt_id, after.attempts) == ("sending", new.attempt_id, 1)
    assert after.lease_expires_at == before.lease_expires_at and after.pages_sent is None
    assert [a.outcome for a in attempts(world, old.delivery_id)] == ["interrupted", None]
    with world.sessions() as s:
        assert queue.renew(s, new, 60) is True


@pytest.mark.slow
def test_a_call_whose_lease_is_stolen_stops_and_the_fax_arrives_once(
    make_world: object,
) -> None:
    world: World = make_world(lease_s=2.0, paced_calls=True)  # type: ignore[operator]
    world.pages = world.pages[:1]
    fax_id = world.queue(["5550001"])
    (d,) = world.deliveries(fax_id)
    far_end = world.settings.data_dir / "simulator" / "5550001"

    async def go() -> None:
        first = world.dispatcher()
        second = world.dispatcher()
        try:
            assert await first.run_once() == 1
            await asyncio.to_thread(
                eventually, lambda: any(far_end.glob("delivery-*")), 30, "the far end to receive"
            )
            # Another worker takes the delivery over (the first one's lease had run out by
            # the database's clock); the first renews in between at most a few times.
            taken = 0
            while not taken:
                await asyncio.to_thread(expire_lease, world, d.id)
                taken = await second.run_once()
            await asyncio.wait_for(first.idle(), 30)  # its call stopped on the lost lease
            await second.idle()
        finally:
            await first.drain()
            await second.drain()

    asyncio.run(go())
    (done,) = world.deliveries(fax_id)
    assert done.status == "delivered" and done.attempts == 2
    assert [a.outcome for a in attempts(world, d.id)] == ["interrupted", "delivered"]
    # The first call was cut off: the far end holds one whole fax, the second call's.
    assert sorted(p.name for p in far_end.glob("*.tif")) == [f"delivery-{d.id}-2.tif"]
