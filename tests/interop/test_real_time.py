"""A fax call between two user agents paced in real time by the default 20 ms media clock,
as a far end would pace its own (it lasts as long as a real call: ~24 s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from faxline.documents import Resolution
from faxline.documents.faxtiff import write_fax_tiff
from faxline.fax import FaxJob
from faxline.sip.ua import UserAgent
from faxline.telephony import SipFaxResult, receive_fax, send_fax
from tests.fax.faxpages import assert_pages_equal, make_pages

pytestmark = pytest.mark.slow


def test_one_page_over_t38_in_real_time(tmp_path: Path) -> None:
    pages = make_pages(1, seed=7, rows=1100)
    document = tmp_path / "one.tif"
    document.write_bytes(write_fax_tiff(pages, Resolution.STANDARD))
    received = tmp_path / "in.tif"

    async def main() -> tuple[SipFaxResult, SipFaxResult, float]:
        alice = await UserAgent.listen("127.0.0.1", 0, user="alice")
        bob = await UserAgent.listen("127.0.0.1", 0, user="bob")
        loop = asyncio.get_running_loop()
        try:

            async def answer() -> SipFaxResult:
                incoming = await bob.incoming.get()
                return await receive_fax(incoming, FaxJob.receive(received))

            answering = asyncio.create_task(answer())
            host, port = bob.address
            started = loop.time()
            sent = await send_fax(
                alice, f"sip:bob@{host}:{port}", FaxJob.send(document, ident="+15550100")
            )
            return sent, await answering, loop.time() - started
        finally:
            alice.close()
            bob.close()

    sent, got, seconds = asyncio.run(asyncio.wait_for(main(), 90))
    for result in (sent, got):
        assert result.delivered and result.transport == "t38" and result.ended == "completed"
    assert sent.fax is not None and 18 < sent.fax.duration_s < 40
    assert sent.fax.duration_s - 1 < seconds  # the session's time is the wall clock's
    assert_pages_equal(received, pages)
