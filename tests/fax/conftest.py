"""Fixtures for the fax engine tests: fax pages with real content, and TIFFs made of them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from faxpages import Page, make_pages, set_long_tag

from faxline.documents import Resolution
from faxline.documents.faxtiff import write_fax_tiff


@pytest.fixture(scope="session")
def pages() -> list[Page]:
    """Three different fine-resolution pages."""
    return make_pages(3)


@pytest.fixture(scope="session")
def fine_tiff(pages: list[Page], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-page fine-resolution fax TIFF of :func:`pages`."""
    path = tmp_path_factory.mktemp("tiff") / "fine.tif"
    path.write_bytes(write_fax_tiff(pages, Resolution.FINE))
    return path


@pytest.fixture(scope="session")
def standard_tiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-page standard-resolution fax TIFF."""
    path = tmp_path_factory.mktemp("tiff") / "standard.tif"
    path.write_bytes(write_fax_tiff(make_pages(1, seed=7, rows=1100), Resolution.STANDARD))
    return path


@pytest.fixture
def bad_tiff(fine_tiff: Path, tmp_path: Path) -> Callable[[str], Path]:
    """Make a broken variant of :func:`fine_tiff`: ``tiled``, ``narrow`` or ``no-resolution``."""

    def make(kind: str) -> Path:
        path = tmp_path / f"{kind}.tif"
        if kind == "tiled":
            subprocess.run(
                ["tiffcp", "-t", "-w", "256", "-l", "256", str(fine_tiff), str(path)], check=True
            )
        elif kind == "narrow":
            path.write_bytes(set_long_tag(fine_tiff.read_bytes(), 256, 1700))
        elif kind == "no-resolution":
            path.write_bytes(fine_tiff.read_bytes())
            for directory in range(3):
                for tag in ("XResolution", "YResolution"):
                    subprocess.run(
                        ["tiffset", "-d", str(directory), "-u", tag, str(path)],
                        check=True,
                        capture_output=True,
                    )
        else:
            raise ValueError(kind)
        return path

    return make
