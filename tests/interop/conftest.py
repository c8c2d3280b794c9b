"""Fixtures for the interop tests: Kamailio, two faxline servers ("east" and "west") that
fax each other through it, and the ports that SIPp scenarios and the lossy hop listen on.

The processes live for the whole session (starting a server takes seconds); each test
uses its own numbers, so tests do not see each other's faxes. Numbers:

- east: extension 0003*210 (alice), DID +15550200100.
- west: extension 0004*310 (bob), DIDs +15550300100 (reached through Kamailio with
  T.38), +15550310100 (through Kamailio on a trunk that says ``t38: never``) and
  +15550320100 (through the lossy hop, no proxy).
- east's trunks to SIPp: +1555091... busy, +1555092... no answer, +1555093... T.38 then
  silence, +1555094... lost INVITE and BYE.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from faxline.documents import Resolution
from faxline.documents.faxtiff import read_fax_tiff, write_fax_tiff
from tests.fax.faxpages import make_pages
from tests.interop.harness import FaxServer, Kamailio, reserved_udp_port

ALICE = ("alice-app", "s3cret-alice")
BOB = ("bob-app", "s3cret-bob")
EAST_EXT, WEST_EXT = "0003*210", "0004*310"
EAST_DID = "+15550200100"
WEST_T38, WEST_G711, WEST_LOSSY = "+15550300100", "+15550310100", "+15550320100"
SIPP_NUMBERS = {
    "busy": "+15550910000",
    "no_answer": "+15550920000",
    "silent": "+15550930000",
    "lost": "+15550940000",
}
SERVER_ENV = {
    # Short SIP timers, so that far ends that misbehave cost seconds, not minutes. The
    # media timeout stays above the longest quiet spell of a healthy T.38 call (a caller
    # is silent for 5-8 s while the answerer sends CED and DIS).
    "FAXLINE_SIP_ANSWER_TIMEOUT_S": "3",
    "FAXLINE_SIP_MEDIA_TIMEOUT_S": "10",
    "FAXLINE_POLL_INTERVAL_S": "0.1",
    "FAXLINE_MAX_CALLS": "8",
    # busy: stays "retrying" (the next attempt is far away); no answer: fails at once;
    # a T.30 failure (a call that died) is retried once, one second later.
    "FAXLINE_RETRY_BUSY_ATTEMPTS": "3",
    "FAXLINE_RETRY_BUSY_DELAY_S": "600",
    "FAXLINE_RETRY_NO_ANSWER_ATTEMPTS": "1",
    "FAXLINE_RETRY_T30_ATTEMPTS": "2",
    "FAXLINE_RETRY_T30_DELAY_S": "1",
}


@dataclass
class Interop:
    """The running world: the proxy, both servers, and where the misbehaving peers sit."""

    kamailio: Kamailio
    east: FaxServer
    west: FaxServer
    sipp_ports: dict[str, int]
    lossy_ports: tuple[int, int]  # the lossy hop's SIP sockets: east side, west side
    workdir: Path

    def alice(self) -> httpx.Client:
        return self.east.client(*ALICE)

    def bob(self) -> httpx.Client:
        return self.west.client(*BOB)


def east_spec(kamailio: Kamailio, west: FaxServer, sipp: dict[str, int], lossy: int) -> Any:
    trunks = [
        {"name": "west", "uri": west.sip_uri, "proxy": kamailio.uri, "prefixes": ["+1555030"]},
        {
            "name": "west-g711",
            "uri": west.sip_uri,
            "proxy": kamailio.uri,
            "prefixes": ["+1555031"],
            "t38": "never",
        },
        {"name": "west-lossy", "uri": f"sip:127.0.0.1:{lossy}", "prefixes": ["+1555032"]},
    ]
    for name, number in SIPP_NUMBERS.items():
        trunks.append(
            {"name": f"sipp-{name}", "uri": f"sip:127.0.0.1:{sipp[name]}", "prefixes": [number]}
        )
    return {
        "organizations": [{"code": "0003", "name": "East"}],
        "users": [{"id": "alice", "organization": "0003"}],
        "extensions": [
            {
                "number": EAST_EXT,
                "owner": "alice",
                "fax": True,
                "callerId": EAST_DID,
                "header": "East - Alice",
                "dids": [EAST_DID],
            }
        ],
        "apps": [{"clientId": ALICE[0], "clientSecret": ALICE[1], "owner": "alice"}],
        "trunks": trunks,
    }


def west_spec(kamailio: Kamailio, east: FaxServer) -> Any:
    return {
        "organizations": [{"code": "0004", "name": "West"}],
        "users": [{"id": "bob", "organization": "0004"}],
        "extensions": [
            {
                "number": WEST_EXT,
                "owner": "bob",
                "fax": True,
                "callerId": WEST_T38,
                "header": "West - Bob",
                "dids": [WEST_T38, WEST_G711, WEST_LOSSY],
            }
        ],
        "apps": [{"clientId": BOB[0], "clientSecret": BOB[1], "owner": "bob"}],
        "trunks": [
            {"name": "east", "uri": east.sip_uri, "proxy": kamailio.uri, "prefixes": ["+1555020"]}
        ],
    }


@pytest.fixture(scope="session")
def interop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Interop]:
    workdir = tmp_path_factory.mktemp("interop")
    kamailio = Kamailio(workdir / "kamailio")
    east = FaxServer("east", workdir, SERVER_ENV)
    west = FaxServer("west", workdir, SERVER_ENV)
    sipp_ports = {name: reserved_udp_port() for name in SIPP_NUMBERS}
    lossy_ports = (reserved_udp_port(), reserved_udp_port())
    try:
        kamailio.start()
        east.provision(east_spec(kamailio, west, sipp_ports, lossy_ports[0]))
        west.provision(west_spec(kamailio, east))
        east.launch()
        west.launch()
        east.wait_ready()
        west.wait_ready()
        yield Interop(kamailio, east, west, sipp_ports, lossy_ports, workdir)
    finally:
        for process in (east, west, kamailio):
            process.stop()


def fax_pages(count: int, seed: int) -> tuple[bytes, list[np.ndarray]]:
    """A fine-resolution fax of ``count`` short pages (short pages keep calls short)."""
    pages = make_pages(count, seed=seed, rows=1100)
    return write_fax_tiff(pages, Resolution.FINE), pages


def assert_same_pages(received: bytes, sent: bytes) -> None:
    """The received fax holds the sent pages pixel for pixel, below the header rows the
    sender's SpanDSP stamps on top of each page."""
    got, want = read_fax_tiff(received), read_fax_tiff(sent)
    assert len(got) == len(want)
    for number, (page, original) in enumerate(zip(got, want, strict=True), start=1):
        header_rows = page.shape[0] - original.shape[0]
        assert 0 < header_rows <= 64, f"page {number}: {page.shape} vs {original.shape}"
        assert page.shape[1] == original.shape[1] == 1728
        assert page[:header_rows].any(), f"page {number} has no header line"
        assert np.array_equal(page[header_rows:], original), f"page {number} differs"


def matching(received: list[bytes], sent: bytes) -> bytes:
    """The received document whose pages are the sent ones (AssertionError if none)."""
    for document in received:
        try:
            assert_same_pages(document, sent)
        except AssertionError:
            continue
        return document
    raise AssertionError(f"none of {len(received)} received faxes holds the sent pages")
