"""Every answer says how long the server took (`Server-Timing: app;dur=<ms>`), early
answers and errors included; never more than the client waited."""

from __future__ import annotations

import re
import time

from tests.api.conftest import Api

TIMING = re.compile(r"app;dur=(\d+\.\d\d)")
WRONG_SECRET = {"grant_type": "client_credentials", "client_id": "alice-app", "client_secret": "x"}


def _server_ms(headers: object) -> float:
    values = headers.get_list("server-timing")  # type: ignore[attr-defined]
    assert len(values) == 1, values
    match = TIMING.fullmatch(values[0])
    assert match, values
    return float(match.group(1))


def test_answers_carry_the_server_time(api: Api) -> None:
    for method, path, kwargs in (
        ("GET", "/healthz", {}),
        ("GET", "/uapi/faxes/@me/0003*210", {"headers": api.auth("alice")}),
        ("GET", "/uapi/faxes/@me/0003*210", {}),  # 401, answered before any handler
        ("POST", "/oauth/token.php", {"data": WRONG_SECRET}),
        ("GET", "/uapi/faxes/@me/0003*210/999", {"headers": api.auth("alice")}),  # 404
    ):
        started = time.perf_counter()
        r = api.client.request(method, path, **kwargs)
        waited_ms = (time.perf_counter() - started) * 1000
        assert r.status_code in (200, 400, 401, 404), (path, r.status_code)
        assert 0 < _server_ms(r.headers) <= waited_ms, path
