"""The fax center end to end in a real Chromium against a real `faxline serve`: send a PDF
and a text file to a colleague's extension, watch it arrive, read it as the recipient;
cancel a fax to a number that never answers; nobody of another organization sees it;
axe-core finds no serious or critical problem; screenshots at desktop and phone widths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.common.by import By

from faxline.testing.waiting import eventually
from tests.web.conftest import (
    SCREENSHOTS,
    Served,
    api_fax,
    session_client,
    sign_in,
    text_of,
    text_pdf,
    wait_text,
)

SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def check_page(driver: webdriver.Chrome, name: str, scroll_to: str | None = None) -> None:
    """No serious or critical axe-core violation; screenshots at both widths (with the
    element `scroll_to` names, a CSS selector, scrolled to the top)."""
    axe = Axe(driver)
    axe.inject()
    results: dict[str, Any] = axe.run()
    bad = [v for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in bad]
    SCREENSHOTS.mkdir(exist_ok=True)
    for size, (w, h) in SIZES.items():
        driver.set_window_size(w, h)
        if scroll_to:
            script = "document.querySelector(arguments[0]).scrollIntoView()"
            driver.execute_script(script, scroll_to)
        driver.save_screenshot(str(SCREENSHOTS / f"{name}-{size}.png"))
    driver.set_window_size(*SIZES["desktop"])


def fax_uid(driver: webdriver.Chrome) -> str:
    found = re.search(r"/faxes/([0-9a-f]{32})$", driver.current_url)
    assert found, driver.current_url
    return found.group(1)


def test_send_to_a_colleague_and_read_it_as_the_recipient(
    served: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    pdf, txt = tmp_path / "contract.pdf", tmp_path / "note.txt"
    pdf.write_bytes(text_pdf(2))
    txt.write_text("Please sign and fax back.\n")
    browser.get(f"{served.base}/login")
    check_page(browser, "sign-in")
    sign_in(browser, served.base, "alice")
    wait_text(browser, "h1", "Outbox")
    browser.get(f"{served.base}/send")
    browser.find_element(By.NAME, "files").send_keys(f"{pdf}\n{txt}")
    wait_text(browser, "#preview-count", "3 pages will be sent.")
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#thumbs img")
    assert len(thumbs) == 3
    browser.find_element(By.NAME, "recipients").send_keys("211")
    check_page(browser, "send")
    browser.find_element(By.CSS_SELECTOR, "#send-form button[type=submit]").click()
    wait_text(browser, "h1", "Sent fax", timeout=90)
    uid = fax_uid(browser)
    # Mark this document: if the page reloaded, the mark would be gone.
    browser.execute_script("window.faxlineMark = 1")
    wait_text(browser, "tr[data-recipient='211'] .status", "Delivered", timeout=120)
    assert browser.execute_script("return window.faxlineMark") == 1
    wait_text(browser, "tr[data-recipient='211'] .sent", "3 of 3")
    check_page(browser, "fax-sent")
    browser.get(f"{served.base}/faxes?box=out")
    check_page(browser, "outbox")

    sign_in(browser, served.base, "bob")
    browser.get(f"{served.base}/faxes?box=in")
    wait_text(browser, "h1", "Inbox of 0003*211")
    assert "New" in text_of(browser, "tr.unread")
    check_page(browser, "inbox")
    browser.find_element(By.CSS_SELECTOR, "tr.unread a").click()
    wait_text(browser, "h1", "Received fax")
    image = browser.find_element(By.CSS_SELECTOR, ".pages img")
    eventually(
        lambda: (
            browser.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", image
            )
            == 860
        ),
        30,
        "the first page image loaded",
    )
    check_page(browser, "fax-received")
    browser.get(f"{served.base}/faxes?box=in")
    assert not browser.find_elements(By.CSS_SELECTOR, "tr.unread")  # read now
    assert uid  # alice's fax, checked from another organization below
    other_org_gets_404(served, browser, uid)


def other_org_gets_404(served: Served, browser: webdriver.Chrome, uid: str) -> None:
    sign_in(browser, served.base, "zoe")
    wait_text(browser, "h1", "Outbox of 0004*300")
    for path in (f"/faxes/{uid}", "/faxes/" + "0" * 32):
        browser.get(served.base + path)
        wait_text(browser, "h1", "Not found")
    with session_client(served.base, "zoe") as zoe:
        for suffix in ("", "/document.pdf", "/document.tif", "/pages/1.png", "/events"):
            assert zoe.get(f"/faxes/{uid}{suffix}").status_code == 404, suffix
            assert zoe.get(f"/faxes/{'0' * 32}{suffix}").status_code == 404, suffix


def test_cancel_a_fax_to_a_number_that_never_answers(
    served: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    txt = tmp_path / "memo.txt"
    txt.write_text("Nobody will read this.\n")
    sign_in(browser, served.base, "alice")
    wait_text(browser, "h1", "Outbox")
    browser.get(f"{served.base}/send")
    browser.find_element(By.NAME, "files").send_keys(str(txt))
    wait_text(browser, "#preview-count", "1 page will be sent.")
    browser.find_element(By.NAME, "recipients").send_keys("15550000003")
    browser.find_element(By.CSS_SELECTOR, "#send-form button[type=submit]").click()
    wait_text(browser, "h1", "Sent fax", timeout=90)
    browser.find_element(By.ID, "cancel").click()
    wait_text(browser, "tr[data-recipient='15550000003'] .status", "Cancelled", timeout=60)
    assert not browser.find_elements(By.ID, "cancel")


def test_the_apis_messages_show_next_to_the_field(
    served: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    sign_in(browser, served.base, "alice")
    wait_text(browser, "h1", "Outbox")
    browser.get(f"{served.base}/send")
    browser.find_element(By.NAME, "files").send_keys(str(bad))
    wait_text(browser, "#preview-count", "broken.pdf")
    browser.find_element(By.NAME, "recipients").send_keys("211, abc")
    browser.find_element(By.CSS_SELECTOR, "#send-form button[type=submit]").click()
    wait_text(browser, "#recipients-error", "recipient 'abc' is not a phone number")
    assert browser.find_element(By.NAME, "recipients").get_attribute("aria-invalid") == "true"
    with session_client(served.base, "alice") as alice:
        page = alice.get("/send").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        r = alice.post(
            "/send",
            data={"csrf_token": csrf.group(1), "recipients": "211", "extension": "0003*210"},
            files=[("files", ("broken.pdf", bad.read_bytes(), "application/pdf"))],
        )
        assert r.status_code == 400
        assert 'id="files-error"' in r.text and "broken.pdf" in r.text
        # Nothing was stored: the outbox did not grow by a fax to 211 from this request.
        r = alice.post(
            "/send",
            data={"recipients": "211", "extension": "0003*210"},
            files=[("files", ("a.txt", b"hello", "text/plain"))],
        )
        assert r.status_code == 403 and "This form has expired" in r.text


def test_lists_work_without_javascript(served: Served) -> None:
    uid = api_fax(served, b"made by the API")
    with session_client(served.base, "alice") as alice:
        r = alice.get("/faxes?box=out&q=0000001")
        assert r.status_code == 200 and f'href="/faxes/{uid}"' in r.text
        assert alice.get(f"/faxes/{uid}/document.pdf").content.startswith(b"%PDF")
        assert alice.get(f"/faxes/{uid}/document.tif").content[:2] in (b"II", b"MM")
        assert alice.get("/faxes?box=out&q=99999999").text.count("<tr") == 0
        r = alice.get("/faxes?box=out&q=%25")
        assert "Search by number: digits, + and * only." in r.text
        assert httpx.get(f"{served.base}/faxes").status_code == 303


def test_a_received_fax_appears_in_the_open_inbox(
    served: Served, browser: webdriver.Chrome
) -> None:
    sign_in(browser, served.base, "bob")
    browser.get(f"{served.base}/faxes?box=in")
    wait_text(browser, "h1", "Inbox of 0003*211")
    before = len(browser.find_elements(By.CSS_SELECTOR, "table.faxes tbody tr"))
    browser.execute_script("window.faxlineMark = 1")
    with session_client(served.base, "alice") as alice:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', alice.get("/send").text)
        assert csrf
        r = alice.post(
            "/send",
            data={"csrf_token": csrf.group(1), "recipients": "211", "extension": "0003*210"},
            files=[("files", ("hello.txt", b"Hello Bob", "text/plain"))],
        )
        assert r.status_code == 303, r.text
    wait_text(browser, "#inbox-news", "A new fax has arrived.", timeout=120)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.faxes tbody tr")
    assert len(rows) == before + 1
    assert "unread" in (rows[0].get_attribute("class") or "")
    assert browser.execute_script("return window.faxlineMark") == 1  # not reloaded


def test_the_organization_admin_sees_every_extension(served: Served) -> None:
    with session_client(served.base, "olga") as olga:
        page = olga.get("/faxes?box=out").text
        assert '<option value="0003*210"' in page and '<option value="0003*211"' in page
        assert "0004*300" not in page


def test_send_again_to_failed_recipients_and_delete(served: Served) -> None:
    with session_client(served.base, "alice") as alice:
        csrf_match = re.search(r'name="csrf_token" value="([^"]+)"', alice.get("/send").text)
        assert csrf_match
        csrf = csrf_match.group(1)
        r = alice.post(
            "/send",
            # No route leads to this number: the delivery fails at once, every time.
            data={"csrf_token": csrf, "recipients": "15559990000", "extension": "0003*210"},
            files=[("files", ("nowhere.txt", b"A number nothing can reach", "text/plain"))],
        )
        assert r.status_code == 303, r.text
        page = r.headers["location"]

        def attempts() -> int:
            return alice.get(page).text.count('<td data-label="Time">')

        def failed() -> bool:
            return "Send again to failed recipients" in alice.get(page).text

        eventually(failed, 120, "the delivery failed")
        assert attempts() == 1
        assert alice.post(f"{page}/delete", data={}).status_code == 403  # no CSRF token
        r = alice.post(f"{page}/send-again", data={"csrf_token": csrf})
        assert r.status_code == 303
        eventually(lambda: attempts() == 2 and failed(), 120, "a second attempt that failed")
        r = alice.post(f"{page}/delete", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert alice.get(page).status_code == 404
