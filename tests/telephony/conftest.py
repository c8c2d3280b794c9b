"""Fixtures for the telephony tests: fax TIFFs with real content."""

from __future__ import annotations

from pathlib import Path

import pytest

from faxline.documents import Resolution
from faxline.documents.faxtiff import write_fax_tiff
from tests.fax.faxpages import Page, make_pages


@pytest.fixture(scope="session")
def three_pages() -> list[Page]:
    """Three different fine-resolution pages."""
    return make_pages(3)


@pytest.fixture(scope="session")
def one_page() -> list[Page]:
    """One short standard-resolution page (quick to send)."""
    return make_pages(1, seed=7, rows=1100)


@pytest.fixture(scope="session")
def three_page_tiff(three_pages: list[Page], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-page fine fax TIFF."""
    path = tmp_path_factory.mktemp("tiff") / "three.tif"
    path.write_bytes(write_fax_tiff(three_pages, Resolution.FINE))
    return path


@pytest.fixture(scope="session")
def one_page_tiff(one_page: list[Page], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-page standard fax TIFF."""
    path = tmp_path_factory.mktemp("tiff") / "one.tif"
    path.write_bytes(write_fax_tiff(one_page, Resolution.STANDARD))
    return path
