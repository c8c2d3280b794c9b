"""Fixtures of the documents tests."""

from __future__ import annotations

import pytest
from documents_factory import image_pdf, text_pdf


@pytest.fixture(scope="session")
def a4_text_pdf() -> bytes:
    return text_pdf(3)


@pytest.fixture(scope="session")
def letter_image_pdf() -> bytes:
    return image_pdf(2)
