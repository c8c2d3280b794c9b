"""A cancel that meets the end of a call is never lost.

A person cancels while the call is still up. The call then ends without delivering, and
its result would put the delivery back in the queue ("retrying"). Two interleavings lost
the cancel:
- the result committed between the cancel's two statements (seen in CI on PostgreSQL);
- the cancel committed between the dispatcher's read of the request and its write.

Each test holds one side's transaction open on a real database, runs the other side in a
thread, and lets go.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from faxline.delivery import queue
from faxline.store import faxes as fax_store
from faxline.store.models import Delivery, Fax
from tests.delivery.conftest import World


class Side(threading.Thread):
    """The other side's work, in a thread of its own, with its result or error kept."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as e:  # reported by the test
            self.error = e


def sending(world: World) -> tuple[int, int]:
    """A fax whose one delivery is in a call now: (fax id, delivery id)."""
    fax_id = world.queue(["15550000003"])
    with world.sessions() as s:
        (claim,) = queue.claim_due(s, "node-a", 1, world.clock(), lease_s=60)
    return fax_id, claim.delivery_id


def test_a_result_written_during_the_cancel_does_not_undo_it(world: World) -> None:
    fax_id, delivery_id = sending(world)
    later = world.clock() + dt.timedelta(minutes=5)
    with world.sessions() as result:
        # The call's result, not yet committed: back in the queue for a later try.
        result.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(status="retrying", next_attempt_at=later)
        )

        def cancel() -> None:
            with world.sessions() as s:
                fax = s.get(Fax, fax_id)
                assert fax is not None
                fax_store.cancel(s, fax, world.clock())

        side = Side(cancel)
        side.start()
        side.join(1.0)
        assert side.is_alive(), "the cancel must wait for the row the result holds"
        result.commit()
    side.join(30)
    assert not side.is_alive() and side.error is None, side.error
    (delivery,) = world.deliveries(fax_id)
    assert (delivery.status, delivery.failure_reason) == ("cancelled", "cancelled")
    assert delivery.next_attempt_at is None


def test_a_cancel_committed_after_the_dispatcher_looked_is_seen(world: World) -> None:
    fax_id, delivery_id = sending(world)
    with world.sessions() as cancelling:
        # A cancel's request for the running call, not yet committed.
        cancelling.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(cancel_requested=True)
        )

        def look() -> bool:
            with world.sessions() as s:
                asked = queue.cancel_requested(s, delivery_id)
                s.commit()
                return asked

        side = Side(look)
        side.start()
        side.join(1.0)
        assert side.is_alive(), "the dispatcher must wait for the row the cancel holds"
        cancelling.commit()
    side.join(30)
    assert not side.is_alive() and side.error is None, side.error
    assert side.result is True
    (delivery,) = world.deliveries(fax_id)
    assert delivery.status == "sending"
