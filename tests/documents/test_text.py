from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from faxline.documents import ConverterSetupError, InputFile, Resolution, convert_documents
from faxline.documents.faxtiff import read_fax_tiff
from faxline.documents.text import COLUMNS, LINES_PER_PAGE, layout_text, render_pages


def test_wrapping_tabs_and_controls() -> None:
    long = "word " * 40
    (page,) = layout_text(long + "\n\tindented\x07bell\n")
    assert all(len(line) <= COLUMNS for line in page)
    assert page[-1] == "        indentedbell"
    assert "".join(page).replace(" ", "") == long.replace(" ", "") + "indentedbell"
    (page,) = layout_text("x" * 200)
    assert page == ["x" * 80, "x" * 80, "x" * 40]


def test_form_feeds_and_blank_documents() -> None:
    assert layout_text("") == []
    assert layout_text(" \n\t\r\n\f\f  \n") == []
    assert len(layout_text("one\ftwo")) == 2
    assert len(layout_text("one\f")) == 1  # a trailing form feed adds no page
    assert len(layout_text("one\f\f \n")) == 1
    assert len(layout_text("one\f\ftwo")) == 3  # a blank page in the middle is kept
    assert len(layout_text("\n".join(["line"] * (LINES_PER_PAGE + 1)))) == 2


@st.composite
def form_feed_documents(draw: st.DrawFn) -> tuple[str, int]:
    sections = draw(st.lists(st.lists(st.sampled_from(["", " ", "abc", "é ü €"]), max_size=5)))
    text = "\f".join("\n".join(lines) for lines in sections)
    printable = [any(line.strip() for line in lines) for lines in sections]
    if not any(printable):
        return text, 0
    last = max(i for i, p in enumerate(printable) if p)
    return text, last + 1


@given(form_feed_documents())
def test_page_count_of_form_feed_structures(case: tuple[str, int]) -> None:
    text, pages = case
    assert len(layout_text(text)) == pages


@given(st.text())
def test_layout_never_raises(text: str) -> None:
    for page in layout_text(text):
        assert len(page) <= LINES_PER_PAGE
        assert all(len(line) <= COLUMNS for line in page)


@settings(max_examples=15, deadline=None)
@given(st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=300))
def test_text_conversion_never_raises(text: str) -> None:
    assume(not text.lstrip(" \t\r\n\f").startswith("%PDF-"))  # that is a (broken) PDF
    document = convert_documents([InputFile("t.txt", text.encode())])
    assert document.pages == len(layout_text(text.removeprefix("\ufeff")))


def test_utf8_and_latin1_render() -> None:
    utf8 = convert_documents([InputFile("u.txt", "Grüße, café, Ærø, ñ\f€".encode())])
    latin = convert_documents([InputFile("l.txt", "Grüße, café, Ærø, ñ".encode("latin-1"))])
    assert utf8.pages == 2 and latin.pages == 1
    assert utf8.tiff is not None and latin.tiff is not None
    first_utf8, first_latin = read_fax_tiff(utf8.tiff)[0], read_fax_tiff(latin.tiff)[0]
    assert first_utf8.shape == (2292, 1728)
    # the same accented words come out as the same pixels, whatever the encoding
    assert (first_utf8[:200] == first_latin[:200]).all()
    assert first_utf8[:200].any()


def test_a_missing_font_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(ConverterSetupError, match="fonts-dejavu-core"):
        next(
            render_pages(
                [["hello"]], Resolution.FINE, font_path=str(tmp_path / "DejaVuSansMono.ttf")
            )
        )


def test_glyphs_are_distinct_and_inside_their_cells() -> None:
    alphabet = "AaÉéEeÑñÜü0O1lI|€ß"
    (packed,) = render_pages([[alphabet]], Resolution.FINE)
    page = read_fax_tiff_page(packed)
    cells = [page[109 : 109 + 34, 144 + i * 18 : 144 + (i + 1) * 18] for i in range(len(alphabet))]
    assert all(cell.any() for cell in cells)
    assert len({cell.tobytes() for cell in cells}) == len(alphabet)  # every glyph differs
    ink_rows = np.flatnonzero(page.any(axis=1))
    assert ink_rows.min() >= 109 and ink_rows.max() < 109 + 34  # one line, in its row
    assert not page[:, :144].any() and not page[:, 144 + 18 * len(alphabet) :].any()


def test_standard_resolution_keeps_every_other_row() -> None:
    lines = [["The quick brown fox", "", "jumps over the lazy dog"]]
    (fine,) = render_pages(lines, Resolution.FINE)
    (standard,) = render_pages(lines, Resolution.STANDARD)
    assert fine.shape == (2292, 216) and standard.shape == (1146, 216)
    assert np.array_equal(standard, fine[::2])


def read_fax_tiff_page(packed: np.ndarray) -> np.ndarray:
    return np.unpackbits(packed, axis=1).astype(bool)
