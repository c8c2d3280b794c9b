"""Cover templates: only the documented {field} placeholders, rendered as text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faxline.documents import InputFile, convert_documents
from faxline.documents.cover import (
    DEFAULT_TEMPLATE,
    FIELDS,
    CoverFields,
    TemplateError,
    check_template,
    render_cover,
)
from faxline.documents.faxtiff import read_fax_tiff

FIELDS_VALUES = CoverFields(
    organization="Acme", sender_name="Alice", sender_number="+15550100210",
    recipient_name="Bob", recipient_number="7778888", date="2026-11-26 12:00 UTC",
    pages=4, subject="Contract", notes="Line one\nLine two",
)  # fmt: skip


def test_default_layout_shows_every_field() -> None:
    text = render_cover(FIELDS_VALUES)
    for value in ("Acme", "Alice", "+15550100210", "Bob", "7778888", "2026-11-26 12:00 UTC",
                  "4 (including this cover page)", "Contract", "Line one\nLine two"):  # fmt: skip
        assert value in text
    check_template(DEFAULT_TEMPLATE)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{customer}", "unknown placeholder {customer}"),
        ("{date.year}", "unknown placeholder {date.year}"),
        ("{pages:>10}", "unknown placeholder {pages}"),
        ("{notes!r}", "unknown placeholder {notes}"),
        ("{", "unbalanced braces"),
        ("x" * 20_001, "longer than 20000 characters"),
    ],
)
def test_bad_templates(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason.replace("{", r"\{").replace("}", r"\}")):
        check_template(template)


@given(st.lists(st.one_of(st.sampled_from(FIELDS), st.text(max_size=20)), max_size=12))
def test_any_mix_of_fields_and_escaped_text_renders(pieces: list[str]) -> None:
    template = "".join(
        f"{{{p}}}" if p in FIELDS else p.replace("{", "{{").replace("}", "}}") for p in pieces
    )
    check_template(template)
    expected = "".join(str(getattr(FIELDS_VALUES, p)) if p in FIELDS else p for p in pieces)
    assert render_cover(FIELDS_VALUES, template) == expected


@given(st.text(max_size=200))
def test_a_template_that_passes_the_check_always_renders(template: str) -> None:
    try:
        check_template(template)
    except TemplateError:
        return
    assert isinstance(render_cover(FIELDS_VALUES, template), str)


def test_cover_is_one_page_before_the_documents() -> None:
    long_notes = "\n".join(f"note {i}" for i in range(200))  # far more than a page
    fax = convert_documents(
        [InputFile("a.txt", b"first\fsecond")], cover=lambda pages: f"{pages} pages\n{long_notes}"
    )
    assert fax.pages == 3
    cover, *_ = read_fax_tiff(fax.tiff or b"")
    alone = convert_documents([InputFile("c.txt", f"3 pages\n{long_notes}".encode())])
    assert alone.pages > 1  # the same text as a document runs over
    assert (cover == read_fax_tiff(alone.tiff or b"")[0]).all()
