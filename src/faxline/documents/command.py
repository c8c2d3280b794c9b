"""``faxline convert FILE... -o OUT.tif [--resolution superfine|fine|standard]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faxline.documents.errors import ConverterSetupError, DocumentError
from faxline.documents.filenames import clean_filename
from faxline.documents.model import InputFile, Resolution


def add_convert_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``convert`` command to faxline's command line."""
    parser = subparsers.add_parser(
        "convert",
        help="convert documents (pdf, tiff, images, txt, html, Office) into one fax TIFF",
        description="Convert documents (pdf, tiff, jpeg, png, gif, bmp, webp, txt, html, rtf, "
        "docx, doc, odt, xlsx, xls, ods, pptx, ppt, odp; types are found from the content) "
        "into one multi-page fax TIFF (1728 pixels wide, G4), as the server does for an "
        "upload. Office files and web pages go through a headless LibreOffice.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", type=Path, help="documents, in order")
    parser.add_argument("-o", "--output", required=True, type=Path, help="the fax TIFF to write")
    parser.add_argument(
        "--resolution",
        choices=[r.value for r in Resolution],
        default=Resolution.FINE.value,
        help="superfine: 391 lines per inch; fine: 196 (default); standard: 98",
    )
    parser.set_defaults(handler=convert_command)


def convert_command(args: argparse.Namespace) -> int:
    """Run ``faxline convert``; prints the pages written, or the error (exit status 1)."""
    from faxline.documents.convert import convert_documents  # heavy: only when converting

    files: list[InputFile] = []
    for path in args.files:
        try:
            name = clean_filename(path.name, len(files))  # shown in messages
            files.append(InputFile(name, path.read_bytes()))
        except OSError as exc:
            print(f"{path}: {exc.strerror}", file=sys.stderr)
            return 1
    try:
        document = convert_documents(files, resolution=Resolution(args.resolution))
    except (DocumentError, ConverterSetupError) as exc:
        print(exc, file=sys.stderr)
        return 1
    if document.tiff is None:
        print("0 pages: the documents hold nothing to send; no file written")
        return 0
    args.output.write_bytes(document.tiff)
    print(f"{document.pages} pages written to {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the convert command alone (``python -m faxline.documents.command``)."""
    parser = argparse.ArgumentParser(prog="faxline")
    add_convert_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["convert", *(sys.argv[1:] if argv is None else argv)])
    return convert_command(args)


if __name__ == "__main__":
    sys.exit(main())
