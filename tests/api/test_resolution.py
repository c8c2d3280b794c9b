"""`request.resolution` on Create Faxes and the server's default (`FAXLINE_RESOLUTION`):
the pages are converted at it, the fax says it, a wrong value is refused before anything
is converted or stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from faxline.documents import InputFile, Resolution, convert_documents
from faxline.documents.faxtiff import read_fax_tiff
from faxline.documents.tiffstruct import read_frames
from tests.api.conftest import Api

TEXT = b"Superfine: 391 lines per inch.\fPage two."


def _send(api: Api, request: dict[str, Any]) -> Any:
    body = [
        ("files", ("fax.txt", TEXT, "text/plain")),
        ("request", (None, json.dumps(request))),
    ]
    return api.client.post("/uapi/faxes/@me/0003*210", files=body, headers=api.auth("alice"))


def _document(api: Api, fax_id: int) -> bytes:
    r = api.client.get(f"/uapi/faxes/@me/0003*210/{fax_id}/document", headers=api.auth("alice"))
    assert r.status_code == 200
    return r.content


@pytest.mark.parametrize(
    ("request_value", "default", "expected"),
    [
        ("superfine", "fine", Resolution.SUPERFINE),
        ("standard", "fine", Resolution.STANDARD),
        (None, "superfine", Resolution.SUPERFINE),
        (None, "fine", Resolution.FINE),
        ("null", "standard", Resolution.STANDARD),  # JSON null: as if not given
    ],
)
def test_pages_are_converted_at_the_resolution_asked_for(
    make_api: Callable[..., Api],
    request_value: str | None,
    default: str,
    expected: Resolution,
) -> None:
    api = make_api(resolution=default)
    request: dict[str, Any] = {"recipients": ["7778888"]}
    if request_value is not None:
        request["resolution"] = None if request_value == "null" else request_value
    r = _send(api, request)
    assert r.status_code == 200, r.text
    fax_id = r.json()["id"]
    view = api.client.get(f"/uapi/faxes/@me/0003*210/{fax_id}", headers=api.auth("alice"))
    assert view.json()["resolution"] == expected.value
    data = _document(api, fax_id)
    assert {f.resolution() for f in read_frames(data)} == {(204.0, float(expected.y_dpi))}
    local = convert_documents([InputFile("fax.txt", TEXT)], resolution=expected)
    pages = read_fax_tiff(data)
    assert len(pages) == 2
    for got, want in zip(pages, read_fax_tiff(local.tiff or b""), strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("value", ["ultrafine", "", "Fine", 196, ["fine"]])
def test_a_wrong_resolution_is_refused_and_nothing_is_stored(api: Api, value: object) -> None:
    r = _send(api, {"recipients": ["7778888"], "resolution": value})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "request_invalid"
    assert error["message"] == (
        f"resolution must be one of superfine, fine, standard, not {json.dumps(value)}"
    )
    listing = api.client.get("/uapi/faxes/@me/0003*210", headers=api.auth("alice"))
    assert listing.status_code == 200
    assert listing.json()["paging"]["totalResults"] == 0
