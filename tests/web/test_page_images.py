"""Page images are cached by the browser for good: a strong ETag, `immutable`, and a
revalidation answered 304 without the image; still only for people who may see the fax."""

from __future__ import annotations

import httpx

from tests.web.conftest import Served, api_fax, session_client


def test_a_page_image_has_a_strong_etag_and_is_revalidated_with_304(served: Served) -> None:
    uid = api_fax(served, b"A page to keep")
    with session_client(served.base, "alice") as alice:
        first = alice.get(f"/faxes/{uid}/pages/1.png")
        assert first.status_code == 200 and first.content.startswith(b"\x89PNG")
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        cache = [p.strip() for p in first.headers["cache-control"].split(",")]
        assert "private" in cache and "immutable" in cache
        assert any(p.startswith("max-age=") and int(p[8:]) >= 86400 for p in cache)

        again = alice.get(f"/faxes/{uid}/pages/1.png", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag and "immutable" in again.headers["cache-control"]
        weak = alice.get(f"/faxes/{uid}/pages/1.png", headers={"If-None-Match": f"W/{etag}"})
        assert weak.status_code == 304
        listed = alice.get(
            f"/faxes/{uid}/pages/1.png", headers={"If-None-Match": f'"other", {etag}'}
        )
        assert listed.status_code == 304
        other = alice.get(f"/faxes/{uid}/pages/1.png", headers={"If-None-Match": '"other"'})
        assert other.status_code == 200 and other.content == first.content
        assert alice.get(f"/faxes/{uid}/pages/2.png").status_code == 404

    # The ETag opens nothing: another organization gets 404, nobody signed in the sign-in.
    with session_client(served.base, "zoe") as zoe:
        r = zoe.get(f"/faxes/{uid}/pages/1.png", headers={"If-None-Match": etag})
        assert r.status_code == 404
    r = httpx.get(f"{served.base}/faxes/{uid}/pages/1.png", headers={"If-None-Match": etag})
    assert r.status_code == 303
