"""A fax between two servers over SIP, as an operator sees it: counters move in both
servers' GET /metrics, and both keep a call record (the receiver's without a delivery)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import httpx
import pytest

from tests.interop.conftest import EAST_EXT, WEST_EXT, WEST_T38, Interop, fax_pages
from tests.interop.harness import FaxServer, final, needs_peers

pytestmark = [pytest.mark.slow, needs_peers]


def scrape(server: FaxServer) -> dict[str, float]:
    text = httpx.get(f"{server.base_url}/metrics").text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def moved(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def test_an_inbound_sip_fax_moves_the_counters_and_is_recorded(interop: Interop) -> None:
    east, west = interop.east, interop.west
    tiff, _ = fax_pages(2, seed=21)
    east_before, west_before = scrape(east), scrape(west)
    with interop.alice() as alice:
        fax_id = east.send(alice, EAST_EXT, [WEST_T38], tiff)
        view = east.wait_for_deliveries(
            alice, EAST_EXT, fax_id, lambda ds: final(str(d["status"]) for d in ds), timeout=90
        )
    assert view["deliveries"][0]["status"] == "delivered", view
    east_after, west_after = scrape(east), scrape(west)
    assert moved(east_before, east_after, 'faxline_pages_total{direction="sent"}') == 2
    assert (
        moved(
            east_before,
            east_after,
            'faxline_deliveries_finished_total{outcome="delivered",reason=""}',
        )
        == 1
    )
    assert moved(west_before, west_after, 'faxline_pages_total{direction="received"}') == 2
    received = [
        k
        for k in west_after
        if k.startswith("faxline_inbound_calls_total{") and 'outcome="received"' in k
    ]
    assert sum(moved(west_before, west_after, k) for k in received) == 1
    assert (
        moved(
            west_before, west_after, 'faxline_t30_completions_total{code="0",direction="received"}'
        )
        == 1
    )
    sip_ok = [
        k
        for k in east_after
        if k.startswith("faxline_sip_final_responses_total{") and 'status="200"' in k
    ]
    assert sum(moved(east_before, east_after, k) for k in sip_ok) >= 1

    done = subprocess.run(
        [sys.executable, "-m", "faxline.cli", "records", "--data-dir", str(west.data_dir)],
        env=west.env,
        capture_output=True,
        text=True,
        check=True,
    )
    inbound = [r for r in csv.DictReader(io.StringIO(done.stdout)) if r["direction"] == "in"]
    assert inbound, done.stdout
    last = inbound[-1]
    assert (last["outcome"], last["pages"], last["local_number"]) == ("received", "2", WEST_EXT)
    assert last["answered"] and last["ended"] and last["t30_code"] == "0" and last["fax_id"]
