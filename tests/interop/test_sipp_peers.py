"""SIPp (Debian ``sip-tester``) as the far ends that two faxline servers would never be to
each other: busy, never answering, re-INVITEing to T.38 and then silent, losing requests,
sending broken SDP, calling from a stranger's address or to an unknown number."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import EAST_DID, EAST_EXT, SIPP_NUMBERS, Interop, fax_pages
from tests.interop.harness import Sipp, final, needs_peers, scenario

pytestmark = [pytest.mark.slow, needs_peers]


def deliveries(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["recipient"]: d for d in view["deliveries"]}


def received(sipp: Sipp, method: str) -> int:
    """How many ``method`` requests SIPp received (its message trace)."""
    return len(re.findall(rf"^{method} sip:", sipp.messages(), flags=re.MULTILINE))


def test_busy_far_end_is_retried_later(interop: Interop, tmp_path: Path) -> None:
    sipp = Sipp(scenario(tmp_path, "uas_busy"), port=interop.sipp_ports["busy"])
    try:
        with interop.alice() as alice:
            tiff, _ = fax_pages(1, seed=21)
            fax_id = interop.east.send(alice, EAST_EXT, [SIPP_NUMBERS["busy"]], tiff)
            view = interop.east.wait_for_deliveries(
                alice,
                EAST_EXT,
                fax_id,
                lambda ds: ds[0]["status"] in ("retrying", "failed"),
                timeout=30,
            )
        assert sipp.wait(30) == 0, sipp.report()
    finally:
        sipp.stop()
    (delivery,) = view["deliveries"]
    assert (delivery["status"], delivery["failureReason"]) == ("retrying", "busy"), delivery
    assert delivery["nextAttemptAt"]
    (attempt,) = delivery["history"]
    assert attempt["sipStatus"] == 486 and attempt["outcome"] == "busy", attempt


def test_far_end_that_never_answers_is_cancelled(interop: Interop, tmp_path: Path) -> None:
    sipp = Sipp(scenario(tmp_path, "uas_no_answer"), port=interop.sipp_ports["no_answer"])
    try:
        with interop.alice() as alice:
            tiff, _ = fax_pages(1, seed=22)
            fax_id = interop.east.send(alice, EAST_EXT, [SIPP_NUMBERS["no_answer"]], tiff)
            view = interop.east.wait_for_deliveries(
                alice, EAST_EXT, fax_id, lambda ds: final(d["status"] for d in ds), timeout=30
            )
        # The scenario passes only if a CANCEL came (and then the ACK for its 487).
        assert sipp.wait(30) == 0, sipp.report()
    finally:
        sipp.stop()
    assert received(sipp, "CANCEL") >= 1
    (delivery,) = view["deliveries"]
    assert (delivery["status"], delivery["failureReason"]) == ("failed", "no_answer"), delivery
    (attempt,) = delivery["history"]
    assert attempt["sipStatus"] == 408, attempt  # our CANCEL: no answer, not a refusal


def test_far_ends_that_go_quiet_or_lose_requests(interop: Interop, tmp_path: Path) -> None:
    """One fax to two far ends at once (each call costs a media timeout):

    - one answers, re-INVITEs to T.38 and sends nothing more: our call must end by media
      timeout (BYE), be retried, and end for good, never hang;
    - one "loses" the first INVITE and the first BYE of each call: nothing is answered
      until they are retransmitted (SIPp's scenario waits for the copies).
    """
    silent = Sipp(
        scenario(tmp_path / "silent", "uas_t38_then_silence"),
        port=interop.sipp_ports["silent"],
        calls=2,
    )
    lost = Sipp(
        scenario(tmp_path / "lost", "uas_retransmissions"),
        port=interop.sipp_ports["lost"],
        calls=2,
    )
    try:
        with interop.alice() as alice:
            tiff, _ = fax_pages(1, seed=23)
            numbers = [SIPP_NUMBERS["silent"], SIPP_NUMBERS["lost"]]
            fax_id = interop.east.send(alice, EAST_EXT, numbers, tiff)
            view = interop.east.wait_for_deliveries(
                alice, EAST_EXT, fax_id, lambda ds: final(d["status"] for d in ds), timeout=90
            )
        assert silent.wait(30) == 0, silent.report()
        assert lost.wait(30) == 0, lost.report()
    finally:
        silent.stop()
        lost.stop()
    by_number = deliveries(view)

    quiet = by_number[SIPP_NUMBERS["silent"]]
    assert (quiet["status"], quiet["failureReason"], quiet["attempts"]) == (
        "failed",
        "t30_failure",
        2,
    ), quiet
    for attempt in quiet["history"]:
        assert attempt["transport"] == "t38" and attempt["sipStatus"] == 200, attempt
        assert "media_timeout" in attempt["t30Text"], attempt
    assert received(silent, "BYE") == 2  # we hung up each call ourselves

    lossy = by_number[SIPP_NUMBERS["lost"]]
    assert (lossy["status"], lossy["attempts"]) == ("failed", 2), lossy
    for attempt in lossy["history"]:
        assert attempt["sipStatus"] == 200 and attempt["transport"] == "audio", attempt
    # Each call's INVITE and BYE came twice: the "lost" one and its retransmission.
    assert received(lost, "INVITE") >= 4 and received(lost, "BYE") >= 4


BROKEN_SDP = "m=audio many RTP/AVP 0"
VIDEO_ONLY = "m=video [media_port] RTP/AVP 96\na=rtpmap:96 H264/90000"
GOOD_AUDIO = "m=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000"


@pytest.mark.parametrize(
    ("local_ip", "number", "media", "status"),
    [
        pytest.param("127.0.0.2", EAST_DID, GOOD_AUDIO, 403, id="not-a-trunk"),
        pytest.param("127.0.0.1", "+15559999999", GOOD_AUDIO, 404, id="unknown-number"),
        pytest.param("127.0.0.1", EAST_DID, BROKEN_SDP, 400, id="broken-sdp"),
        pytest.param("127.0.0.1", EAST_DID, VIDEO_ONLY, 488, id="no-usable-media"),
    ],
)
def test_refused_invites_and_the_server_keeps_serving(
    interop: Interop, tmp_path: Path, local_ip: str, number: str, media: str, status: int
) -> None:
    """The scenario fails unless the INVITE gets ``status`` and a following OPTIONS 200."""
    with interop.alice() as alice:
        before = len(interop.east.inbox(alice, EAST_EXT))
        sipp = Sipp(
            scenario(tmp_path, "uac_refused", number=number, media=media, status=str(status)),
            local_ip=local_ip,
            remote=interop.east.sip_address,
        )
        try:
            assert sipp.wait(30) == 0, sipp.report() + interop.east.log()
        finally:
            sipp.stop()
        assert len(interop.east.inbox(alice, EAST_EXT)) == before  # nothing was stored
