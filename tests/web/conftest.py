"""A real `faxline serve` (demo tenant plus a second organization) and a real headless
Chromium driven through Debian's chromedriver, both ending with the test process."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from faxline.procs import child_preexec
from faxline.testing.waiting import OutputWatcher, eventually
from tests.conftest import PG_URL, reset_postgres

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORDS = {
    "alice": "demo-alice-pw",
    "bob": "demo-bob-pw",
    "olga": "demo-olga-pw",
    "zoe": "other-zoe-pw",
}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tenant() -> dict[str, object]:
    """The demo tenant and a second organization whose user must see none of it."""
    spec = json.loads((ROOT / "examples" / "demo.json").read_text())
    spec["organizations"].append({"code": "0004", "name": "Other Inc"})
    spec["users"].append(
        {"id": "zoe", "organization": "0004", "role": "user", "password": PASSWORDS["zoe"]}
    )
    spec["extensions"].append({"number": "0004*300", "owner": "zoe", "fax": True})
    # Alice's app has a webhook where nothing listens: its failed posts fill the admins'
    # webhook log (and are retried later, as any failed post).
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    for app in spec["apps"]:
        if app["clientId"] == "alice-app":
            app["webhooks"] = [{"url": f"http://127.0.0.1:{free_port()}/hook", "secret": secret}]
    return spec


@dataclass
class Served:
    base: str
    data: Path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("web")
    data = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("PostgreSQL not configured: set FAXLINE_TEST_DATABASE_URL")
        reset_postgres(PG_URL)
        env["FAXLINE_DATABASE_URL"] = PG_URL
    spec = tmp / "tenant.json"
    spec.write_text(json.dumps(tenant()))
    cli = [sys.executable, "-m", "faxline.cli"]
    subprocess.run(
        [*cli, "provision", "--data-dir", str(data), str(spec)],
        check=True,
        capture_output=True,
        env=env,
    )
    port = free_port()
    env["FAXLINE_SIP_LISTEN"] = f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    proc = subprocess.Popen(
        [*cli, "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=child_preexec,
    )
    assert proc.stdout is not None
    output = OutputWatcher(proc.stdout, tmp / "serve.log")
    try:
        output.wait_for("Uvicorn running on", timeout=60)
        yield Served(f"http://127.0.0.1:{port}", data)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output.close()


def start_browser(tmp: Path) -> webdriver.Chrome:
    """Headless Chromium through chromedriver. chromedriver dies with this process
    (pdeathsig from its Popen); Chromium is its child and gets the same from setpriv, so
    neither outlives a SIGKILLed test run."""
    wrapper = tmp / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec setpriv --pdeathsig KILL {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    options = webdriver.ChromeOptions()
    options.binary_location = str(wrapper)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp / 'profile'}")
    options.add_argument("--window-size=1280,900")
    service = Service(CHROMEDRIVER, popen_kw={"preexec_fn": child_preexec})
    driver = webdriver.Chrome(service=service, options=options)
    driver.implicitly_wait(0)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER) and shutil.which("setpriv")):
        pytest.skip("Debian chromium, chromium-driver and setpriv are needed")
    driver = start_browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: webdriver.Chrome, base: str, who: str, password: str | None = None) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "username").send_keys(who)
    driver.find_element(By.NAME, "password").send_keys(password or PASSWORDS[who])
    # A mark on the form's page: the answer's page is a new document without it. Waiting for
    # it matters, since a navigation started before the sign-in's redirect arrived would be
    # overtaken by it. (Chromium answers a query on the page being replaced with one error or
    # another, not always "stale element": the wait retries any driver error.)
    driver.execute_script("window.faxlineSigningIn = true")
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.faxlineSigningIn === undefined && document.readyState === 'complete'"
        )
    )


def text_of(driver: webdriver.Chrome, css: str) -> str:
    # In the page itself: a live update may swap the element between two driver calls.
    text = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css
    )
    return str(text)


def wait_text(driver: webdriver.Chrome, css: str, wanted: str, timeout: float = 90) -> None:
    try:
        eventually(lambda: wanted in text_of(driver, css), timeout, f"{wanted!r} in {css}")
    except AssertionError as e:
        shown = driver.find_element(By.TAG_NAME, "main").text[:2000]
        raise AssertionError(f"{e}; {driver.current_url} shows:\n{shown}") from None


@contextmanager
def session_client(base: str, who: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in through the form, as a browser would be."""
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post("/login", data={"username": who, "password": PASSWORDS[who]})
        assert r.status_code == 303, r.text
        yield client


def text_pdf(pages: int) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for n in range(pages):
        pdf.setFont("Helvetica", 24)
        pdf.drawString(72, 720, f"Contract page {n + 1}")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def api_fax(
    served: Served,
    text: bytes,
    recipients: tuple[str, ...] = ("15550000001",),
    filename: str = "a.txt",
) -> str:
    """A fax sent by Alice's app through Create Faxes; its uid."""
    with httpx.Client(base_url=served.base, timeout=60) as api:
        r = api.post(
            "/oauth/token.php",
            data={
                "grant_type": "client_credentials",
                "client_id": "alice-app",
                "client_secret": "s3cret-alice",
            },
        )
        bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = api.post(
            "/uapi/faxes/@me/0003*210",
            headers=bearer,
            files=[
                ("files", (filename, text, "application/octet-stream")),
                ("request", (None, json.dumps({"recipients": list(recipients)}))),
            ],
        )
        assert r.status_code == 200, r.text
        return str(r.json()["uid"])


def long_tiff(pages: int) -> bytes:
    """A fax-shaped TIFF of `pages` like pages (fine A4, G4): a long fax made in well under
    a second (the same frame each time; the pages are told apart by their URLs)."""
    from PIL import Image, ImageDraw

    page = Image.new("1", (1728, 2292), 1)
    ImageDraw.Draw(page).text((200, 200), "A long fax", fill=0)
    out = io.BytesIO()
    page.save(
        out,
        format="TIFF",
        save_all=True,
        append_images=[page] * (pages - 1),
        compression="group4",
        dpi=(204, 196),
    )
    return out.getvalue()
