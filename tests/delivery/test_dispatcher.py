"""The dispatcher, end to end on the in-process line: outcomes, retries, cancellation."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from faxline.documents import Resolution
from faxline.documents.faxtiff import check_fax_tiff, read_fax_tiff
from faxline.store import faxes as fax_store
from faxline.store.status import fax_status
from tests.delivery.conftest import World


def assert_same_pages(received: list[np.ndarray], sent: list[np.ndarray]) -> None:
    """Pixel-identical below the header rows SpanDSP adds on top of each page."""
    assert len(received) == len(sent)
    for got, want in zip(received, sent, strict=True):
        header = got.shape[0] - want.shape[0]
        assert header >= 0
        assert np.array_equal(got[header:], want)


@pytest.mark.parametrize("transport", ["t38", "audio"])
def test_local_extension_receives_identical_pages(make_world: object, transport: str) -> None:
    world: World = make_world(local_transport=transport)  # type: ignore[operator]
    fax_id = world.queue(["0003*211"])
    world.run(world.dispatcher())
    (delivery,) = world.deliveries(fax_id)
    assert delivery.status == "delivered"
    assert (delivery.pages_sent, delivery.ecm, delivery.transport) == (3, True, transport)
    assert delivery.bit_rate and delivery.bit_rate >= 9600
    assert delivery.t30_code == 0 and delivery.attempts == 1
    (incoming,) = world.inbox("0003*211")
    assert incoming.pages == 3
    assert incoming.remote_ident == "+15550100210"
    assert incoming.remote_number == "0003*210"
    assert_same_pages(
        read_fax_tiff(b"".join(world.files.open(incoming.document).chunks())), world.pages
    )
    fax = world.fax(fax_id)
    assert fax_status(d.status for d in fax.deliveries) == "sent"
    (attempt,) = fax.attempts[0]  # type: ignore[attr-defined]
    assert attempt.outcome == "delivered" and attempt.pages_sent == 3 and attempt.ended_at


def test_busy_then_answer(world: World) -> None:
    fax_id = world.queue(["5550006"])
    dispatcher = world.dispatcher()
    world.run(dispatcher)
    (d,) = world.deliveries(fax_id)
    assert (d.status, d.failure_reason, d.attempts) == ("retrying", "busy", 1)
    assert d.next_attempt_at == world.clock() + dt.timedelta(seconds=120)
    world.run(world.dispatcher())  # not due yet
    assert world.deliveries(fax_id)[0].attempts == 1
    world.clock.advance(121)
    world.run(world.dispatcher())
    (d,) = world.deliveries(fax_id)
    assert (d.status, d.attempts, d.pages_sent) == ("delivered", 2, 3)
    received = sorted((world.settings.data_dir / "simulator" / "5550006").glob("*.tif"))
    assert len(received) == 1
    assert_same_pages(read_fax_tiff(received[0]), world.pages)


def test_no_answer_until_attempts_run_out(make_world: object) -> None:
    world: World = make_world(retry_no_answer_attempts=3, retry_no_answer_delay_s=60)  # type: ignore[operator]
    fax_id = world.queue(["5550003"])
    for _ in range(5):
        world.run(world.dispatcher())
        world.clock.advance(61)
    (d,) = world.deliveries(fax_id)
    assert (d.status, d.failure_reason, d.attempts) == ("failed", "no_answer", 3)
    assert fax_status([d.status]) == "failed"


def test_hangup_after_page_one_is_retried(world: World) -> None:
    fax_id = world.queue(["5550004"])
    world.run(world.dispatcher())
    (d,) = world.deliveries(fax_id)
    assert (d.status, d.failure_reason, d.pages_sent) == ("retrying", "t30_failure", 1)
    assert d.t30_code == 49 and d.t30_text


def test_no_route_is_one_attempt(world: World) -> None:
    fax_id = world.queue(["5559999", "0003*999", "0003*212"])
    world.run(world.dispatcher())
    for d in world.deliveries(fax_id):
        assert (d.status, d.failure_reason, d.attempts) == ("failed", "no_route", 1)


def test_refused_fine_resolution_is_resent_at_standard(world: World) -> None:
    """The far end takes only standard: the pages go again at standard, in one attempt."""
    fax_id = world.queue(["5550005"])
    world.run(world.dispatcher())
    (d,) = world.deliveries(fax_id)
    assert (d.status, d.attempts, d.pages_sent, d.t30_code) == ("delivered", 1, 3, 0)
    (attempt,) = world.fax(fax_id).attempts[0]  # type: ignore[attr-defined]
    assert attempt.resolution == "standard"
    (received,) = (world.settings.data_dir / "simulator" / "5550005").glob("*.tif")
    info = check_fax_tiff(received)
    assert info.pages == 3 and {p.y_dpi for p in info.page_info} == {98}
    # Each pair of fine rows became one row, black where either was.
    assert_same_pages(read_fax_tiff(received), halved(world.pages))


def halved(pages: list[np.ndarray]) -> list[np.ndarray]:
    """Each pair of rows made one row, black where either was: one resolution step down."""
    return [p[: p.shape[0] // 2 * 2].reshape(-1, 2, 1728).any(axis=1) for p in pages]


@pytest.mark.parametrize(
    ("number", "sent", "y_dpi", "steps"),
    [("0003*211", None, 391, 0), ("5550008", "fine", 196, 1), ("5550005", "standard", 98, 2)],
)
def test_superfine_goes_down_to_what_the_far_end_takes(
    world: World, tmp_path: Path, number: str, sent: str | None, y_dpi: int, steps: int
) -> None:
    """Superfine pages reach a far end that takes them as they are; one that takes at most
    fine gets them at fine, one that takes only standard at standard: one step at a time,
    in one attempt, the attempt saying what was sent."""
    fax_id = world.queue([number], resolution=Resolution.SUPERFINE)  # the pages at 391 dpi
    world.run(world.dispatcher())
    (d,) = world.deliveries(fax_id)
    assert (d.status, d.attempts, d.pages_sent, d.t30_code) == ("delivered", 1, 3, 0)
    (attempt,) = world.fax(fax_id).attempts[0]  # type: ignore[attr-defined]
    assert attempt.resolution == sent
    if number.startswith("0003*"):
        (fax,) = world.inbox(number)
        assert fax.resolution == "superfine"
        path = tmp_path / "received.tif"
        with world.files.open(fax.document) as reader:
            path.write_bytes(b"".join(reader.chunks()))
    else:
        (path,) = (world.settings.data_dir / "simulator" / number).glob("*.tif")
    data = path.read_bytes()
    info = check_fax_tiff(path)
    assert info.pages == 3 and {p.y_dpi for p in info.page_info} == {y_dpi}
    expected = world.pages
    for _ in range(steps):
        expected = halved(expected)
    assert_same_pages(read_fax_tiff(data), expected)


def test_partially_sent(world: World) -> None:
    fax_id = world.queue(["0003*211", "5550001", "5559999"])
    world.run(world.dispatcher())
    statuses = [d.status for d in world.deliveries(fax_id)]
    assert statuses == ["delivered", "delivered", "failed"]
    assert fax_status(statuses) == "partially_sent"


def test_cancel_while_retrying(world: World) -> None:
    fax_id = world.queue(["5550002"])
    world.run(world.dispatcher())
    assert world.deliveries(fax_id)[0].status == "retrying"
    with world.sessions() as s:
        fax_store.cancel(s, s.get(fax_store.Fax, fax_id), world.clock())
    world.clock.advance(10_000)
    world.run(world.dispatcher())
    (d,) = world.deliveries(fax_id)
    assert (d.status, d.attempts) == ("cancelled", 1)


def test_lossy_line_without_ecm_reports_bad_rows(world: World) -> None:
    fax_id = world.queue(["5550007"])
    world.run(world.dispatcher())
    (d,) = world.deliveries(fax_id)
    assert (d.status, d.transport, d.ecm, d.pages_sent, d.t30_code) == (
        "delivered",
        "audio",
        False,
        3,
        0,
    )
    assert d.bad_rows and d.bad_rows > 0, "bad rows must be reported, not hidden"


def test_route_capacity_holds_back_the_rest(world: World) -> None:
    # The simulator route allows 2 calls at once; the dispatcher may run 4.
    dispatcher = world.dispatcher(max_calls=4)
    fax_ids = [world.queue(["5550001"]) for _ in range(4)]

    async def one_round() -> None:
        await dispatcher.run_once()
        await dispatcher.idle()
        await dispatcher.drain()

    asyncio.run(one_round())
    statuses = sorted(world.deliveries(f)[0].status for f in fax_ids)
    assert statuses == ["delivered", "delivered", "queued", "queued"]
    held = [world.deliveries(f)[0] for f in fax_ids if world.deliveries(f)[0].status == "queued"]
    assert all(d.attempts == 0 and d.next_attempt_at > world.clock() for d in held)
    world.clock.advance(2)
    world.run(world.dispatcher())
    assert all(world.deliveries(f)[0].status == "delivered" for f in fax_ids)
