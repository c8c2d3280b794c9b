"""A real `faxline serve` on 127.0.0.1 against unauthenticated uploads, early answers,
slow and oversized clients, and secrets in its log (issue 7, points 3, 4, 7, 8)."""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faxline.testing.live import LiveServer, live_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
SETTINGS = {
    "FAXLINE_DISPATCHER": "false",
    "FAXLINE_HTTP_HEADER_TIMEOUT_S": "1",
    "FAXLINE_HTTP_BODY_TIMEOUT_S": "2",
    "FAXLINE_HTTP_KEEP_ALIVE_S": "5",
}
# How long a test waits for an answer that must come (not a measure of the limits).
PATIENCE_S = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    with live_server(
        tmp / "data", ROOT / "examples" / "demo.json", tmp / "serve.log", SETTINGS
    ) as live:
        yield live


def token(server: LiveServer, who: str = "alice") -> str:
    r = httpx.post(
        f"{server.base}/oauth/token.php",
        data={
            "grant_type": "client_credentials",
            "client_id": f"{who}-app",
            "client_secret": f"s3cret-{who}",
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE_S)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one answer (by Content-Length), read to EOF if it closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed without an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def upload_head(path: str, length: int, auth: str | None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: multipart/form-data; boundary=b",
        f"Content-Length: {length}",
    ]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# Point 3: the token and the extension before the body.


@pytest.mark.parametrize(
    ("path", "good_token", "status", "code"),
    [
        ("/uapi/faxes/@me/0003*210", False, 401, "invalid_token"),
        ("/uapi/faxes/@me/0003*299", True, 404, "not_found"),
        ("/uapi/faxes/bob/0003*211", True, 403, "forbidden"),
    ],
)
def test_upload_is_refused_before_its_body_is_sent(
    server: LiveServer, path: str, good_token: bool, status: int, code: str
) -> None:
    auth = f"Bearer {token(server)}" if good_token else "Bearer " + "x" * 43
    with connect(server) as sock:
        # Headers of a 20 MiB upload, and not one byte of the body: the answer comes.
        sock.sendall(upload_head(path, 20 * MIB, auth))
        got, headers, body = read_answer(sock)
    assert got == status
    assert json.loads(body)["error"]["code"] == code
    assert headers["connection"] == "close"


# Point 4: clients that send the whole body first see the early answer.


def _urllib_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE_S) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_urllib_sees_401_and_413_with_their_bodies(server: LiveServer) -> None:
    url = f"{server.base}/uapi/faxes/@me/0003*210"
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    status, body = _urllib_post(
        url, b"x" * (20 * MIB), {**multipart, "Authorization": "Bearer " + "y" * 43}
    )
    assert (status, body["error"]["code"]) == (401, "invalid_token")
    alice = {**multipart, "Authorization": f"Bearer {token(server)}"}
    status, body = _urllib_post(url, b"x" * (26 * MIB), alice)
    assert (status, body["error"]["code"]) == (413, "request_too_large")
    # The server is fine afterwards.
    assert httpx.get(f"{server.base}/healthz").status_code == 200


def test_urllib_sees_431_for_a_huge_header(server: LiveServer) -> None:
    request = urllib.request.Request(
        f"{server.base}/healthz", headers={"X-Big": "a" * MIB}, data=b"z" * MIB, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=PATIENCE_S)
    assert refused.value.code == 431
    assert json.loads(refused.value.read())["error"]["code"] == "request_header_fields_too_large"


# Point 7: slow and oversized clients.


def test_idle_connection_is_answered_408_and_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        status, _, body = read_answer(sock)
        assert status == 408
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert sock.recv(1) == b""


def test_half_sent_headers_are_408(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        status, _, _ = read_answer(sock)
        assert status == 408
        assert sock.recv(1) == b""
    # Headers that come at once pass, many and long as they may be, and keep-alive works.
    headers = {f"X-H{i}": "v" * 100 for i in range(50)}
    with httpx.Client(base_url=server.base) as client:
        assert client.get("/healthz", headers=headers).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_early_answer_to_a_client_waiting_for_100_continue(server: LiveServer) -> None:
    with connect(server) as sock:
        head = upload_head("/uapi/faxes/@me/0003*210", 20 * MIB, "Bearer " + "x" * 43)
        sock.sendall(head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
        status, headers, body = read_answer(sock)
        assert (status, headers["connection"]) == (401, "close")
        assert json.loads(body)["error"]["code"] == "invalid_token"
        assert sock.recv(1) == b""  # no "100 Continue" after the answer: closed


def test_half_sent_body_is_408(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(upload_head("/uapi/faxes/@me/0003*210", 1000, f"Bearer {token(server)}"))
        sock.sendall(b"--b\r\n")
        status, _, body = read_answer(sock)
        assert status == 408
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert sock.recv(1) == b""


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * (20 * MIB) + b"\r\n\r\n", 431),
        (
            b"GET /healthz HTTP/1.1\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(100_000))
            + b"\r\n",
            431,
        ),
        (b"GET /healthz HTTP/1.1\r\n" + b"X: 1\r\n" * 101 + b"\r\n", 431),
    ],
    ids=["long-request-line", "20-MB-header", "100000-headers", "101-headers"],
)
def test_oversized_request_head_is_refused(
    server: LiveServer, request_bytes: bytes, status: int
) -> None:
    with connect(server) as sock:
        # Refused before all was sent: the answer is already in our receive buffer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request_bytes)
        got, _, body = read_answer(sock)
    assert got == status
    assert "error" in json.loads(body)


# Point 8: no token, secret or Authorization header in the log.


def test_log_holds_no_token_or_secret(server: LiveServer) -> None:
    access = token(server)
    secret = "s3cret-alice"
    with httpx.Client(base_url=server.base) as client:
        client.get(f"/uapi/faxes/@me/0003*210?accessRequestToken=Bearer%20{access}")
        client.get(f"/uapi/faxes/@me/0003*210?accessRequestToken={access}&count=1")
        client.get(f"/uapi/faxes/@me/0003*210?access_token={access}")
        client.get("/uapi/faxes/@me/0003*210", headers={"Authorization": f"Bearer {access}"})
        client.post(
            f"/oauth/token.php?client_secret={secret}&client_id=alice-app",
            data={"grant_type": "client_credentials"},
        )
        client.post(
            "/oauth/token.php",
            data={"grant_type": "client_credentials"},
            auth=("alice-app", secret),
        )
        client.get("/healthz?last=1")
    server.output.wait_for("/healthz?last=1", timeout=PATIENCE_S)
    log = server.log.read_text()
    assert "accessRequestToken=[redacted]" in log
    assert "client_secret=[redacted]" in log
    assert access not in log
    assert secret not in log
    assert "s3cret" not in log
