"""Documents: uploaded pdf, tiff, jpeg and text files become one multi-page fax TIFF.

``convert_documents`` converts in-process (CLI, tests); ``ConverterPool`` converts in
bounded worker processes for the server. Both raise ``DocumentError`` naming the file.
"""

from typing import TYPE_CHECKING, Any

from faxline.documents.errors import ConverterSetupError, DocumentError
from faxline.documents.model import ConversionLimits, FaxDocument, InputFile, Resolution
from faxline.documents.sniff import sniff

if TYPE_CHECKING:
    from faxline.documents.convert import convert_documents
    from faxline.documents.pool import ConverterPool


def __getattr__(name: str) -> Any:
    # The converters (numpy, pdfium, Pillow, asyncio) are imported on first use, so that
    # importing the light names here (errors, values, sniff) costs nothing.
    if name == "convert_documents":
        from faxline.documents.convert import convert_documents

        return convert_documents
    if name == "ConverterPool":
        from faxline.documents.pool import ConverterPool

        return ConverterPool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConversionLimits",
    "ConverterPool",
    "ConverterSetupError",
    "DocumentError",
    "FaxDocument",
    "InputFile",
    "Resolution",
    "convert_documents",
    "sniff",
]
