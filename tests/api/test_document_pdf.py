"""`GET .../document?format=pdf`: the stored G4 pages copied into a PDF while it is sent,
for sent and received faxes, in the memory of one page whatever the page count."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium

from faxline.documents import Resolution
from faxline.documents.faxtiff import write_fax_tiff
from faxline.store import faxes as fax_store
from faxline.store.models import Extension
from pdfrender import render_black
from tests.api.conftest import Api


def _pages(count: int) -> list[npt.NDArray[np.bool_]]:
    """Full fine pages (A4 long) with lines of "text" that differ from page to page."""
    pages = []
    for n in range(count):
        page = np.zeros((2292, 1728), dtype=np.bool_)
        for line in range(40):
            top = 100 + line * 52
            page[top : top + 24, 150 : 150 + 30 * ((n + line) % 40 + 5)] = True
        page[2200:2230, 100 + n : 200 + n] = True
        pages.append(page)
    return pages


def _store(api: Api, tiff: bytes, pages: int, *, incoming: bool) -> int:
    with api.state.sessions() as s:
        ext = s.query(Extension).filter_by(number="0003*210").one()
        if incoming:
            return fax_store.create_incoming(
                s, api.state.files, extension=ext, tiff=tiff, pages=pages, resolution="fine",
                remote_ident="+1 555 0100", remote_number="+15550100", now=api.clock(),
            ).id  # fmt: skip
        return fax_store.create_outgoing(
            s, api.state.files, extension_id=ext.id, user_id=ext.owner_id,
            recipients=[("7778888", "7778888")], documents=[], tiff=tiff, pages=pages,
            resolution="fine", now=api.clock(),
        ).id  # fmt: skip


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")


def test_pdf_of_received_fax_shows_its_pages(api: Api, tmp_path: Path) -> None:
    pages = _pages(3)
    fax = _store(api, write_fax_tiff(pages, Resolution.FINE), 3, incoming=True)
    r = api.client.get(f"/uapi/faxes/@me/210/{fax}/document?format=pdf", headers=api.auth("alice"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="fax-{fax}.pdf"'
    assert "content-length" not in r.headers  # streamed
    document = pdfium.PdfDocument(r.content)
    assert len(document) == 3
    for number, expected in enumerate(pages):
        assert np.array_equal(render_black(document[number], 1728, 2292), expected)
    document.close()
    out = tmp_path / "fax.pdf"
    out.write_bytes(r.content)
    gs = subprocess.run(
        ["gs", "-q", "-dPDFSTOPONERROR", "-o", "/dev/null", "-sDEVICE=nullpage", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert gs.returncode == 0 and not gs.stderr, gs.stderr


def test_pdf_of_200_pages_in_bounded_memory(api: Api) -> None:
    pages = _pages(200)
    tiff = write_fax_tiff(pages, Resolution.FINE)
    del pages
    fax = _store(api, tiff, 200, incoming=False)
    del tiff
    headers = api.auth("alice")
    # Peak RSS of this process from now on: writing 5 to clear_refs resets VmHWM.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    size = 0
    with api.client.stream(
        "GET", f"/uapi/faxes/@me/210/{fax}/document?format=pdf", headers=headers
    ) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            size += len(chunk)
            last = chunk
    added_mib = (_status_kib("VmHWM") - before) / 1024
    assert b"%%EOF" in last[-8:] and size > 200 * 1000
    print(f"200-page PDF download: {size} bytes, peak RSS added {added_mib:.1f} MiB")
    assert added_mib < 50, f"the download added {added_mib:.0f} MiB"
