"""Reading faxes: list (paging, direction), one fax, cancel, document."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from faxline.documents import Resolution
from faxline.documents.faxtiff import write_fax_tiff
from faxline.store import faxes as fax_store
from faxline.store.models import Extension
from tests.api.conftest import Api


def receive(api: Api, number: str) -> int:
    page = np.zeros((400, 1728), dtype=bool)
    page[100:120, 100:1600] = True
    with api.state.sessions() as s:
        ext = s.query(Extension).filter_by(number=number).one()
        fax = fax_store.create_incoming(
            s,
            api.state.files,
            extension=ext,
            tiff=write_fax_tiff([page], Resolution.FINE),
            pages=1,
            resolution="fine",
            remote_ident="+1 555 0100",
            remote_number="+15550100",
            now=api.clock(),
        )
        return fax.id


def test_list_paging_and_direction(api: Api) -> None:
    sent = []
    for _ in range(3):
        sent.append(api.send("alice", "@me/210").json()["id"])
        api.clock.advance(1)
    received = receive(api, "0003*210")
    r = api.client.get("/uapi/faxes/@me/210", headers=api.auth("alice"))
    body = r.json()
    assert body["paging"] == {"startIndex": 0, "itemsPerPage": 4, "totalResults": 4}
    assert [e["id"] for e in body["entry"]] == [received, *reversed(sent)]
    r = api.client.get(
        "/uapi/faxes/@me/210", params={"startIndex": 1, "count": 2}, headers=api.auth("alice")
    )
    assert [e["id"] for e in r.json()["entry"]] == [sent[2], sent[1]]
    assert r.json()["paging"] == {"startIndex": 1, "itemsPerPage": 2, "totalResults": 4}
    r = api.client.get("/uapi/faxes/@me/210?direction=in", headers=api.auth("alice"))
    entries = r.json()["entry"]
    assert [e["id"] for e in entries] == [received]
    assert entries[0]["direction"] == "in"
    assert entries[0]["remoteIdent"] == "+1 555 0100"
    assert entries[0]["callerId"] == "+15550100"
    assert "deliveries" not in entries[0]
    r = api.client.get("/uapi/faxes/@me/210?direction=out", headers=api.auth("alice"))
    assert {e["direction"] for e in r.json()["entry"]} == {"out"}
    for bad in ("count=0", "count=5000", "startIndex=-1", "direction=sideways"):
        r = api.client.get(f"/uapi/faxes/@me/210?{bad}", headers=api.auth("alice"))
        assert (r.status_code, r.json()["error"]["code"]) == (400, "request_invalid"), bad


def test_incoming_readable_by_owner_org_and_admin(api: Api) -> None:
    fax = receive(api, "0003*210")
    for user, path in [("alice", "@me/210"), ("olga", "alice/210"), ("root", "@owner/0003*210")]:
        r = api.client.get(f"/uapi/faxes/{path}/{fax}", headers=api.auth(user))
        assert r.status_code == 200, (user, r.text)
    assert (
        api.client.get(f"/uapi/faxes/alice/210/{fax}", headers=api.auth("bob")).status_code == 403
    )


def test_cancel(api: Api) -> None:
    fax = api.send("alice", "@me/210", recipients=["7778881", "7778882"]).json()["id"]
    r = api.client.delete(f"/uapi/faxes/@me/210/{fax}", headers=api.auth("alice"))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "cancelled"
    assert {d["status"] for d in body["deliveries"]} == {"cancelled"}
    # Cancelling again changes nothing.
    r = api.client.delete(f"/uapi/faxes/@me/210/{fax}", headers=api.auth("alice"))
    assert r.json()["status"] == "cancelled"


def test_delete_incoming(api: Api) -> None:
    fax = receive(api, "0003*210")
    r = api.client.delete(f"/uapi/faxes/@me/210/{fax}", headers=api.auth("alice"))
    assert r.status_code == 204
    assert (
        api.client.get(f"/uapi/faxes/@me/210/{fax}", headers=api.auth("alice")).status_code == 404
    )
    assert api.counts() == (0, 0, 0, 0)


def test_document_tiff_and_pdf(api: Api) -> None:
    fax = api.send("alice", "@me/210", files=[("a.txt", b"one\x0ctwo")]).json()["id"]
    r = api.client.get(f"/uapi/faxes/@me/210/{fax}/document", headers=api.auth("alice"))
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.n_frames == 2
    r = api.client.get(f"/uapi/faxes/@me/210/{fax}/document?format=pdf", headers=api.auth("alice"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
