"""In a real Chromium: zooming a fax's pages, a 200-page fax that does not load 200 images
on open (nor 200 thumbnails in the preview), a cover page from the send form, and the
organization admin's webhook log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from faxline.testing.waiting import eventually
from tests.web.conftest import (
    Served,
    api_fax,
    long_tiff,
    session_client,
    sign_in,
    text_of,
    wait_text,
)
from tests.web.test_fax_center import check_page, fax_uid

# Page images this document asked for, by page number (the browser's own record).
REQUESTED_PAGES = """
return performance.getEntriesByType("resource")
  .map((e) => e.name.match(/\\/pages\\/(\\d+)\\.png/)).filter(Boolean).map((m) => +m[1]);
"""

LOADED_PAGES = """
return [...document.querySelectorAll(".pages img")]
  .filter((i) => i.complete && i.naturalWidth).map((i) => +i.dataset.page);
"""


def image_box(driver: webdriver.Chrome) -> tuple[float, int]:
    """(shown width in CSS pixels, natural width) of the first page image, once loaded."""
    width, natural = driver.execute_script(
        "const i = document.querySelector('.pages img');"
        "return [i.getBoundingClientRect().width, i.complete ? i.naturalWidth : 0];"
    )
    return float(width), int(natural)


def test_zoom_the_pages_with_the_keyboard(served: Served, browser: webdriver.Chrome) -> None:
    # A number nothing routes to: the fax is final before its page opens, so no live update
    # swaps the page part (and its zoom links) while the test holds them.
    uid = api_fax(served, b"Zoom in on me.\n", recipients=("15559990000",))
    with session_client(served.base, "alice") as alice:
        eventually(
            lambda: 'data-live="no"' in alice.get(f"/faxes/{uid}").text, 30, "the fax is final"
        )
    sign_in(browser, served.base, "alice")
    browser.get(f"{served.base}/faxes/{uid}")
    wait_text(browser, "h1", "Sent fax")
    eventually(lambda: image_box(browser)[1] == 860, 30, "the page image loaded")
    fit, _ = image_box(browser)
    frame = browser.execute_script(
        "return document.querySelector('.pages-frame').getBoundingClientRect().width"
    )
    assert abs(fit - frame) < 1 and fit > 860  # fills the width there is (1280 px window)
    browser.execute_script("window.faxlineMark = 1")

    for label, zoom, width in (("100 %", "100", 860), ("200 %", "200", 1720)):
        link = browser.find_element(By.CSS_SELECTOR, f"nav.zoom a[data-zoom='{zoom}']")
        assert link.text == label
        link.send_keys(Keys.ENTER)  # keyboard: the zoom links take Enter like any link
        eventually(
            lambda width=width: image_box(browser) == (width, width), 30, f"zoomed to {label}"
        )
        assert link.get_attribute("aria-current") == "true"
        assert browser.current_url.endswith(f"?zoom={zoom}")
        assert f"Pages shown at {label}" in text_of(browser, "#zoom-news")
    assert browser.execute_script("return window.faxlineMark") == 1  # zoomed in place
    # 200 % is an image rendered at twice the width, not the small one stretched.
    assert browser.execute_script("return document.querySelector('.pages img').src").endswith(
        "/pages/1.png?width=1720"
    )
    check_page(browser, "fax-zoom-200", scroll_to="#pages-title")
    browser.find_element(By.CSS_SELECTOR, "nav.zoom a[data-zoom='fit']").click()
    eventually(lambda: abs(image_box(browser)[0] - fit) < 1, 30, "back to fit width")

    # Without JavaScript the links are plain links: the server renders the zoom.
    with session_client(served.base, "alice") as alice:
        page = alice.get(f"/faxes/{uid}?zoom=200").text
        assert 'class="pages zoom-200"' in page and f"/faxes/{uid}/pages/1.png?width=1720" in page
        assert 'data-zoom="200" data-width="1720" aria-current="true"' in page
        assert 'class="pages zoom-fit"' in alice.get(f"/faxes/{uid}?zoom=bogus").text
        assert alice.get(f"/faxes/{uid}/pages/1.png?width=1720").status_code == 200
        assert alice.get(f"/faxes/{uid}/pages/1.png?width=5000").status_code == 404


def test_the_live_update_keeps_the_zoom_and_the_keyboard_focus(
    served: Served, browser: webdriver.Chrome
) -> None:
    """When the fax finishes, the page part is rendered again in place: the zoom chosen
    stays, and a keyboard user on a zoom link is still on it."""
    uid = api_fax(served, b"Watch me finish.\n")  # a simulated far end that answers
    sign_in(browser, served.base, "alice")
    browser.get(f"{served.base}/faxes/{uid}")
    wait_text(browser, "h1", "Sent fax")
    if browser.execute_script("return document.querySelector('.fax').dataset.live") != "yes":
        pytest.skip("the fax finished before its page opened: nothing to update live")
    link = browser.find_element(By.CSS_SELECTOR, "nav.zoom a[data-zoom='200']")
    link.send_keys(Keys.ENTER)
    eventually(lambda: image_box(browser) == (1720, 1720), 30, "zoomed to 200 %")

    def swapped() -> bool:
        try:
            link.is_enabled()
        except StaleElementReferenceException:
            return True  # the element the keyboard was on is gone: the part was swapped
        return False

    eventually(swapped, 90, "the page part was rendered again when the fax finished")
    assert browser.execute_script("return document.activeElement.dataset.zoom") == "200"
    eventually(lambda: image_box(browser) == (1720, 1720), 30, "still at 200 %")
    assert "Sent" in text_of(browser, "#fax-status")


def test_a_200_page_fax_loads_only_the_pages_in_view(
    served: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    tiff = long_tiff(200)
    # A number nothing routes to: the delivery fails at once, the fax stays.
    uid = api_fax(served, tiff, recipients=("15559990000",), filename="long.tif")
    sign_in(browser, served.base, "alice")
    browser.get(f"{served.base}/faxes/{uid}")
    wait_text(browser, "h1", "Sent fax")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".pages img")) == 200
    eventually(lambda: image_box(browser)[1] == 860, 60, "the first page image loaded")
    # What was asked for on open has arrived (every page image the browser fetched is a
    # loaded image, and the other way round): then count what the page asked for.
    eventually(
        lambda: (
            set(browser.execute_script(REQUESTED_PAGES))
            == set(browser.execute_script(LOADED_PAGES))
        ),
        60,
        "the pages asked for on open arrived",
    )
    asked = set(browser.execute_script(REQUESTED_PAGES))
    assert 1 in asked and len(asked) <= 12, sorted(asked)

    # The last page comes when it is scrolled to: lazy, not missing.
    browser.execute_script("document.querySelector('.pages li:last-child img').scrollIntoView()")
    eventually(lambda: 200 in browser.execute_script(REQUESTED_PAGES), 60, "page 200 asked for")
    assert len(set(browser.execute_script(REQUESTED_PAGES))) < 100

    # The preview of the same upload draws the first 12 pages and says how many more.
    long = tmp_path / "long.tif"
    long.write_bytes(tiff)
    browser.get(f"{served.base}/send")
    browser.find_element(By.NAME, "files").send_keys(str(long))
    wait_text(browser, "#preview-count", "200 pages will be sent.", timeout=120)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#thumbs img")) == 12
    assert text_of(browser, "#preview-more") == (
        "The first 12 pages are shown, and 188 more are not."
    )


def test_send_with_a_cover_page(served: Served, browser: webdriver.Chrome, tmp_path: Path) -> None:
    txt = tmp_path / "contract.txt"
    txt.write_text("The contract, one page.\n")
    sign_in(browser, served.base, "alice")
    wait_text(browser, "h1", "Outbox")
    browser.get(f"{served.base}/send")
    browser.find_element(By.NAME, "recipients").send_keys("211")
    browser.find_element(By.NAME, "cover_to").send_keys("Bob Builder")
    browser.find_element(By.NAME, "cover_subject").send_keys("The contract")
    browser.find_element(By.NAME, "cover_notes").send_keys("Please sign it\nand fax it back.")
    browser.find_element(By.NAME, "files").send_keys(str(txt))
    wait_text(browser, "#preview-count", "2 pages will be sent. The first is the cover page.")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#thumbs img")) == 2
    check_page(browser, "send-cover", scroll_to="#cover")
    # Emptied, the cover goes: the same file previews as its one page.
    for name in ("cover_to", "cover_subject", "cover_notes"):
        field = browser.find_element(By.NAME, name)
        field.clear()
    browser.find_element(By.NAME, "recipients").click()  # leaving the last field: change
    wait_text(browser, "#preview-count", "1 page will be sent.")
    browser.find_element(By.NAME, "cover_subject").send_keys("The contract", Keys.TAB)
    wait_text(browser, "#preview-count", "2 pages will be sent. The first is the cover page.")
    browser.find_element(By.CSS_SELECTOR, "#send-form button[type=submit]").click()
    wait_text(browser, "h1", "Sent fax", timeout=90)
    uid = fax_uid(browser)
    assert re.search(r"Pages\s+2", text_of(browser, ".facts"))
    wait_text(browser, "tr[data-recipient='211'] .sent", "of 2")
    with session_client(served.base, "alice") as alice:
        view = alice.get(f"/faxes/{uid}/pages/1.png")
        assert view.status_code == 200  # the cover, drawn as the first page

        # The cover's limits are Create Faxes' own, shown next to the field at fault.
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', alice.get("/send").text)
        assert csrf
        r = alice.post(
            "/send",
            data={
                "csrf_token": csrf.group(1),
                "recipients": "211",
                "extension": "0003*210",
                "cover_subject": "x" * 201,
                "cover_notes": "kept as typed",
            },
            files=[("files", ("a.txt", b"hello", "text/plain"))],
        )
        assert r.status_code == 400
        assert 'id="cover_subject-error"' in r.text
        assert "cover.subject is longer than 200 characters" in r.text
        assert ">kept as typed</textarea>" in r.text


def test_the_organization_admin_reads_the_webhook_log(
    served: Served, browser: webdriver.Chrome
) -> None:
    api_fax(served, b"An event for the webhook\n")  # fax.created for Alice's app's hook
    sign_in(browser, served.base, "olga")
    browser.find_element(By.LINK_TEXT, "Webhook log").click()
    wait_text(browser, "h1", "Webhook log")

    def failed_post_shown() -> bool:
        browser.refresh()
        return "Failed" in text_of(browser, "table.webhooks")

    eventually(failed_post_shown, 60, "a failed post in the log")
    assert "alice-app" in text_of(browser, "table.webhooks")
    check_page(browser, "webhook-log")
