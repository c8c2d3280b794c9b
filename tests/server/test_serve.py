"""`faxline serve` as a user runs it: HTTPS, the demo tenant, a fax delivered and received."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faxline.documents.faxtiff import read_fax_tiff
from faxline.testing.waiting import OutputWatcher, eventually

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
    cli = [sys.executable, "-m", "faxline.cli"]
    subprocess.run(
        [*cli, "provision", "--data-dir", str(data), str(ROOT / "examples" / "demo.json")],
        check=True,
        capture_output=True,
        env=env,
    )
    port = free_port()
    env["FAXLINE_SIP_LISTEN"] = f"127.0.0.1:{free_udp_port()}"
    proc = subprocess.Popen(
        [
            *cli,
            "serve",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    output = OutputWatcher(proc.stdout, tmp_path / "serve.log")
    context = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{port}"
    try:
        output.wait_for("Uvicorn running on", timeout=30)
        yield base, context
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        output.close()


def token(client: httpx.Client, who: str) -> str:
    r = client.post(
        "/oauth/token.php",
        data={
            "grant_type": "client_credentials",
            "client_id": f"{who}-app",
            "client_secret": f"s3cret-{who}",
            "type": "unifiedapi",
            "redirect_uri": "https://localhost/",
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_demo_fax_is_delivered_over_https(server: tuple[str, ssl.SSLContext]) -> None:
    base, context = server
    with httpx.Client(base_url=base, verify=context, timeout=30) as client:
        alice = {"Authorization": f"Bearer {token(client, 'alice')}"}
        r = client.post(
            "/uapi/faxes/@me/0003*210",
            headers=alice,
            files=[
                ("files", ("/path/to/file/fax.txt", b"This is my fax", "application/octet-stream")),
                ("request", (None, json.dumps({"recipients": ["0003*211", "15550000002"]}))),
            ],
        )
        assert r.status_code == 200, r.text
        fax_id = r.json()["id"]

        def fax() -> dict[str, Any]:
            r = client.get(f"/uapi/faxes/@me/0003*210/{fax_id}", headers=alice)
            return dict(r.json())

        def settled() -> bool:
            return [d["status"] for d in fax()["deliveries"]] == ["delivered", "retrying"]

        eventually(settled, 20, "the local delivery and the busy one's first attempt")
        view = fax()
        local, busy = view["deliveries"]
        assert (local["pagesSent"], local["ecm"], local["transport"]) == (1, True, "t38")
        assert local["bitRate"] == 14400
        assert (busy["failureReason"], busy["attempts"]) == ("busy", 1) and busy["nextAttemptAt"]
        assert [a["outcome"] for a in busy["history"]] == ["busy"]
        assert local["history"][0]["remoteIdent"] == "+15550100211"
        assert view["status"] == "sending"

        bob = {"Authorization": f"Bearer {token(client, 'bob')}"}
        inbox = client.get("/uapi/faxes/@me/211", params={"direction": "in"}, headers=bob).json()
        (received,) = inbox["entry"]
        assert received["remoteIdent"] == "+15550100210"
        doc = client.get(f"/uapi/faxes/@me/211/{received['id']}/document", headers=bob)
        assert doc.headers["content-type"] == "image/tiff"
        (page,) = read_fax_tiff(doc.content)
        assert page.shape[1] == 1728 and page.any()
