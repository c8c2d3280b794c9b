"""A SIGKILL of `faxline serve` while webhooks and mails are pending loses none of them:
the next `serve` sends them all (the same webhook-ids), once the leases expire."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from faxline.procs import child_preexec
from faxline.testing.waiting import OutputWatcher, eventually
from tests.notify.conftest import secret, tenants
from tests.notify.mailserver import MailServer, free_port
from tests.notify.receiver import HANG, Receiver

pytestmark = pytest.mark.slow


class Serve:
    def __init__(self, data: Path, env: dict[str, str], port: int, log: Path) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "faxline.cli", "serve", "--data-dir", str(data)),
                *("--port", str(port), "--sip-listen", "off"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=child_preexec,
        )
        assert self.proc.stdout is not None
        self.output = OutputWatcher(self.proc.stdout, log)
        self.output.wait_for("Uvicorn running on", timeout=60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.output.close()


@pytest.fixture
def serves() -> Iterator[list[Serve]]:
    made: list[Serve] = []
    yield made
    for s in made:
        s.kill()


def test_sigkill_with_events_and_mails_pending_loses_none(
    tmp_path: Path, serves: list[Serve]
) -> None:
    up = False
    receiver = Receiver(answer=lambda n: 200 if up else HANG)
    mails = MailServer(answer=lambda n: "250 OK" if up else "451 4.3.0 down")
    try:
        data = tmp_path / "data"
        world = tenants(
            {"alice": [{"url": receiver.url, "secret": secret(1)}]},
            {"0003*211": ["bob@acme.test"]},
        )
        (tmp_path / "tenants.json").write_text(json.dumps(world))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
        env.update(
            FAXLINE_SMTP_URL=f"smtp://127.0.0.1:{mails.port}",
            FAXLINE_WEBHOOK_TIMEOUT_S="1",
            FAXLINE_WEBHOOK_RETRY_SCHEDULE_S=json.dumps([0.2] * 100),
            FAXLINE_SMTP_TIMEOUT_S="1",
            FAXLINE_NOTIFY_POLL_INTERVAL_S="0.05",
            FAXLINE_POLL_INTERVAL_S="0.05",
        )
        cli = [sys.executable, "-m", "faxline.cli"]
        subprocess.run(
            [*cli, "provision", "--data-dir", str(data), str(tmp_path / "tenants.json")],
            check=True,
            capture_output=True,
            env=env,
        )
        port = free_port()
        serves.append(Serve(data, env, port, tmp_path / "serve1.log"))
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            token = client.post(
                "/oauth/token.php",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "alice-app",
                    "client_secret": "s3cret-alice",
                },
            ).json()["access_token"]
            r = client.post(
                "/uapi/faxes/@me/0003*210",
                headers={"Authorization": f"Bearer {token}"},
                files=[
                    ("files", ("fax.txt", b"Hello", "application/octet-stream")),
                    ("request", (None, json.dumps({"recipients": ["0003*211"]}))),
                ],
            )
            assert r.status_code == 200, r.text
            fax_id = r.json()["id"]

            def delivered() -> bool:
                got = client.get(
                    f"/uapi/faxes/@me/0003*210/{fax_id}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                return bool(got.json()["status"] == "sent")

            eventually(delivered, 60, "the fax sent")
        # Every event is written; the endpoint hangs and the mail server refuses.
        receiver.wait_for(lambda r: len(r) >= 2, 60, "the first event tried twice")
        eventually(lambda: mails.tries >= 1, 60, "the mail tried")
        serves[0].kill()
        up = True
        first_id = receiver.requests[0].headers["webhook-id"]
        serves.append(Serve(data, env, port, tmp_path / "serve2.log"))
        (mail,) = mails.wait_for(1, 60)
        assert mail["Subject"] == "Fax from 0003*210 (1 page)"

        receiver.wait_for(
            lambda r: len({x.headers["webhook-id"] for x in r}) >= 4, 60, "all four events"
        )
        hook = Webhook(secret(1))
        bodies = [hook.verify(r.body, r.headers) for r in receiver.requests]
        ids = list(dict.fromkeys(r.headers["webhook-id"] for r in receiver.requests))
        assert ids[0] == first_id  # the same id on every try, before and after the kill
        by_id = {
            r.headers["webhook-id"]: b["type"]
            for r, b in zip(receiver.requests, bodies, strict=True)
        }
        assert [by_id[i] for i in ids] == [
            "fax.created",
            "fax.delivery.updated",
            "fax.delivery.updated",
            "fax.completed",
        ]
    finally:
        receiver.close()
        mails.close()
