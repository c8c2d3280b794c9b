"""Values that go in and out of document conversion."""

from __future__ import annotations

import enum
from dataclasses import dataclass

FAX_WIDTH = 1728
"""Pixels across a fax page (215 mm at 204 dpi)."""
X_DPI = 204


class Resolution(enum.Enum):
    """Vertical fax resolution: superfine is 391 lines per inch, fine 196, standard 98."""

    SUPERFINE = "superfine"
    FINE = "fine"
    STANDARD = "standard"

    @property
    def y_dpi(self) -> int:
        return _Y_DPI[self]

    @property
    def coarser(self) -> Resolution | None:
        """The next resolution down (half the rows), None below standard."""
        return _COARSER[self]


_Y_DPI = {Resolution.SUPERFINE: 391, Resolution.FINE: 196, Resolution.STANDARD: 98}
_COARSER = {
    Resolution.SUPERFINE: Resolution.FINE,
    Resolution.FINE: Resolution.STANDARD,
    Resolution.STANDARD: None,
}


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
