"""Cover pages on Create Faxes: `request.cover`, the default layout, an organization's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faxline.directory.provision import ProvisionError, apply, load
from faxline.documents import InputFile, convert_documents
from faxline.documents.cover import CoverFields, render_cover
from faxline.documents.faxtiff import read_fax_tiff
from tests.api.conftest import TENANTS, Api

COVER = {"subject": "Contract", "notes": "Please sign " * 30, "to": "Bob Jones", "from": "Alice"}


def _send(api: Api, request: dict[str, Any]) -> Any:
    body = [
        ("files", ("fax.txt", b"page one\fpage two", "text/plain")),
        ("request", (None, json.dumps(request))),
    ]
    return api.client.post("/uapi/faxes/@me/0003*210", files=body, headers=api.auth("alice"))


def _pages(api: Api, fax_id: int) -> list[Any]:
    r = api.client.get(f"/uapi/faxes/@me/0003*210/{fax_id}/document", headers=api.auth("alice"))
    assert r.status_code == 200
    return read_fax_tiff(r.content)


def _expected(template: str | None = None) -> Any:
    fields = CoverFields(
        organization="Acme",
        sender_name="Alice",
        sender_number="+15550100210",
        recipient_name="Bob Jones",
        recipient_number="7778888",
        date="2026-11-26 12:00 UTC",
        pages=3,
        subject="Contract",
        notes=COVER["notes"],
    )
    text = render_cover(fields, template).encode()
    document = convert_documents([InputFile("cover.txt", text)])
    return read_fax_tiff(document.tiff or b"")[0]


def test_cover_page_comes_first_and_counts(api: Api) -> None:
    r = _send(api, {"recipients": ["7778888"], "cover": COVER})
    assert r.status_code == 200, r.text
    view = api.client.get(f"/uapi/faxes/@me/0003*210/{r.json()['id']}", headers=api.auth("alice"))
    assert view.json()["pages"] == 3
    pages = _pages(api, r.json()["id"])
    assert len(pages) == 3
    assert np.array_equal(pages[0], _expected())


def test_old_clients_get_no_cover(api: Api) -> None:
    r = _send(api, {"recipients": ["7778888"]})
    assert r.status_code == 200, r.text
    assert len(_pages(api, r.json()["id"])) == 2


@pytest.mark.parametrize(
    ("cover", "message"),
    [
        ("hello", "cover must be a JSON object"),
        ({"subject": 3}, "cover.subject must be a string"),
        ({"title": "x"}, "cover has unknown fields ['title']; it takes subject, notes, to, from"),
        ({"notes": "x" * 4001}, "cover.notes is longer than 4000 characters"),
    ],
)
def test_bad_cover_is_refused_and_nothing_stored(api: Api, cover: Any, message: str) -> None:
    r = _send(api, {"recipients": ["7778888"], "cover": cover})
    assert r.status_code == 400
    assert r.json()["error"] == {"code": "request_invalid", "message": message}
    assert api.counts() == (0, 0, 0, 0)


def test_organization_template(api: Api, tmp_path: Path) -> None:
    template = "ACME FAX for {recipient_name} ({recipient_number})\n{pages} pages\n{notes}\n"
    (tmp_path / "acme-cover.txt").write_text(template)
    tenants: dict[str, Any] = json.loads(json.dumps(TENANTS))
    tenants["organizations"][0]["coverTemplate"] = "acme-cover.txt"
    (tmp_path / "tenants.json").write_text(json.dumps(tenants))
    with api.state.sessions() as session:
        apply(session, load(tmp_path / "tenants.json"))
        session.commit()
    r = _send(api, {"recipients": ["7778888"], "cover": COVER})
    assert r.status_code == 200, r.text
    assert np.array_equal(_pages(api, r.json()["id"])[0], _expected(template))


def test_bad_template_is_refused_by_provisioning(api: Api, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("Dear {customer}")
    tenants: dict[str, Any] = json.loads(json.dumps(TENANTS))
    tenants["organizations"][1]["coverTemplate"] = "bad.txt"
    tenants["organizations"][2]["coverTemplate"] = "missing.txt"
    (tmp_path / "tenants.json").write_text(json.dumps(tenants))
    with api.state.sessions() as session, pytest.raises(ProvisionError) as caught:
        apply(session, load(tmp_path / "tenants.json"))
    message = str(caught.value)
    assert "organizations[1] ('0004').coverTemplate: unknown placeholder {customer}" in message
    assert "organizations[2] ('0005').coverTemplate: cannot read " in message
