"""TIFFs are checked before a sending session exists, so SpanDSP never sends a bad page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from faxline.fax import (
    AudioFaxSession,
    FaxDocumentError,
    FaxJob,
    T38FaxSession,
    Transport,
    run_call,
)

PROBLEMS = {
    "tiled": "tiled",
    "narrow": "1700 pixels wide",
    "no-resolution": "no resolution",
}


@pytest.mark.parametrize("kind", list(PROBLEMS))
@pytest.mark.parametrize("session_type", [AudioFaxSession, T38FaxSession])
def test_bad_tiff_is_refused_by_the_sending_session(
    kind: str, session_type: type[AudioFaxSession | T38FaxSession], bad_tiff: Callable[[str], Path]
) -> None:
    path = bad_tiff(kind)
    with pytest.raises(FaxDocumentError, match=PROBLEMS[kind]) as caught:
        session_type(FaxJob.send(path))
    assert path.name in str(caught.value)
    assert caught.value.permanent


def test_missing_file_is_a_document_error(tmp_path: Path) -> None:
    with pytest.raises(FaxDocumentError, match="cannot read"):
        AudioFaxSession(FaxJob.send(tmp_path / "absent.tif"))


def test_run_call_refuses_before_dialling(bad_tiff: Callable[[str], Path], tmp_path: Path) -> None:
    with pytest.raises(FaxDocumentError, match="tiled"):
        run_call(
            FaxJob.send(bad_tiff("tiled")),
            FaxJob.receive(tmp_path / "in.tif"),
            transport=Transport.T38,
        )
    assert not (tmp_path / "in.tif").exists()


def test_receiving_session_does_not_need_the_file_yet(tmp_path: Path) -> None:
    with AudioFaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as session:
        assert not session.finished
