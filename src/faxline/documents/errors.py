"""The error tree of the documents layer."""

from __future__ import annotations


class DocumentError(Exception):
    """A document cannot become fax pages; the message names the file.

    ``str(error)`` is ``"{filename}: {reason}"`` and is safe to show to the client.
    """

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason

    def __reduce__(self) -> tuple[type[DocumentError], tuple[str, str]]:
        return (type(self), (self.filename, self.reason))


class ConverterSetupError(RuntimeError):
    """The machine lacks something conversion needs (a fault of ours, not of the file)."""
