"""Create Faxes: every documented answer, and nothing half-stored on failure."""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest
from PIL import Image
from sqlalchemy import text

from faxline.store.files import FileStore
from tests.api.conftest import Api

BOUNDARY = "------325343636"


def documented_body() -> bytes:
    """The request of VoipNow's documentation page, made well-formed (same parts, same text)."""
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="files"; filename="/path/to/file/fax.txt"\r\n'
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "This is my fax\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="request";\r\n'
        "\r\n"
        '{\n    "recipients":["7778888"]\n}\r\n'
        f"--{BOUNDARY}--\r\n"
    ).encode()


def post_raw(api: Api, path: str, body: bytes, content_type: str, user: str = "alice") -> object:
    return api.client.post(
        path, content=body, headers={**api.auth(user), "Content-Type": content_type}
    )


def test_documented_example(api: Api) -> None:
    r = api.client.post(
        "/uapi/faxes/@me/0003*210",
        content=documented_body(),
        headers={**api.auth("alice"), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "uid"}
    assert isinstance(body["id"], int)
    assert re.fullmatch(r"[0-9a-f]{32}", body["uid"])
    fax = api.client.get(f"/uapi/faxes/@me/0003*210/{body['id']}", headers=api.auth("alice"))
    assert fax.status_code == 200
    view = fax.json()
    assert view["direction"] == "out"
    assert view["pages"] == 1
    assert view["recipients"] == ["7778888"]
    assert view["documents"] == [{"name": "fax.txt", "type": "text", "size": 14}]
    assert [(d["recipient"], d["status"], d["attempts"]) for d in view["deliveries"]] == [
        ("7778888", "queued", 0)
    ]
    assert api.counts() == (1, 1, 1, 1)
    doc = api.client.get(
        f"/uapi/faxes/@me/0003*210/{body['id']}/document", headers=api.auth("alice")
    )
    assert doc.status_code == 200
    assert doc.headers["content-type"] == "image/tiff"
    with Image.open(io.BytesIO(doc.content)) as im:
        assert im.size[0] == 1728
        assert im.info["compression"] == "group4"


def test_raw_documented_request_is_a_clear_400(api: Api) -> None:
    """The page's literal example is not well-formed multipart: a 400 that says why."""
    raw = (
        b"------325343636-------\r\n"
        b'Content-Disposition:form-data; name="files"; filename="/path/to/file/fax.txt"\r\n'
        b"Content-Type;application/octet-stream\r\n\r\nThis is my fax\r\n"
        b"-------325343636\r\n"
        b'Content-Disposition:form-data; name="request";\r\n{\n"recipients":["7778888"]\n}\r\n'
        b"------325343636\r\n"
    )
    r = post_raw(
        api, "/uapi/faxes/@me/0003*210", raw, "multipart/form-data; boundary=------325343636"
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "request_invalid"
    assert "boundary" in r.json()["error"]["message"] or "multipart" in r.json()["error"]["message"]
    assert api.counts() == (0, 0, 0, 0)


def test_percent_encoded_path(api: Api) -> None:
    r = api.send("alice", "%40me/0003%2A210")
    assert r.status_code == 200, r.text


def test_user_aliases_and_short_extension(api: Api) -> None:
    for path in ("@me/0003*210", "@viewer/210", "@owner/0003*210", "alice/210", "@owner/210"):
        r = api.send("alice", path)
        assert r.status_code == 200, (path, r.text)


def test_self_and_malformed_extension(api: Api) -> None:
    for ext in ("@self", "abc", "0003*", "*210"):
        r = api.send("alice", f"@me/{ext}")
        assert r.status_code == 400, (ext, r.text)
        assert r.json()["error"]["code"] == "extension_invalid"


def test_fax_not_enabled(api: Api) -> None:
    r = api.send("alice", "@me/0003*212")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "fx_extension_not_enabled"


def test_empty_text_is_204_and_stores_nothing(api: Api) -> None:
    r = api.send("alice", "@me/210", files=[("blank.txt", b"  \n\t\r\n\x0c")])
    assert r.status_code == 204
    assert r.content == b""
    assert api.counts() == (0, 0, 0, 0)


def test_recipient_errors(api: Api) -> None:
    cases: list[object] = [[], ["12"], ["abc"], ["+1-555"], [7778888], ["1" * 21], ["1"] * 6]
    for recipients in cases:
        r = api.send("alice", "@me/210", recipients=recipients)  # type: ignore[arg-type]
        assert r.status_code == 400, (recipients, r.text)
        assert r.json()["error"]["code"] == "fx_recipients_invalid", recipients
    assert api.counts() == (0, 0, 0, 0)


def test_missing_request_part_or_recipients(api: Api) -> None:
    files = [("files", ("a.txt", b"hello", "text/plain"))]
    r = api.client.post("/uapi/faxes/@me/210", files=files, headers=api.auth("alice"))
    assert r.json()["error"]["code"] == "fx_recipients_invalid"
    r = api.client.post(
        "/uapi/faxes/@me/210",
        files=[*files, ("request", (None, json.dumps({"to": ["7778888"]})))],
        headers=api.auth("alice"),
    )
    assert r.json()["error"]["code"] == "fx_recipients_invalid"
    r = api.client.post(
        "/uapi/faxes/@me/210",
        files=[*files, ("request", (None, "{not json"))],
        headers=api.auth("alice"),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "request_invalid")


def test_no_files_part(api: Api) -> None:
    r = api.send("alice", "@me/210", files=[])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "fx_file_invalid"


def test_files_part_without_filename_is_accepted(api: Api) -> None:
    r = api.send("alice", "@me/210", files=[(None, b"A fax without a file name\n")])
    assert r.status_code == 200, r.text


def test_recipients_resolve_extensions_and_phones(api: Api) -> None:
    r = api.send("alice", "@me/210", recipients=["211", "0004*210", "+15550001111", "211"])
    assert r.status_code == 200, r.text
    fax = api.client.get(f"/uapi/faxes/@me/210/{r.json()['id']}", headers=api.auth("alice"))
    deliveries = fax.json()["deliveries"]
    assert [(d["recipient"], d.get("destination")) for d in deliveries] == [
        ("211", "0003*211"),
        ("0004*210", None),
        ("+15550001111", None),
    ]


def test_invalid_file_names_the_file(api: Api) -> None:
    png = io.BytesIO()
    Image.new("RGB", (10, 10)).save(png, "PNG")
    cut_png = png.getvalue()[:-20]
    for name, data in [("picture.png", cut_png), ("broken.pdf", b"%PDF-1.4\n%trunc")]:
        r = api.send("alice", "@me/210", files=[("ok.txt", b"fine"), (name, data)])
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "fx_file_invalid"
        assert name in r.json()["error"]["message"]
    assert api.counts() == (0, 0, 0, 0)


def test_max_files(make_api: object) -> None:
    api = make_api(max_files=2)  # type: ignore[operator]
    r = api.send("alice", "@me/210", files=[("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "fx_max_files_reached"
    r = api.send("alice", "@me/210", files=[("a.txt", b"a"), ("b.txt", b"b")])
    assert r.status_code == 200


def test_max_recipients_from_settings(make_api: object) -> None:
    api = make_api(max_recipients=2)  # type: ignore[operator]
    r = api.send("alice", "@me/210", recipients=["7778881", "7778882", "7778883"])
    assert r.json()["error"]["code"] == "fx_recipients_invalid"
    assert "at most 2" in r.json()["error"]["message"]


def test_too_large(make_api: object) -> None:
    api = make_api(max_upload_bytes=4096)  # type: ignore[operator]
    r = api.send("alice", "@me/210", files=[("big.txt", b"x" * 5000)])
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"

    def chunks():  # type: ignore[no-untyped-def]
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\n'
        for _ in range(10):
            yield b"y" * 1000

    r = api.client.post(
        "/uapi/faxes/@me/210",
        content=chunks(),
        headers={**api.auth("alice"), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 413
    assert api.counts() == (0, 0, 0, 0)


def test_page_limit(make_api: object) -> None:
    api = make_api(max_pages=2)  # type: ignore[operator]
    r = api.send("alice", "@me/210", files=[("long.txt", b"page\x0cpage\x0cpage")])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "fx_file_invalid"
    assert "long.txt" in r.json()["error"]["message"]


def test_malformed_bodies(api: Api) -> None:
    cases = [
        (b"hello", "text/plain"),
        (b"hello", "multipart/form-data"),
        (
            b'--x\r\nContent-Disposition: form-data; name="files"\r\n\r\nabc',
            "multipart/form-data; boundary=x",
        ),
        (b"--x\r\nX-Nothing: 1\r\n\r\nabc\r\n--x--\r\n", "multipart/form-data; boundary=x"),
    ]
    for body, ctype in cases:
        r = post_raw(api, "/uapi/faxes/@me/210", body, ctype)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] == "request_invalid", (body, r.json())
    assert api.counts() == (0, 0, 0, 0)


def test_internal_error_is_500_without_trace_and_stores_nothing(api: Api) -> None:
    # A real fault of ours while storing: the documents folder replaced by a file (SQLite),
    # the table of blob chunks gone (PostgreSQL).
    if isinstance(api.state.files, FileStore):
        root = api.state.files.root
        shutil.rmtree(root)
        root.write_text("not a directory")
    else:
        with api.state.sessions() as s:
            s.execute(text("DROP TABLE blob_chunks"))
            s.commit()
    r = api.send("alice", "@me/210")
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["code"] == "internal_server_error"
    assert "request id" in error["message"]
    assert "Traceback" not in r.text
    with api.state.sessions() as s:
        from faxline.store.models import Fax

        assert s.query(Fax).count() == 0


def test_jpeg_without_image_data_is_refused(api: Api) -> None:
    from tests.documents.documents_factory import jpeg_without_scan_data

    hollow = jpeg_without_scan_data(8000, 8000)
    r = api.send("alice", "@me/210", files=[("ok.txt", b"fine"), ("hollow.jpg", hollow)])
    assert (r.status_code, r.json()["error"]["code"]) == (400, "fx_file_invalid"), r.text
    assert r.json()["error"]["message"].startswith("hollow.jpg: the image is corrupt")
    assert api.counts() == (0, 0, 0, 0)


@pytest.mark.slow
def test_web_page_and_png_show_their_detected_type(api: Api) -> None:
    """An HTML page (through LibreOffice) and a PNG named .pdf: the types come from content."""
    png = io.BytesIO()
    Image.new("L", (100, 100), 128).save(png, "PNG")
    page = b"<!DOCTYPE html><html><body><h1>Invoice</h1><p>Total: 12</p></body></html>"
    r = api.send("alice", "@me/210", files=[("invoice.html", page), ("scan.pdf", png.getvalue())])
    assert r.status_code == 200, r.text
    view = api.client.get(f"/uapi/faxes/@me/210/{r.json()['id']}", headers=api.auth("alice"))
    assert view.json()["pages"] == 2
    assert [(d["name"], d["type"]) for d in view.json()["documents"]] == [
        ("invoice.html", "html"),
        ("scan.pdf", "png"),
    ]
