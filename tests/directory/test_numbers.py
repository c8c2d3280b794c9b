"""Number formats (property-based)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faxline.directory.numbers import (
    ExtensionRef,
    NumberError,
    is_phone_number,
    parse_extension,
    split_full,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=10)


@given(digits, digits)
def test_full_form_round_trips(org: str, ext: str) -> None:
    ref = parse_extension(f"{org}*{ext}")
    assert ref == ExtensionRef(short=ext, organization=org)
    assert str(ref) == f"{org}*{ext}"
    assert split_full(str(ref)) == (org, ext)


@given(digits)
def test_short_form(ext: str) -> None:
    assert parse_extension(ext) == ExtensionRef(short=ext)


@given(st.text(max_size=30))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        ref = parse_extension(text)
    except NumberError:
        return
    assert str(ref) == text


@pytest.mark.parametrize("text", ["@self", "", "*1", "1*", "1**2", "+210", "21 0", "٣٣"])
def test_rejected_extensions(text: str) -> None:
    with pytest.raises(NumberError):
        parse_extension(text)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("7778888", True),
        ("+15550100", True),
        ("123", True),
        ("12", False),
        ("1" * 20, True),
        ("1" * 21, False),
        ("++1234", False),
        ("1234+", False),
        ("555-0100", False),
        ("", False),
    ],
)
def test_phone_numbers(text: str, ok: bool) -> None:
    assert is_phone_number(text) is ok
