"""Values that go in and out of document conversion."""

from __future__ import annotations

import enum
from dataclasses import dataclass

FAX_WIDTH = 1728
"""Pixels across a fax page (215 mm at 204 dpi)."""
X_DPI = 204


class Resolution(enum.Enum):
    """Vertical fax resolution: fine is 196 lines per inch, standard 98."""

    FINE = "fine"
    STANDARD = "standard"

    @property
    def y_dpi(self) -> int:
        return 196 if self is Resolution.FINE else 98


@dataclass(frozen=True)
class ConversionLimits:
    """Bounds on what one conversion may cost; they come from settings, never globals."""

    max_pages: int = 200
    max_pixels: int = 64_000_000
    timeout_s: float = 60
    memory_bytes: int = 1024**3


@dataclass(frozen=True)
class InputFile:
    """An uploaded document; ``filename`` may be None (then it is called "file N")."""

    filename: str | None
    data: bytes


@dataclass(frozen=True)
class FaxDocument:
    """The result: ``tiff`` is a multi-page fax TIFF, or None when ``pages`` is 0."""

    pages: int
    tiff: bytes | None
