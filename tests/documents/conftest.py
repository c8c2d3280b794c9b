"""Fixtures of the documents tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from documents_factory import image_pdf, text_pdf

from faxline.documents.office import OfficePool


@pytest.fixture(scope="session")
def a4_text_pdf() -> bytes:
    return text_pdf(3)


@pytest.fixture(scope="session")
def letter_image_pdf() -> bytes:
    return image_pdf(2)


@pytest.fixture(scope="session")
def office() -> Iterator[OfficePool]:
    """One warm LibreOffice instance for the whole session (it takes seconds to start)."""
    with OfficePool(1) as pool:
        pool.warm()
        yield pool
