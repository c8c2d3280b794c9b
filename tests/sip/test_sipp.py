"""Smoke tests against SIPp (Debian ``sip-tester``), a real third-party SIP stack."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from faxline.sip.errors import NotAcceptable
from faxline.sip.negotiation import Capabilities, LocalMedia, answer_offer
from faxline.sip.ua import AsyncCall, IncomingCall, ReInvite, UserAgent

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = shutil.which("sipp")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is not installed"),
]
MEDIA = LocalMedia("127.0.0.1", 42000, 42002)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(ua: UserAgent, calls: list[AsyncCall]) -> None:
    """Answer every call and re-INVITE we can, refuse the rest with 488."""
    version = 1

    def answer(incoming: IncomingCall | ReInvite) -> None:
        nonlocal version
        if incoming.offer is None:
            incoming.reject(488)
            return
        try:
            sdp = answer_offer(incoming.offer, Capabilities(), MEDIA, session_id=5, version=version)
        except NotAcceptable:
            incoming.reject(488)
            return
        version += 1
        if isinstance(incoming, IncomingCall):
            call = incoming.accept(sdp)
            calls.append(call)
            asyncio.get_running_loop().create_task(follow(call))
        else:
            incoming.accept(sdp)

    async def follow(call: AsyncCall) -> None:
        while not call.ended.is_set():
            event = await call.events.get()
            if isinstance(event, ReInvite):
                answer(event)

    while True:
        answer(await ua.incoming.get())


async def run_sipp(scenario: Path, ua: UserAgent, workdir: Path) -> tuple[int, str]:
    host, port = ua.address
    assert SIPP is not None
    process = await asyncio.create_subprocess_exec(
        SIPP,
        "-sf",
        str(scenario),
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(free_port()),
        "-timeout",
        "20s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        f"{host}:{port}",
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    errors = "".join(p.read_text(errors="replace") for p in workdir.glob("*_errors.log"))
    return process.returncode or 0, output.decode(errors="replace")[-2000:] + errors


def scenario_file(tmp_path: Path, media: str, status: int) -> Path:
    text = (SCENARIOS / "invite_rejected.xml").read_text()
    path = tmp_path / f"rejected_{status}.xml"
    path.write_text(text.replace("@MEDIA@", media).replace("@STATUS@", str(status)))
    return path


@pytest.mark.parametrize(
    ("media", "status"),
    [
        ("m=audio many RTP/AVP 0", 400),
        ("m=image [media_port] udptl t38\na=T38FaxUdpEC:magic", 400),
        ("m=video [media_port] RTP/AVP 96\na=rtpmap:96 H264/90000", 488),
        ("m=audio [media_port] RTP/AVP 18\na=rtpmap:18 G729/8000", 488),
    ],
)
def test_sipp_invite_with_bad_sdp_is_refused(tmp_path: Path, media: str, status: int) -> None:
    async def main() -> tuple[int, str]:
        ua = await UserAgent.listen("127.0.0.1", 0, user="fax")
        server = asyncio.create_task(serve(ua, []))
        try:
            return await run_sipp(scenario_file(tmp_path, media, status), ua, tmp_path)
        finally:
            server.cancel()
            ua.close()

    code, output = asyncio.run(main())
    assert code == 0, output


def test_sipp_call_with_t38_reinvite(tmp_path: Path) -> None:
    calls: list[AsyncCall] = []

    async def main() -> tuple[int, str]:
        ua = await UserAgent.listen("127.0.0.1", 0, user="fax")
        server = asyncio.create_task(serve(ua, calls))
        try:
            result = await run_sipp(SCENARIOS / "invite_t38.xml", ua, tmp_path)
            if calls:
                await asyncio.wait_for(calls[0].ended.wait(), 5)
            return result
        finally:
            server.cancel()
            ua.close()

    code, output = asyncio.run(main())
    assert code == 0, output
    (call,) = calls
    assert call.end_reason == "bye"
    assert call.remote_sdp is not None and call.remote_sdp.media[0].is_t38
    assert call.local_sdp.media[0].is_t38
