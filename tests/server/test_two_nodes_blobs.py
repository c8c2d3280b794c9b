"""Two `faxline serve` processes with their own data directories on one PostgreSQL: a fax
created on A is delivered by B and downloaded from B; the fax B received is read from A
(issue 12: documents in the database)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from faxline.testing.live import live_server
from tests.conftest import PG_URL, reset_postgres

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _token(base: str, who: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": f"{who}-app",
            "client_secret": f"s3cret-{who}"}  # fmt: skip
    r = httpx.post(f"{base}/oauth/token.php", data=form, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_any_node_delivers_and_serves_any_fax(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set FAXLINE_TEST_DATABASE_URL to run this on it")
    reset_postgres(PG_URL)
    demo = ROOT / "examples" / "demo.json"
    db = {"FAXLINE_DATABASE_URL": PG_URL}
    with (
        live_server(
            tmp_path / "a", demo, tmp_path / "a.log", {**db, "FAXLINE_DISPATCHER": "false"}
        ) as a,
        live_server(tmp_path / "b", demo, tmp_path / "b.log", db) as b,
    ):
        alice_a, alice_b = _token(a.base, "alice"), _token(b.base, "alice")
        r = httpx.post(
            f"{a.base}/uapi/faxes/@me/210",
            headers=alice_a,
            files=[
                ("files", ("memo.txt", b"Hello from node A.\n", "application/octet-stream")),
                ("request", (None, '{"recipients": ["211"]}')),
            ],
            timeout=60,
        )
        assert r.status_code == 200, r.text
        fax_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while True:
            fax = httpx.get(f"{b.base}/uapi/faxes/@me/210/{fax_id}", headers=alice_b).json()
            if fax["status"] in ("sent", "failed"):
                break
            assert time.monotonic() < deadline, fax
            time.sleep(0.5)
        assert fax["status"] == "sent", fax
        # Only B runs a dispatcher: B delivered it, from the document A stored.
        assert ": delivered (" in b.log.read_text()
        assert ": delivered (" not in a.log.read_text()
        sent_a = httpx.get(f"{a.base}/uapi/faxes/@me/210/{fax_id}/document", headers=alice_a)
        sent_b = httpx.get(f"{b.base}/uapi/faxes/@me/210/{fax_id}/document", headers=alice_b)
        assert sent_b.status_code == 200 and sent_b.content[:4] == b"II*\x00"
        assert sent_b.content == sent_a.content
        # Nothing of it lies in either data directory: the documents are in the database.
        for node in ("a", "b"):
            faxes = tmp_path / node / "faxes"
            assert not faxes.exists() or os.listdir(faxes) == [], node
        # Bob's inbox got it on B (B's local call received it); A serves it.
        bob_a = _token(a.base, "bob")
        inbox = httpx.get(f"{a.base}/uapi/faxes/@me/211?direction=in", headers=bob_a).json()
        (received,) = inbox["entry"]
        got = f"{a.base}/uapi/faxes/@me/211/{received['id']}/document"
        tiff = httpx.get(got, headers=bob_a)
        assert tiff.status_code == 200 and tiff.content[:4] == b"II*\x00"
        pdf = httpx.get(got, params={"format": "pdf"}, headers=bob_a)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert pdf.content.rstrip().endswith(b"%%EOF")
