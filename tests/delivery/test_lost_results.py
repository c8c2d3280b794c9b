"""A node that dies after a call ended but before it recorded the outcome (issue 12's known
risk): the next holder must not make the far end receive the fax twice.

Local extensions: the inbox write and the delivery's result are one transaction, so the
dead node's call left nothing and the new holder's call delivers once. Simulator numbers:
the far end is ours, so the new holder asks it before calling again.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select, update

from faxline.delivery.dispatcher import Dispatcher
from faxline.delivery.line import LinePlacer
from faxline.delivery.policy import Cause
from faxline.delivery.queue import INTERRUPTED
from faxline.store.models import Attempt, Delivery
from faxline.store.status import DeliveryStatus
from faxline.testing.placers import DiesAfterCall
from tests.delivery.conftest import World


def _die_after_the_call(world: World, fax_id: int) -> DiesAfterCall:
    """A node claims the fax's delivery, its call ends, and the node dies before recording."""
    line = LinePlacer(1)
    dying: DiesAfterCall = DiesAfterCall(line)

    async def node() -> None:
        dispatcher = Dispatcher(
            world.sessions, world.files, world.settings, clock=world.clock, line=dying
        )
        assert await dispatcher.run_once() == 1
        await asyncio.wait_for(dying.placed.wait(), 120)
        # asyncio.run cancels the delivery's task here: nothing more is written.

    asyncio.run(node())
    line.close()
    assert [o.cause for o in dying.outcomes] == [Cause.DELIVERED]
    (d,) = world.deliveries(fax_id)
    assert d.status == DeliveryStatus.SENDING.value  # what a SIGKILLed node leaves
    with world.sessions() as s:  # its lease runs out (as by the database's clock)
        s.execute(
            update(Delivery)
            .where(Delivery.fax_id == fax_id)
            .values(lease_expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        )
        s.commit()
    return dying


def _outcomes(world: World, delivery_id: int) -> list[str | None]:
    with world.sessions() as s:
        query = select(Attempt.outcome).where(Attempt.delivery_id == delivery_id)
        return list(s.scalars(query.order_by(Attempt.id)))


def test_simulator_far_end_gets_the_fax_once(world: World) -> None:
    fax_id = world.queue(["5550001"])
    _die_after_the_call(world, fax_id)
    (d,) = world.deliveries(fax_id)
    far_end = world.settings.simulator_folder / "5550001"
    assert [p.name for p in far_end.glob("*.tif")] == [f"delivery-{d.id}-1.tif"]
    world.run(world.dispatcher())
    (d,) = world.deliveries(fax_id)
    assert d.status == DeliveryStatus.DELIVERED.value and d.pages_sent == 3
    # The far end still holds one copy: the new holder asked it instead of calling.
    assert [p.name for p in far_end.glob("*.tif")] == [f"delivery-{d.id}-1.tif"]
    assert _outcomes(world, d.id) == [INTERRUPTED, Cause.DELIVERED.value]
    assert d.t30_text is not None and "already held" in d.t30_text


def test_local_inbox_gets_the_fax_once(world: World) -> None:
    fax_id = world.queue(["0003*211"])
    _die_after_the_call(world, fax_id)
    assert world.inbox("0003*211") == []  # the dead node's call committed nothing
    world.run(world.dispatcher())
    (d,) = world.deliveries(fax_id)
    assert d.status == DeliveryStatus.DELIVERED.value
    (received,) = world.inbox("0003*211")
    assert received.pages == 3
    assert _outcomes(world, d.id) == [INTERRUPTED, Cause.DELIVERED.value]


def test_a_first_attempt_never_asks_the_far_end(world: World) -> None:
    # A fax the far end got in an earlier delivery does not stop a new delivery's call.
    first = world.queue(["5550001"])
    world.run(world.dispatcher())
    second = world.queue(["5550001"])
    world.run(world.dispatcher())
    ids = [world.deliveries(f)[0].id for f in (first, second)]
    far_end = world.settings.simulator_folder / "5550001"
    assert sorted(p.name for p in far_end.glob("*.tif")) == sorted(
        f"delivery-{i}-1.tif" for i in ids
    )
