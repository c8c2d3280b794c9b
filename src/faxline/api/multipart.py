"""Read a multipart/form-data body into its parts, with limits and precise errors.

Starlette's form parser turns a part without a filename into text and drops malformed
structure silently; Create Faxes needs the raw bytes of every part and a clear 400 for a
body that is not what its header says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header


class BodyError(ValueError):
    """The body is not well-formed multipart/form-data."""


class BodyTooLarge(ValueError):
    """The body is larger than the configured limit."""


@dataclass
class Part:
    name: str | None = None
    filename: str | None = None
    content_type: str | None = None
    chunks: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a `multipart/form-data` Content-Type, or BodyError."""
    if not content_type:
        raise BodyError("the request has no Content-Type; expected multipart/form-data")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise BodyError(f"Content-Type is {kind.decode('latin-1')!r}; expected multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise BodyError("the multipart Content-Type has no boundary parameter")
    if len(boundary) > 200:
        raise BodyError("the multipart boundary is longer than 200 characters")
    return boundary


async def read_parts(
    content_type: str | None, body: AsyncIterator[bytes], max_bytes: int, max_parts: int
) -> list[Part]:
    """Parse the body; BodyTooLarge past `max_bytes`, BodyError for malformed input."""
    boundary = boundary_of(content_type)
    parts: list[Part] = []
    current: list[Part] = []
    header_field = bytearray()
    header_value = bytearray()
    headers: dict[bytes, bytes] = {}
    ended = False

    def on_part_begin() -> None:
        if len(parts) >= max_parts:
            raise BodyError(f"the body has more than {max_parts} parts")
        headers.clear()
        current[:] = [Part()]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current[0].chunks.append(data[start:end])

    def on_part_end() -> None:
        parts.append(current[0])

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).strip().lower()] = bytes(header_value).strip()
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        part = current[0]
        disposition = headers.get(b"content-disposition")
        if disposition is None:
            raise BodyError(f"part {len(parts) + 1} has no Content-Disposition header")
        kind, params = parse_options_header(disposition)
        if kind != b"form-data":
            raise BodyError(f"part {len(parts) + 1} is not form-data")
        name = params.get(b"name")
        part.name = name.decode("utf-8", "replace") if name is not None else None
        filename = params.get(b"filename")
        part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        ctype = headers.get(b"content-type")
        part.content_type = ctype.decode("latin-1") if ctype is not None else None

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_end": on_end,
        },
    )
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > max_bytes:
                raise BodyTooLarge(f"the request body is larger than {max_bytes} bytes")
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as e:
        raise BodyError(f"malformed multipart body: {e}") from None
    if not parts:
        raise BodyError(
            "the body holds no part delimited by the boundary given in Content-Type "
            f"({boundary.decode('latin-1')!r})"
        )
    if not ended:
        raise BodyError("the multipart body is truncated: the closing boundary is missing")
    return parts
