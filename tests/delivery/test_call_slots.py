"""Route maxCalls across the cluster: call slots counted from the leases in the database,
taken atomically (two nodes at once never exceed a limit), freed by a dead node's leases
running out; and FAXLINE_MAX_CALLS per node."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import Counter

import pytest
from sqlalchemy import select, update

from faxline.clock import utc_now
from faxline.delivery import queue
from faxline.delivery.calls import CallOutcome, LineCall
from faxline.delivery.dispatcher import Dispatcher
from faxline.delivery.line import LinePlacer
from faxline.store.db import make_engine, session_factory
from faxline.store.models import Delivery, Route
from tests.delivery.conftest import World


def set_route_limit(world: World, limit: int) -> None:
    with world.sessions() as s:
        s.execute(update(Route).where(Route.name == "sim").values(max_calls=limit))
        s.commit()


def claims_of(world: World, count: int) -> list[queue.Claim]:
    """`count` deliveries to the simulator, each claimed by a node of its own."""
    for _ in range(count):
        world.queue(["5550001"])
    claims = []
    with world.sessions() as s:
        for n in range(count):
            claims += queue.claim_due(s, f"node-{n}", 1, world.clock(), lease_s=60)
    assert len(claims) == count
    return claims


@pytest.mark.parametrize("limit", [1, 2])
def test_nodes_taking_slots_at_once_never_exceed_the_limit(world: World, limit: int) -> None:
    # Six nodes, each with its own engine (its own connections and, on SQLite, its own
    # write lock, as separate processes have), start taking a slot at the same instant.
    claims = claims_of(world, 6)
    url = world.settings.sqlalchemy_url
    engines = [make_engine(url) for _ in claims]
    for engine in engines:  # connect first: the race is about the statements, not logins
        with engine.connect():
            pass
    start = threading.Barrier(len(claims))
    taken: list[bool] = []
    errors: list[BaseException] = []

    def take(engine_index: int, claim: queue.Claim) -> None:
        try:
            with session_factory(engines[engine_index])() as s:
                start.wait()
                taken.append(queue.take_slot(s, claim, "sim", limit))
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=take, args=(i, c)) for i, c in enumerate(claims)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for engine in engines:
        engine.dispose()
    assert errors == []
    assert sorted(taken) == [False] * (6 - limit) + [True] * limit
    with world.sessions() as s:
        holding = s.scalars(select(Delivery.id).where(Delivery.call_route == "sim")).all()
    assert len(holding) == limit


def test_a_slot_frees_when_its_call_ends_or_its_lease_runs_out(world: World) -> None:
    first, second, third = claims_of(world, 3)
    with world.sessions() as s:
        assert queue.take_slot(s, first, "sim", 1)
        assert not queue.take_slot(s, second, "sim", 1)
        # Released (shutdown, capacity): the slot goes with the lease.
        assert queue.release(s, first, world.clock(), 3600.0, started=False)
        assert queue.take_slot(s, second, "sim", 1)
        assert not queue.take_slot(s, third, "sim", 1)
        # The holder's node died: nobody renews its lease, which runs out (by the
        # database's clock), and its slot with it.
        s.execute(
            update(Delivery)
            .where(Delivery.id == second.delivery_id)
            .values(lease_expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        )
        s.commit()
        assert queue.take_slot(s, third, "sim", 1)
        # A lease taken over does not inherit the dead holder's slot.
        (again,) = queue.claim_due(s, "node-9", 1, world.clock(), lease_s=60)
        assert again.delivery_id == second.delivery_id
        assert (
            s.scalar(select(Delivery.call_route).where(Delivery.id == second.delivery_id)) is None
        )
        assert not queue.take_slot(s, again, "sim", 1)
        # A lost lease takes no slot.
        assert not queue.take_slot(s, second, "sim", 5)


class CountingLine:
    """The real line, counting the calls in progress: all of them, and per dispatcher."""

    def __init__(self, line: LinePlacer, total: Counter[str], name: str) -> None:
        self.line = line
        self.total = total
        self.name = name

    async def place(self, call: LineCall) -> CallOutcome:
        self.total["now"] += 1
        self.total[self.name] += 1
        self.total["peak"] = max(self.total["peak"], self.total["now"])
        self.total[f"peak-{self.name}"] = max(
            self.total[f"peak-{self.name}"], self.total[self.name]
        )
        try:
            return await self.line.place(call)
        finally:
            self.total["now"] -= 1
            self.total[self.name] -= 1


def run_two_dispatchers(world: World, fax_ids: list[int], max_calls: int) -> Counter[str]:
    calls: Counter[str] = Counter()
    line = LinePlacer(4)
    settings = world.settings.model_copy(update={"max_calls": max_calls, "poll_interval_s": 0.05})
    dispatchers = [
        Dispatcher(
            world.sessions,
            world.files,
            settings,
            worker_id=name,
            clock=utc_now,  # released calls come back after a second of real time
            line=CountingLine(line, calls, name),
        )
        for name in ("a", "b")
    ]

    def finished() -> bool:
        return all(world.deliveries(f)[0].status == "delivered" for f in fax_ids)

    async def go() -> None:
        stop = asyncio.Event()
        runs = [asyncio.create_task(d.run(stop)) for d in dispatchers]
        try:
            for _ in range(1200):
                if await asyncio.to_thread(finished):
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*runs)

    try:
        asyncio.run(go())
    finally:
        line.close()
    assert finished()
    return calls


@pytest.mark.parametrize("limit", [1, 2])
def test_two_dispatchers_never_exceed_the_route_limit(world: World, limit: int) -> None:
    world.pages = world.pages[:1]
    set_route_limit(world, limit)
    fax_ids = [world.queue(["5550001"]) for _ in range(6)]
    calls = run_two_dispatchers(world, fax_ids, max_calls=3)
    assert 1 <= calls["peak"] <= limit
    for f in fax_ids:  # held back and resent later, never a call more than needed
        assert world.deliveries(f)[0].attempts == 1


def test_two_dispatchers_keep_their_own_max_calls(world: World) -> None:
    world.pages = world.pages[:1]
    set_route_limit(world, 10)
    fax_ids = [world.queue(["5550001"]) for _ in range(6)] + [
        world.queue(["0003*211"]) for _ in range(4)
    ]
    calls = run_two_dispatchers(world, fax_ids, max_calls=1)
    assert calls["peak-a"] == 1 and calls["peak-b"] == 1
    assert calls["peak"] <= 2
    assert len(world.inbox("0003*211")) == 4
