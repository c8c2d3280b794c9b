"""GET /metrics through a real server: who may scrape, what it shows, request ids, JSON
logs; and the Grafana dashboard names only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from faxline.testing.live import live_server
from faxline.testing.network import outside_address

ROOT = Path(__file__).resolve().parents[2]
PROVISION = ROOT / "examples" / "demo.json"


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_scrape_from_loopback_and_refused_to_a_stranger(tmp_path: Path) -> None:
    outside = outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address to be a stranger from")
    settings = {
        "FAXLINE_HOST": "0.0.0.0",
        "FAXLINE_LOG_FORMAT": "json",
        "FAXLINE_DISPATCHER": "false",
    }
    with live_server(tmp_path / "data", PROVISION, tmp_path / "serve.log", settings) as server:
        local = httpx.get(f"{server.base}/metrics", headers={"X-Request-Id": "scrape-1"})
        assert local.status_code == 200
        assert local.headers["x-request-id"] == "scrape-1"
        samples = _samples(local.text)
        assert samples['faxline_queue_deliveries{status="queued"}'] == 0
        assert samples["faxline_queue_oldest_due_seconds"] == 0
        assert samples['faxline_outbox_pending{channel="webhook"}'] == 0
        stranger = httpx.get(f"http://{outside}:{server.port}/metrics")
        assert stranger.status_code == 403
        assert stranger.json()["error"]["code"] == "forbidden"
        assert re.fullmatch(r"[0-9a-f]{32}", stranger.headers["x-request-id"])
        health = httpx.get(
            f"{server.base}/healthz?accessRequestToken=Bearer%20sekrit-token-0123456789"
        )
        assert health.status_code == 200
    lines = [ln for ln in server.log.read_text().splitlines() if ln.startswith("{")]
    entries = [json.loads(ln) for ln in lines]  # every line parses
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(e.get("request_id") == "scrape-1" for e in entries)
    assert "sekrit-token" not in server.log.read_text()


def test_allow_list_lets_a_network_scrape(tmp_path: Path) -> None:
    outside = outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    settings = {"FAXLINE_HOST": "0.0.0.0", "FAXLINE_METRICS_ALLOW": f'["{outside}/32"]'}
    with live_server(tmp_path / "data", PROVISION, tmp_path / "serve.log", settings) as server:
        assert httpx.get(f"http://{outside}:{server.port}/metrics").status_code == 200


def test_dashboard_names_only_metrics_that_exist() -> None:
    from faxline.api.metrics import _Scrape
    from faxline.store.depth import Depth

    scrape = _Scrape(Depth({"queued": 0}, None, {"webhook": 0}), 0.0)
    known = {m.name for m in scrape.collect()}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "faxline.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\bfaxline_[a-z0-9_]+", e)}
    assert used
    for name in used:
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert name in known or base in known, name


def test_create_faxes_moves_its_counters_in_the_scrape(tmp_path: Path) -> None:
    """A fax stored through the API, and one refused, move the created counter and the
    Create Faxes latency histogram (by status); the conversion ran in a worker process."""
    settings = {"FAXLINE_DISPATCHER": "false"}
    with live_server(tmp_path / "data", PROVISION, tmp_path / "serve.log", settings) as server:
        form = {"grant_type": "client_credentials", "client_id": "alice-app",
                "client_secret": "s3cret-alice"}  # fmt: skip
        token = httpx.post(f"{server.base}/oauth/token.php", data=form, timeout=30).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}

        def scrape() -> dict[str, float]:
            return _samples(httpx.get(f"{server.base}/metrics", timeout=30).text)

        def create(request: str) -> httpx.Response:
            files = [
                ("files", ("memo.txt", b"Page one.\f\nPage two.\n", "application/octet-stream")),
                ("request", (None, request)),
            ]
            url = f"{server.base}/uapi/faxes/@me/210"
            return httpx.post(url, headers=auth, files=files, timeout=60)

        before = scrape()
        assert create('{"recipients": ["211"]}').status_code == 200
        assert create('{"recipients": []}').status_code == 400
        after = scrape()

    def moved(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert moved('faxline_faxes_created_total{organization="0003"}') == 1
    assert moved('faxline_create_fax_seconds_count{status="200"}') == 1
    assert moved('faxline_create_fax_seconds_count{status="400"}') == 1
    assert moved('faxline_conversions_total{result="ok"}') == 1
    assert moved("faxline_converted_pages_total") == 2
