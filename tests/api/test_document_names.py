"""Filenames with NUL, newlines or too many characters are cleaned when stored and shown."""

from __future__ import annotations

import json

from tests.api.conftest import Api


def _multipart(files: list[tuple[bytes, bytes]], recipients: list[str]) -> tuple[bytes, str]:
    """A body written by hand: httpx would percent-encode the control characters that
    other clients (curl, browsers' scripts) send raw."""
    boundary = b"faxline-test-boundary"
    body = b""
    for name, data in files:
        body += (
            b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"files\"; filename=\""
            + name + b"\"\r\nContent-Type: text/plain\r\n\r\n" + data + b"\r\n"
        )  # fmt: skip
    body += (
        b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n"
        + json.dumps({"recipients": recipients}).encode() + b"\r\n--" + boundary + b"--\r\n"
    )  # fmt: skip
    return body, f"multipart/form-data; boundary={boundary.decode()}"


def test_control_characters_and_long_names_are_cleaned(api: Api) -> None:
    long_name = b"x" * 300 + b".txt"
    body, content_type = _multipart(
        [(b"C:\\scans\\fax\x00one\n.txt", b"first"), (long_name, b"second"), (b"\x00\x07", b"3")],
        ["7778888"],
    )
    r = api.client.post(
        "/uapi/faxes/@me/210",
        content=body,
        headers={**api.auth("alice"), "Content-Type": content_type},
    )
    assert r.status_code == 200, r.text
    fax = r.json()["id"]
    r = api.client.get(f"/uapi/faxes/@me/210/{fax}", headers=api.auth("alice"))
    assert r.status_code == 200, r.text
    names = [d["name"] for d in r.json()["documents"]]
    assert names == ["faxone .txt", "x" * 251 + ".txt", "document-3"]
