"""Signing in and out in a real Chromium: generic error, throttling, cookie, CSRF."""

from __future__ import annotations

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.web.conftest import Served, sign_in, text_of, wait_text


def test_root_sends_strangers_to_login(served: Served, browser: webdriver.Chrome) -> None:
    browser.delete_all_cookies()
    browser.get(f"{served.base}/")
    assert browser.current_url == f"{served.base}/login"
    assert browser.find_element(By.NAME, "username").get_attribute("autocomplete") == "username"


def test_wrong_password_gets_one_generic_message(served: Served, browser: webdriver.Chrome) -> None:
    sign_in(browser, served.base, "alice", "not-the-password")
    wait_text(browser, ".error", "The user name or password is wrong.")
    assert browser.get_cookie("faxline_session") is None
    sign_in(browser, served.base, "nobody-at-all", "whatever-pw")
    wait_text(browser, ".error", "The user name or password is wrong.")


def test_sign_in_sets_a_strict_cookie_and_sign_out_ends_it(
    served: Served, browser: webdriver.Chrome
) -> None:
    sign_in(browser, served.base, "bob")
    wait_text(browser, "h1", "Outbox of 0003*211")
    cookie = browser.get_cookie("faxline_session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain HTTP here; Secure under TLS
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    wait_text(browser, "h1", "Sign in")
    # The session is gone on the server: the old cookie value no longer signs anyone in.
    r = httpx.get(f"{served.base}/faxes", cookies={"faxline_session": cookie["value"]})
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_form_without_its_csrf_token_does_nothing(
    served: Served, browser: webdriver.Chrome
) -> None:
    sign_in(browser, served.base, "bob")
    wait_text(browser, "h1", "Outbox")
    browser.execute_script("document.querySelector('.signout [name=csrf_token]').remove()")
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    wait_text(browser, "h1", "This form has expired")
    browser.get(f"{served.base}/faxes")
    assert "Outbox" in text_of(browser, "h1")  # still signed in: the sign-out did not happen


def test_sign_in_is_throttled_per_user(served: Served) -> None:
    with httpx.Client(base_url=served.base) as client:
        answers = [
            client.post("/login", data={"username": "root", "password": f"wrong-{n}"})
            for n in range(6)
        ]
        assert [a.status_code for a in answers] == [401] * 5 + [429]
        assert "Too many failed attempts" in answers[-1].text
        # Even the right password waits now: guessing cannot continue.
        right = client.post("/login", data={"username": "root", "password": "demo-root-pw"})
        assert right.status_code == 429


def test_the_cookie_is_secure_under_tls(served: Served) -> None:
    # Behind a TLS proxy that says so (faxline serving TLS itself sees the https scheme).
    r = httpx.post(
        f"{served.base}/login",
        data={"username": "bob", "password": "demo-bob-pw"},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
