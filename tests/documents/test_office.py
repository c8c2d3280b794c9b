"""Office documents and web pages through a real headless LibreOffice (slow: it is real).

The documents are written at test time by LibreOffice itself (from HTML, CSV or a minimal
presentation), then uploaded as docx/odt/xlsx/pptx/odp; their pages must be exactly those
of LibreOffice's own PDF of the same document sent through the PDF path.
"""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faxline.documents import DocumentError, InputFile, convert_documents, sniff
from faxline.documents.faxtiff import read_fax_tiff
from faxline.documents.office import OfficePool, OfficeSettings
from faxline.testing.waiting import eventually

pytestmark = pytest.mark.slow

WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod".split()  # noqa: SIM905


def _html(pages: int, extra: str = "") -> bytes:
    body = "".join(
        f'<h1 style="page-break-before: always">Page {n + 1}</h1><p>{" ".join(WORDS * 20)}</p>'
        if n
        else f"<h1>Page 1</h1><p>{' '.join(WORDS * 20)}</p>"
        for n in range(pages)
    )
    return f"<!DOCTYPE html><html><head>{extra}</head><body>{body}</body></html>".encode()


def _slides(slides: int) -> bytes:
    """A minimal presentation (content.xml only) that LibreOffice Impress reads and saves
    again as a complete .odp or .pptx."""
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
        'office:version="1.2"'
    )
    pages = "".join(
        f'<draw:page draw:name="s{n + 1}"><draw:frame svg:x="2cm" svg:y="2cm" '
        'svg:width="20cm" svg:height="10cm"><draw:text-box>'
        f"<text:p>Slide {n + 1}</text:p><text:p>{' '.join(WORDS * 3)}</text:p>"
        "</draw:text-box></draw:frame></draw:page>"
        for n in range(slides)
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns}>'
        f"<office:body><office:presentation>{pages}</office:presentation></office:body>"
        "</office:document-content>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        mimetype = "application/vnd.oasis.opendocument.presentation"
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        archive.writestr("META-INF/manifest.xml", _MANIFEST.format(mimetype=mimetype))
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
    'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
    '<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    "</manifest:manifest>"
)


def _same_pages(ours: bytes | None, reference: bytes | None) -> None:
    assert ours is not None and reference is not None
    got, want = read_fax_tiff(ours), read_fax_tiff(reference)
    assert len(got) == len(want)
    for page, expected in zip(got, want, strict=True):
        assert np.array_equal(page, expected)


@pytest.mark.parametrize(
    ("source", "kind", "export", "pages"),
    [
        ("html", "docx", "MS Word 2007 XML", 3),
        ("html", "odt", "writer8", 2),
        ("csv", "xlsx", "Calc MS Excel 2007 XML", 1),
        ("odp", "pptx", "Impress MS PowerPoint 2007 XML", 3),
        ("odp", "odp", "impress8", 2),
    ],
)
def test_office_file_pages_match_its_pdf(
    office: OfficePool, source: str, kind: str, export: str, pages: int
) -> None:
    if source == "html":
        data = _html(pages)
    elif source == "odp":
        data = _slides(pages)
    else:
        data = b"item,price\nnut,1\nbolt,2\n"
    document = office.submit(data, source, f"made.{source}", export).result()
    assert sniff(document, "misnamed.pdf") == kind  # by content, not by name
    fax = convert_documents([InputFile("misnamed.pdf", document)], office=office)
    assert fax.pages == pages
    pdf = office.submit(document, kind, "reference").result()
    _same_pages(fax.tiff, convert_documents([InputFile("reference.pdf", pdf)]).tiff)


def test_html_is_a_printed_page(office: OfficePool) -> None:
    fax = convert_documents([InputFile("invoice.html", _html(2))], office=office)
    assert fax.pages == 2
    (first, _) = read_fax_tiff(fax.tiff or b"")
    assert first.shape[1] == 1728 and first.any()


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A real socket on 127.0.0.1 that records every connection made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    seen: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                seen.append(conn.recv(200))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join()


def _no_connection_arrived(port: int, seen: list[bytes]) -> None:
    # One connection of our own: when it is recorded, any earlier one would be too (the
    # backlog is served in order), so "nothing before it" is a fact, not a timing guess.
    with socket.create_connection(("127.0.0.1", port)) as probe:
        probe.sendall(b"probe")
    eventually(lambda: len(seen) >= 1, 10, "the probe connection")
    assert seen == [b"probe"]


