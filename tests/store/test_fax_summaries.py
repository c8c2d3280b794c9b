"""`summaries_for_extension` (the web list's one query) finds the same faxes, in the same
order, with the same status and total as `list_for_extension` (which loads every fax with
its deliveries), for every mix of delivery statuses, filter and page."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from faxline.directory.provision import apply, parse
from faxline.store import faxes as fax_store
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.models import Delivery, Extension, Fax
from faxline.store.status import DeliveryStatus
from faxline.store.views import fax_view

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
TENANT = {
    "organizations": [{"code": "0003", "name": "Acme"}],
    "users": [
        {"id": "alice", "organization": "0003", "role": "user"},
        {"id": "bob", "organization": "0003", "role": "user"},
    ],
    "extensions": [
        {"number": "0003*210", "owner": "alice", "fax": True},
        {"number": "0003*211", "owner": "bob", "fax": True},
    ],
}


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        apply(s, parse(TENANT))
        s.commit()
        yield s
    engine.dispose()


def extension_id(session: Session, number: str) -> int:
    ext = session.query(Extension).filter_by(number=number).one()
    return ext.id


def add_faxes(session: Session) -> tuple[int, int]:
    """Alice's extension: an outgoing fax for every pair of delivery statuses (and one
    recipient alone, and none), received faxes read and unread; Bob's: one fax."""
    alice, bob = extension_id(session, "0003*210"), extension_id(session, "0003*211")
    statuses = list(DeliveryStatus)
    mixes: list[tuple[DeliveryStatus, ...]] = [
        *((s,) for s in statuses),
        *itertools.combinations_with_replacement(statuses, 2),
    ]
    n = 0
    for mix in mixes:
        n += 1
        numbers = [f"1555000{n:04d}", f"1666000{n:04d}"][: len(mix)]
        fax = Fax(
            uid=f"{n:032x}",
            direction="out",
            extension_id=alice,
            created_at=T0 + dt.timedelta(minutes=n // 2),  # ties: ordered by id too
            pages=n % 3 + 1,
            resolution="fine",
            document=f"doc-{n}",
            recipients=numbers,
        )
        fax.deliveries = [
            Delivery(
                recipient=number,
                destination=number,
                status=status.value,
                created_at=T0,
                updated_at=T0,
            )
            for number, status in zip(numbers, mix, strict=True)
        ]
        session.add(fax)
    for k in range(4):
        n += 1
        session.add(
            Fax(
                uid=f"{n:032x}",
                direction="in",
                extension_id=alice,
                created_at=T0 + dt.timedelta(hours=1, minutes=k),
                pages=2,
                resolution="fine",
                document=f"doc-{n}",
                recipients=[],
                remote_number=f"+1777000{k}",
                remote_ident=f"SENDER {k}" if k % 2 else None,
                read_at=T0 if k % 2 else None,
            )
        )
    n += 1
    session.add(
        Fax(
            uid=f"{n:032x}",
            direction="out",
            extension_id=bob,
            created_at=T0,
            pages=1,
            resolution="fine",
            document="bobs",
            recipients=["15550000001"],
            deliveries=[
                Delivery(
                    recipient="15550000001",
                    destination="15550000001",
                    status="queued",
                    created_at=T0,
                    updated_at=T0,
                )
            ],
        )
    )
    session.commit()
    return alice, bob


@pytest.mark.parametrize(
    ("direction", "number"),
    [("out", None), ("in", None), (None, None), ("out", "000001"), ("in", "7770002"), (None, "5")],
)
def test_summaries_match_the_full_list(
    session: Session, direction: str | None, number: str | None
) -> None:
    alice, _ = add_faxes(session)
    for start, count in ((0, 25), (0, 7), (7, 7), (28, 7), (1000, 25)):
        total, full = fax_store.list_for_extension(
            session, alice, direction=direction, start=start, count=count, number=number
        )
        summed, light = fax_store.summaries_for_extension(
            session, alice, direction=direction, start=start, count=count, number=number
        )
        assert summed == total
        assert [s.uid for s in light] == [f.uid for f in full]
        for s, f in zip(light, full, strict=True):
            view = fax_view(f)
            assert s.status == view["status"], view
            assert (s.direction, s.pages, s.recipients) == (f.direction, f.pages, f.recipients)
            assert (s.remote_number, s.remote_ident) == (f.remote_number, f.remote_ident)
            assert s.read == (f.read_at is not None)
            assert s.created_at == f.created_at
        session.expire_all()


def test_every_fax_status_shows_and_bobs_faxes_stay_his(session: Session) -> None:
    alice, bob = add_faxes(session)
    total, light = fax_store.summaries_for_extension(
        session, alice, direction="out", start=0, count=100
    )
    assert total == len(light) == 27  # 6 alone and 21 pairs
    assert {s.status for s in light} == {
        "queued",
        "sending",
        "sent",
        "partially_sent",
        "failed",
        "cancelled",
    }
    assert f"{32:032x}" not in {s.uid for s in light}  # the 32nd fax is Bob's
    total, light = fax_store.summaries_for_extension(
        session, bob, direction=None, start=0, count=100
    )
    assert total == 1 and light[0].recipients == ["15550000001"]


def test_one_query_for_a_page(session: Session) -> None:
    alice, _ = add_faxes(session)
    statements: list[str] = []
    engine = session.get_bind()
    listen = event.listens_for(engine, "before_cursor_execute")

    @listen
    def count(*args: object) -> None:
        statements.append(str(args[2]))

    try:
        _, light = fax_store.summaries_for_extension(
            session, alice, direction="out", start=0, count=25
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(light) == 25
    assert len(statements) == 1, statements
