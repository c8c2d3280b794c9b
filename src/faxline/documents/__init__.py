"""Documents: uploaded pdf, tiff, jpeg and text files become one multi-page fax TIFF.

``convert_documents`` converts in-process (CLI, tests); ``ConverterPool`` converts in
bounded worker processes for the server. Both raise ``DocumentError`` naming the file.
"""

from faxline.documents.convert import convert_documents
from faxline.documents.errors import ConverterSetupError, DocumentError
from faxline.documents.model import ConversionLimits, FaxDocument, InputFile, Resolution
from faxline.documents.pool import ConverterPool
from faxline.documents.sniff import sniff

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
