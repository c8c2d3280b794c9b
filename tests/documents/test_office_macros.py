"""A document whose Basic macro is bound to document-open must not run it through faxline.

The test can fail: the same document, opened by the same LibreOffice through the same
driver functions but with macros allowed (and as a visible document, since LibreOffice
fires no document events for a hidden one), does run the macro, which writes a marker
file and replaces the document's text.
"""

from __future__ import annotations

import subprocess
import uuid
import zipfile
from io import BytesIO
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from faxline.documents import InputFile, convert_documents
from faxline.documents.office import _DRIVER, OfficePool

pytestmark = pytest.mark.slow

_OPEN_EVENTS = (
    "dom:load",
    "office:load-finished",
    "office:view-created",
    "office:layout-finished",
    "office:save-to",
    "office:save-to-done",
    "office:prepare-unload",
    "office:unload",
    "office:create",
    "office:title-changed",
    "office:mode-changed",
    "office:storage-changed",
)
"""Events of opening, laying out, exporting and closing a document: whichever fires."""
_MACRO_URL = "vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document"


def macro_odt(marker: Path) -> bytes:
    """An .odt whose opening events run a Basic macro that writes ``marker`` and replaces
    the text "ORIGINAL TEXT" with "MACRO RAN" (the layout LibreOffice itself saves)."""
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:ooo="http://openoffice.org/2004/office" office:version="1.2"'  # ooo:script
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns}>'
        "<office:scripts><office:event-listeners>"
        + "".join(
            f'<script:event-listener script:language="ooo:script" script:event-name="{event}" '
            f'xlink:type="simple" xlink:href="{_MACRO_URL}"/>'
            for event in _OPEN_EVENTS
        )
        + "</office:event-listeners></office:scripts>"
        "<office:body><office:text><text:p>ORIGINAL TEXT</text:p></office:text></office:body>"
        "</office:document-content>"
    )
    module = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE script:module PUBLIC '
        '"-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">\n'
        '<script:module xmlns:script="http://openoffice.org/2000/script" '
        'script:name="Module1" script:language="StarBasic">Sub Main\n'
        f" Open &quot;{marker}&quot; For Output As #1\n Print #1, &quot;ran&quot;\n Close #1\n"
        " If ThisComponent.getText().getString() &lt;&gt; &quot;MACRO RAN&quot; Then\n"
        "  ThisComponent.getText().setString(&quot;MACRO RAN&quot;)\n End If\nEnd Sub\n"
        "</script:module>"
    )
    libraries = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE library:libraries PUBLIC '
        '"-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "libraries.dtd">\n<library:libraries '
        'xmlns:library="http://openoffice.org/2000/library" '
        'xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<library:library library:name="Standard" library:link="false"/></library:libraries>'
    )
    library = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE library:library PUBLIC '
        '"-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "library.dtd">\n<library:library '
        'xmlns:library="http://openoffice.org/2000/library" library:name="Standard" '
        'library:readonly="false" library:passwordprotected="false">'
        '<library:element library:name="Module1"/></library:library>'
    )
    parts = {
        "content.xml": content,
        "Basic/script-lc.xml": libraries,
        "Basic/Standard/script-lb.xml": library,
        "Basic/Standard/Module1.xml": module,
    }
    entries = "".join(
        f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="text/xml"/>'
        for name in parts
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        f"{entries}</manifest:manifest>"
    )
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        for name, text in parts.items():
            archive.writestr(name, text, zipfile.ZIP_DEFLATED)
    return out.getvalue()


# Runs under the Python that has uno; uses uno_driver's own launch and connect.
_PERMISSIVE = """
import sys, time
sys.path.insert(0, sys.argv[1])
import uno, uno_driver
soffice, profile, pipe, source, target = sys.argv[2:7]
def launch():
    return uno_driver._launch(soffice, profile, pipe, 0)
context, process = uno_driver._connect(pipe, time.monotonic() + 120, launch(), launch)
desktop = context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)
document = desktop.loadComponentFromURL(
    uno.systemPathToFileUrl(source), "_blank", 0,
    uno_driver._props(FilterName="writer8", MacroExecutionMode=4),  # ALWAYS_EXECUTE_NO_WARN
)
for _ in range(100):  # the OnLoad event is posted after the load returns
    if document.getText().getString() != "ORIGINAL TEXT":
        break
    time.sleep(0.05)
pdf = uno_driver._props(FilterName="writer_pdf_Export")
document.storeToURL(uno.systemPathToFileUrl(target), pdf)
document.close(True)
process.kill()
"""
_LOW_SECURITY = (
    '<?xml version="1.0" encoding="UTF-8"?><oor:items '
    'xmlns:oor="http://openoffice.org/2001/registry" '
    'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<item oor:path="/org.openoffice.Office.Common/Security/Scripting">'
    '<prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>0</value></prop></item>'
    "</oor:items>"
)


def _pdf_text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return "".join(page.get_textpage().get_text_range() for page in document).strip()
    finally:
        document.close()


def test_macros_run_when_allowed(tmp_path: Path, office: OfficePool) -> None:
    """The control: the document's macro is real and LibreOffice here can run it."""
    marker = tmp_path / "marker"
    source = tmp_path / "macro.odt"
    source.write_bytes(macro_odt(marker))
    (tmp_path / "profile" / "user").mkdir(parents=True)
    (tmp_path / "profile" / "user" / "registrymodifications.xcu").write_text(_LOW_SECURITY)
    target = tmp_path / "allowed.pdf"
    subprocess.run(
        [
            office.settings.python,
            "-c",
            _PERMISSIVE,
            str(_DRIVER.parent),
            office.settings.soffice,
            (tmp_path / "profile").as_uri(),
            f"faxline-test-{uuid.uuid4().hex}",
            str(source),
            str(target),
        ],
        check=True,
        timeout=180,
    )
    assert marker.read_text().strip() == "ran"
    assert _pdf_text(target.read_bytes()) == "MACRO RAN"


def test_macros_are_not_run_by_the_converter(tmp_path: Path, office: OfficePool) -> None:
    marker = tmp_path / "marker"
    document = macro_odt(marker)
    pdf = office.submit(document, "odt", "macro.odt").result()
    assert _pdf_text(pdf) == "ORIGINAL TEXT"
    fax = convert_documents([InputFile("macro.odt", document)], office=office)
    assert fax.pages == 1
    assert not marker.exists()
