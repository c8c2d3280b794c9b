"""Validation of a TIFF before SpanDSP transmits it.

SpanDSP 0.0.6 "sends" a tiled TIFF, or one without resolution tags, as garbage instead
of refusing it, so every document is checked before a sending session is built. The
check itself belongs to :mod:`faxline.documents.faxtiff`; this module translates its
verdict into the fax layer's :class:`~faxline.fax.errors.FaxDocumentError`.
"""

from __future__ import annotations

import os

from faxline.documents.errors import DocumentError
from faxline.documents.faxtiff import check_fax_tiff
from faxline.fax.errors import FaxDocumentError


def check_document(path: str | os.PathLike[str]) -> None:
    """Raise :class:`FaxDocumentError` unless ``path`` is a TIFF SpanDSP can send right."""
    try:
        check_fax_tiff(path)
    except DocumentError as exc:
        raise FaxDocumentError(str(exc)) from exc
