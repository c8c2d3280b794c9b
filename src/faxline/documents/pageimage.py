"""Fax pages as images for people: one page of a fax TIFF, scaled for a screen, as PNG.

Runs in a converter worker (`ConverterPool.page_image`): decoding a fine page is ~4 MB of
pixels, which the event loop should not carry.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from faxline.documents.errors import DocumentError


@dataclass(frozen=True)
class PageImageJob:
    name: str  # for errors, like a conversion Job's
    path: str  # the fax TIFF
    index: int  # page, from 0
    width: int  # pixels across of the image wanted


def render_page_image(job: PageImageJob) -> bytes:
    """The page as a grayscale PNG `job.width` wide, with the page's aspect (fine and
    standard resolution pages both look like paper)."""
    try:
        with Image.open(job.path) as im:
            frames = getattr(im, "n_frames", 1)
            if not 0 <= job.index < frames:
                raise DocumentError(job.name, f"page {job.index + 1} not in 1-{frames}")
            im.seek(job.index)
            xdpi, ydpi = im.info.get("dpi", (204, 196))
            page = im.convert("L")
    except OSError as e:
        raise DocumentError(job.name, f"the fax document cannot be read: {e}") from None
    height_inches = page.height / float(ydpi or 196)
    width_inches = page.width / float(xdpi or 204)
    height = max(1, round(job.width * height_inches / width_inches))
    page = page.resize((job.width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    page.save(out, "PNG", optimize=False)
    return out.getvalue()
