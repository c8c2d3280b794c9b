from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from documents_factory import g4_white, raw_tiff
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from faxline.documents import DocumentError, Resolution
from faxline.documents.faxtiff import (
    check_fax_tiff,
    coarser_copy,
    read_fax_tiff,
    write_fax_tiff,
)
from faxline.documents.tiffstruct import read_frames


def _pages() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    first = np.zeros((2292, 1728), dtype=np.bool_)
    first[100:140, 100:1600] = True
    return [first, rng.random((300, 1728)) < 0.3]


def test_round_trip_and_tags(tmp_path: Path) -> None:
    pages = _pages()
    data = write_fax_tiff(pages, Resolution.FINE)
    assert [np.array_equal(a, b) for a, b in zip(pages, read_fax_tiff(data), strict=True)] == [
        True,
        True,
    ]
    path = tmp_path / "fax.tif"
    path.write_bytes(data)
    with Image.open(path) as image:
        assert image.n_frames == 2
        for number in range(2):
            image.seek(number)
            tags = image.tag_v2
            assert tags[256] == 1728
            assert tags[259] == 4  # G4
            assert tags[262] == 0  # min-is-white
            assert tags[266] == 1
            assert tags[278] == tags[257]  # one strip per page
            assert len(tags[273]) == 1
            assert tags[282] == 204 and tags[283] == 196 and tags[296] == 2
            assert tags[297] == (number, 2)
            assert tags[293] == 0
            assert 322 not in tags  # no tiles
    info = check_fax_tiff(path)
    assert info.pages == 2
    assert info.page_info[0] == (1728, 2292, 204.0, 196.0)
    result = subprocess.run(["tiffinfo", "-D", str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and "rror" not in result.stderr


def test_standard_resolution(tmp_path: Path) -> None:
    path = tmp_path / "fax.tif"
    path.write_bytes(write_fax_tiff([np.zeros((1146, 1728), np.uint8)], Resolution.STANDARD))
    assert check_fax_tiff(path).page_info[0].y_dpi == 98


def test_rejects_wrong_width() -> None:
    with pytest.raises(ValueError):
        write_fax_tiff([np.zeros((10, 1000), np.bool_)], Resolution.FINE)


def test_check_rejects_tiled(tmp_path: Path) -> None:
    good = tmp_path / "good.tif"
    good.write_bytes(write_fax_tiff(_pages(), Resolution.FINE))
    tiled = tmp_path / "tiled.tif"
    subprocess.run(["tiffcp", "-t", "-c", "g4", str(good), str(tiled)], check=True)
    with pytest.raises(DocumentError, match=r"^tiled\.tif: page 1: the page is tiled"):
        check_fax_tiff(tiled)


def test_check_rejects_missing_resolution_and_width(tmp_path: Path) -> None:
    no_res = tmp_path / "nores.tif"
    no_res.write_bytes(raw_tiff([(1728, 16, 4, g4_white(1728, 16))]))
    with pytest.raises(DocumentError, match="no resolution tags"):
        check_fax_tiff(no_res)
    narrow = tmp_path / "narrow.tif"
    narrow.write_bytes(raw_tiff([(1000, 16, 4, g4_white(1000, 16))]))
    with pytest.raises(DocumentError, match="1000 pixels wide"):
        check_fax_tiff(narrow)


def test_check_rejects_photo_and_garbage(tmp_path: Path) -> None:
    rgb = tmp_path / "rgb.tif"
    Image.new("RGB", (1728, 20)).save(rgb, dpi=(204, 196))
    with pytest.raises(DocumentError, match="not bilevel"):
        check_fax_tiff(rgb)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"II*\x00\xff\xff\xff\x00")
    with pytest.raises(DocumentError, match=r"^junk\.tif: "):
        check_fax_tiff(junk)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        hnp.arrays(np.bool_, st.tuples(st.integers(1, 40), st.just(1728))), min_size=1, max_size=3
    ),
    st.sampled_from(list(Resolution)),
)
def test_round_trip_property(pages: list[np.ndarray], resolution: Resolution) -> None:
    back = read_fax_tiff(write_fax_tiff(pages, resolution))
    assert len(back) == len(pages)
    for a, b in zip(pages, back, strict=True):
        assert np.array_equal(a, b)


def test_coarser_copies_merge_row_pairs_down_to_standard() -> None:
    rng = np.random.default_rng(5)
    pages = [rng.random((402, 1728)) < 0.02, np.zeros((80, 1728), dtype=np.bool_)]
    data = write_fax_tiff(pages, Resolution.SUPERFINE)
    for expected in (Resolution.FINE, Resolution.STANDARD):
        step = coarser_copy(data)
        assert step is not None
        data, resolution = step
        assert resolution is expected
        assert {f.resolution() for f in read_frames(data)} == {(204.0, float(expected.y_dpi))}
        got = read_fax_tiff(data)
        for page, finer in zip(got, pages, strict=True):
            rows = finer.shape[0] // 2 * 2
            assert np.array_equal(page, finer[:rows].reshape(-1, 2, 1728).any(axis=1))
        pages = got
    # A page that is already standard has nothing coarser: the refusal then stands.
    assert coarser_copy(data) is None


def test_pages_of_mixed_resolutions_have_no_coarser_copy(tmp_path: Path) -> None:
    page = np.zeros((20, 1728), np.bool_)
    (tmp_path / "fine.tif").write_bytes(write_fax_tiff([page], Resolution.FINE))
    (tmp_path / "std.tif").write_bytes(write_fax_tiff([page], Resolution.STANDARD))
    names = ["tiffcp", "fine.tif", "std.tif", "mixed.tif"]
    subprocess.run(names, cwd=tmp_path, check=True)
    mixed = (tmp_path / "mixed.tif").read_bytes()
    assert [f.resolution() for f in read_frames(mixed)] == [(204.0, 196.0), (204.0, 98.0)]
    assert coarser_copy(mixed) is None
