"""Webhooks end to end: real faxes through the dispatcher, real HTTP receivers on
127.0.0.1, signatures checked with the `standardwebhooks` package as a receiver would."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks import Webhook

from faxline.api.app import create_app
from faxline.api.state import AppState
from faxline.directory.provision import ProvisionError, parse
from faxline.documents import ConversionLimits
from faxline.documents.pool import ConverterPool
from faxline.notify.signing import headers, secret_key
from faxline.store import outbox
from faxline.store.models import App, OutboxMessage
from faxline.testing.waiting import eventually
from tests.notify.conftest import Running, World, secret
from tests.notify.receiver import HANG, Received

Make = Callable[..., Any]


def events(requests: list[Received], key: str) -> list[dict[str, Any]]:
    """The verified bodies, in arrival order (the package raises on a bad signature)."""
    hook = Webhook(key)
    return [hook.verify(r.body, r.headers) for r in requests]


def of_fax(bodies: list[dict[str, Any]], fax_id: int) -> list[str]:
    return [b["type"] for b in bodies if b["data"]["id"] == fax_id]


def settled(world: World) -> set[str]:
    with world.sessions() as s:
        return set(s.scalars(select(OutboxMessage.status)))


ONE_FAX = ["fax.created", "fax.delivery.updated", "fax.delivery.updated", "fax.completed"]


def test_signed_events_in_order_to_those_who_may_see(
    make_world: Make, receivers: Make, running: Callable[[World], Running]
) -> None:
    alice, olga, carol = receivers(), receivers(), receivers()
    world = make_world(
        {
            "alice": [{"url": alice.url, "secret": secret(1)}],
            "olga": [{"url": olga.url, "secret": secret(2)}],
            "carol": [{"url": carol.url, "secret": secret(3)}],
        }
    )
    running(world)
    fax_id = world.queue(["0003*211"])
    # alice sees her fax; olga (her organization's admin) sees it and bob's received copy.
    alice.wait_for(lambda r: len(r) >= 4, 60, "alice's four events")
    olga.wait_for(lambda r: len(r) >= 5, 60, "olga's five events")
    mine = events(alice.requests, secret(1))
    assert of_fax(mine, fax_id) == ONE_FAX and len(mine) == 4
    sending, delivered = (b["data"]["delivery"] for b in mine[1:3])
    assert (sending["status"], delivered["status"]) == ("sending", "delivered")
    assert delivered["attempts"] == 1 and delivered["pagesSent"] == 1
    assert mine[3]["data"]["status"] == "sent"
    theirs = events(olga.requests, secret(2))
    assert of_fax(theirs, fax_id) == ONE_FAX
    (received,) = [b for b in theirs if b["type"] == "fax.received"]
    assert received["data"]["direction"] == "in" and received["data"]["extension"] == "0003*211"
    assert received["data"]["pages"] == 1
    with pytest.raises(Exception):  # noqa: B017 - whatever the package raises: not ours
        events(alice.requests, secret(2))
    eventually(lambda: settled(world) == {outbox.DELIVERED}, 30, "every message delivered")
    assert carol.requests == []  # another organization hears nothing


def test_events_written_in_this_process_wake_the_sender(
    make_world: Make, receivers: Make, running: Callable[[World], Running]
) -> None:
    # The sender polls once a minute: only the wake at commit brings the events of a fax
    # (the queueing here, the dispatcher's changes) within the 30 s waited for.
    hook = receivers()
    world = make_world(
        {"alice": [{"url": hook.url, "secret": secret(1)}]}, notify_poll_interval_s=60.0
    )
    running(world)
    fax_id = world.queue(["0003*211"])
    hook.wait_for(lambda r: len(r) >= 4, 30, "the fax's four events, without a poll")
    assert of_fax(events(hook.requests, secret(1)), fax_id) == ONE_FAX


def test_retried_with_the_same_id_until_answered(
    make_world: Make, receivers: Make, running: Callable[[World], Running]
) -> None:
    flaky = receivers(answer=lambda n: 500 if n < 3 else 200)
    world = make_world({"alice": [{"url": flaky.url, "secret": secret(1)}]})
    running(world)
    fax_id = world.queue(["0003*211"])
    flaky.wait_for(lambda r: len(r) >= 3 + 4, 60, "three failures, then four events")
    first = {r.headers["webhook-id"] for r in flaky.requests[:4]}
    assert len(first) == 1  # the same message four times, the rest waited behind it
    assert of_fax(events(flaky.requests[3:], secret(1)), fax_id) == ONE_FAX
    eventually(lambda: settled(world) == {outbox.DELIVERED}, 30, "every message delivered")
    with world.sessions() as s:
        app_id = s.scalar(select(App.id).where(App.client_id == "alice-app"))
        total, log = outbox.attempts_of_app(s, app_id, start=0, count=100)
        views = [outbox.attempt_view(a) for a in reversed(log)]
    assert total == 7
    assert [v.get("statusCode") for v in views] == [500, 500, 500, 200, 200, 200, 200]
    assert views[0]["webhookId"] == views[3]["webhookId"] and views[3]["ok"] is True


def test_given_up_after_the_schedule_and_the_next_event_goes_on(
    make_world: Make, receivers: Make, running: Callable[[World], Running]
) -> None:
    # Three retries: the first message fails for good on its fourth 500; the rest follow.
    down_then_up = receivers(answer=lambda n: 500 if n < 4 else 200)
    world = make_world({"alice": [{"url": down_then_up.url, "secret": secret(1)}]})
    running(world)
    fax_id = world.queue(["0003*211"])
    down_then_up.wait_for(lambda r: len(r) >= 4 + 3, 60, "four failures, then three events")
    assert of_fax(events(down_then_up.requests[4:], secret(1)), fax_id) == ONE_FAX[1:]
    eventually(lambda: outbox.PENDING not in settled(world), 30, "every message settled")
    with world.sessions() as s:
        first = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
        assert first is not None and (first.status, first.attempts) == (outbox.FAILED, 4)


def test_an_endpoint_that_never_answers_delays_nothing_else(
    make_world: Make, receivers: Make, running: Callable[[World], Running]
) -> None:
    dead = receivers(answer=lambda n: HANG)
    alive = receivers()
    world = make_world(
        {
            "alice": [{"url": dead.url, "secret": secret(1)}],
            "olga": [{"url": alive.url, "secret": secret(2)}],
        },
        webhook_timeout_s=60.0,  # longer than this test: the dead endpoint holds its posts
        webhook_concurrency=2,
    )
    running(world)
    faxes = [world.queue(["0003*211"]) for _ in range(3)]
    eventually(lambda: world.statuses() == ["delivered"] * 3, 60, "three faxes delivered")
    alive.wait_for(lambda r: len(r) >= 3 * 5, 60, "every event of the three faxes")
    bodies = events(alive.requests, secret(2))
    for fax_id in faxes:
        assert of_fax(bodies, fax_id) == ONE_FAX
    # The dead endpoint got its budget of posts (one per fax, oldest first) and no more.
    assert len(dead.requests) == 2


def test_the_signature_covers_the_exact_body() -> None:
    body = json.dumps({"type": "fax.created", "data": {"id": 1}}).encode()
    h = headers(secret_key(secret(5)), "msg_1", int(time.time()), body)
    hook = Webhook(secret(5))
    assert hook.verify(body, h) == {"type": "fax.created", "data": {"id": 1}}
    with pytest.raises(Exception):  # noqa: B017
        hook.verify(body + b" ", h)


@pytest.mark.parametrize(
    ("hook", "says"),
    [
        ({"url": "ftp://x", "secret": secret(1)}, "url"),
        ({"url": "http://x", "secret": "s3cret"}, "whsec_"),
        ({"url": "http://x", "secret": "whsec_AAAA"}, "24 to 64 bytes"),
        ({"url": "http://x", "secret": secret(1), "events": ["fax.burned"]}, "events"),
    ],
)
def test_provisioning_refuses_bad_webhooks(hook: dict[str, Any], says: str) -> None:
    from tests.notify.conftest import tenants

    with pytest.raises(ProvisionError, match=says):
        parse(tenants({"alice": [hook]}))


def test_the_delivery_log_over_the_api(
    make_world: Make, receivers: Make, running: Callable[[World], Running]
) -> None:
    flaky = receivers(answer=lambda n: 503 if n < 1 else 204)
    world = make_world({"alice": [{"url": flaky.url, "secret": secret(1)}]})
    running(world)
    fax_id = world.queue(["0003*211"])
    flaky.wait_for(lambda r: len(r) >= 5, 60, "one failure and four events")
    eventually(lambda: settled(world) == {outbox.DELIVERED}, 30, "every message delivered")
    state = AppState(
        settings=world.settings,
        sessions=world.sessions,
        files=world.files,
        converter=ConverterPool(workers=1, limits=ConversionLimits()),
    )
    with TestClient(create_app(state)) as client:

        def auth(user: str) -> dict[str, str]:
            r = client.post(
                "/oauth/token.php",
                data={
                    "grant_type": "client_credentials",
                    "client_id": f"{user}-app",
                    "client_secret": f"s3cret-{user}",
                },
            )
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        r = client.get("/uapi/webhooks/@me/deliveries", headers=auth("alice"))
        assert r.status_code == 200, r.text
        log = r.json()
        assert log["paging"] == {"startIndex": 0, "itemsPerPage": 5, "totalResults": 5}
        oldest = log["entry"][-1]
        assert (oldest["statusCode"], oldest["ok"], oldest["error"]) == (503, False, "HTTP 503")
        assert oldest["type"] == "fax.created" and oldest["faxId"] == fax_id
        assert oldest["url"] == flaky.url and oldest["webhookId"].startswith("msg_")
        assert log["entry"][-2]["webhookId"] == oldest["webhookId"]
        assert log["entry"][-2]["statusCode"] == 204
        r = client.get("/uapi/webhooks/@me/deliveries?startIndex=4&count=2", headers=auth("alice"))
        assert r.json()["paging"] == {"startIndex": 4, "itemsPerPage": 1, "totalResults": 5}
        assert r.json()["entry"] == [oldest]
        # Another app of the same organization sees its own (empty) log, never alice's.
        r = client.get("/uapi/webhooks/@me/deliveries", headers=auth("olga"))
        assert r.json()["paging"]["totalResults"] == 0
        r = client.get("/uapi/webhooks/alice/deliveries", headers=auth("olga"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = client.get("/uapi/webhooks/@me/deliveries")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        r = client.get("/uapi/webhooks/@me/deliveries?count=0", headers=auth("alice"))
        assert r.status_code == 400 and "error" in r.json()
    state.converter.close()
