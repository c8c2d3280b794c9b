from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pytest
from documents_factory import jpeg
from PIL import Image

from faxline.documents.command import add_convert_parser, convert_command
from faxline.documents.faxtiff import check_fax_tiff


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="faxline")
    add_convert_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["convert", *argv])


def test_convert_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("page one\fpage two\n")
    (tmp_path / "b.jpg").write_bytes(jpeg())
    out = tmp_path / "out.tif"
    args = _parse(
        str(tmp_path / "a.txt"), str(tmp_path / "b.jpg"), "-o", str(out), "--resolution", "standard"
    )
    assert convert_command(args) == 0
    assert "3 pages" in capsys.readouterr().out
    info = check_fax_tiff(out)
    assert info.pages == 3 and info.page_info[0].y_dpi == 98


def test_convert_command_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG with nothing in it
    assert convert_command(_parse(str(tmp_path / "x.png"), "-o", str(tmp_path / "o.tif"))) == 1
    assert capsys.readouterr().err.startswith("x.png: the image is corrupt")
    assert not (tmp_path / "o.tif").exists()


def test_convert_command_as_a_process(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    out = tmp_path / "out.tif"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "faxline.documents.command",
            str(tmp_path / "a.txt"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert check_fax_tiff(out).pages == 1


def test_convert_command_shows_a_clean_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file named with a newline and an escape sequence is named without them."""
    bad = tmp_path / "evil\n\x1b[31mname.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert convert_command(_parse(str(bad), "-o", str(tmp_path / "o.tif"))) == 1
    assert capsys.readouterr().err.startswith("evil [31mname.png: the image is corrupt")


@pytest.mark.slow
def test_convert_command_takes_office_files_and_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "letter.rtf").write_bytes(b"{\\rtf1\\ansi Dear customer,\\par Thank you.}")
    png = io.BytesIO()
    Image.new("L", (200, 100), 0).save(png, "PNG")
    (tmp_path / "scan.png").write_bytes(png.getvalue())
    out = tmp_path / "out.tif"
    args = _parse(str(tmp_path / "letter.rtf"), str(tmp_path / "scan.png"), "-o", str(out))
    assert convert_command(args) == 0
    assert "2 pages" in capsys.readouterr().out
    assert check_fax_tiff(out).pages == 2