def test_linked_content_is_not_fetched(
    office: OfficePool, listener: tuple[int, list[bytes]]
) -> None:
    port, seen = listener
    base = f"http://127.0.0.1:{port}"
    links = (
        f'<link rel="stylesheet" href="{base}/style.css">'
        f"<style>@import url({base}/more.css); "
        f"@font-face {{ font-family: x; src: url({base}/font.ttf); }}</style>"
    )
    html = _html(1, links).replace(b"</body>", f'<img src="{base}/logo.png"></body>'.encode())
    docx = office.submit(html, "html", "made.html", "MS Word 2007 XML").result()
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        rels = archive.read("word/_rels/document.xml.rels").decode()
    assert f'Target="{base}/logo.png" TargetMode="External"' in rels
    fax = convert_documents(
        [InputFile("page.html", html), InputFile("linked.docx", docx)], office=office
    )
    assert fax.pages == 2
    _no_connection_arrived(port, seen)


def test_hung_instance_is_replaced() -> None:
    rows = "".join(f"<tr><td>{i}</td><td>{' '.join(WORDS)}</td></tr>" for i in range(30_000))
    endless = f"<!DOCTYPE html><html><body><table>{rows}</table></body></html>".encode()
    # The table takes LibreOffice well over a minute; the limit is 2 s.
    with OfficePool(1, OfficeSettings(timeout_s=2)) as pool:
        pool.warm()
        (before,) = pool.pids
        with pytest.raises(DocumentError, match=r"^huge\.html: the conversion took longer"):
            convert_documents([InputFile("huge.html", endless)], office=pool)
        assert pool.pids == []
        fax = convert_documents([InputFile("next.html", _html(1))], office=pool)
        assert fax.pages == 1
        (after,) = pool.pids
        assert after != before


def test_unreadable_office_file_names_the_file(office: OfficePool) -> None:
    broken = b"{\\rtf1" + bytes(range(256)) * 40
    with pytest.raises(DocumentError, match=r"^broken\.rtf: "):
        convert_documents([InputFile("broken.rtf", broken)], office=office)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_instances_die_with_the_server() -> None:
    """SIGKILL the process that owns the pool: its soffice.bin ends too."""
    server = textwrap.dedent(
        """
        import time
        from faxline.documents.office import OfficePool
        pool = OfficePool(1)
        pool.warm()
        print(pool.pids[0], flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen([sys.executable, "-c", server], stdout=subprocess.PIPE) as parent:
        assert parent.stdout is not None
        soffice = int(parent.stdout.readline())
        assert _alive(soffice)
        with open(f"/proc/{soffice}/cmdline", "rb") as f:
            assert b"soffice.bin" in f.read()
        parent.send_signal(signal.SIGKILL)
    eventually(lambda: not _alive(soffice), 30, "soffice.bin to end with its server")


def _profile_of(pid: int) -> Path:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = f.read().decode().split("\0")
    (url,) = [a.removeprefix("-env:UserInstallation=") for a in args if "UserInstallation" in a]
    return Path(url.removeprefix("file://"))


def _address_space_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        (line,) = [row for row in f if row.startswith("Max address space")]
    return int(line.split()[3])


def test_each_instance_has_a_fresh_profile_and_a_memory_limit() -> None:
    """soffice runs under the configured address-space limit with a profile of its own
    (macros off), which is deleted when the instance ends; a replacement gets a new one."""
    limit = 2560 * 1024**2
    with OfficePool(1, OfficeSettings(memory_bytes=limit)) as pool:
        pool.warm()
        (first,) = pool.pids
        profile = _profile_of(first)
        assert _address_space_limit(first) == limit
        settings = (profile / "user" / "registrymodifications.xcu").read_text()
        assert '"DisableMacrosExecution" oor:op="fuse"><value>true' in settings
        pool._instances[0].kill()  # what a timeout or crash does to the instance
        assert not profile.exists()
        fax = convert_documents([InputFile("next.html", _html(1))], office=pool)
        assert fax.pages == 1
        (second,) = pool.pids
        assert second != first and _profile_of(second) != profile
        replacement = _profile_of(second)
        assert replacement.exists()
    assert not replacement.exists()  # closing the pool deletes it too
