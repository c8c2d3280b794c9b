"""A trunk's registration is kept by one node at a time, and taken over when it dies.

Two real `faxline worker` processes on one PostgreSQL, a real registrar on 127.0.0.1 (a UDP
socket answering REGISTER): only one worker registers; SIGKILLed, the other registers
within the registration lease."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from faxline.directory.provision import apply, parse
from faxline.sip.message import SipRequest, make_response, parse_message
from faxline.store.db import make_engine, migrate, session_factory
from faxline.testing.live import free_port
from faxline.testing.waiting import eventually
from tests.conftest import PG_URL, reset_postgres

# On SQLite there is one node, which always keeps the registration: PostgreSQL only.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]
LEASE_S = 3.0


class Registrar:
    """Answers every REGISTER with 200 (60 s) and notes when, and from which port."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            request = parse_message(data)
            if isinstance(request, SipRequest) and request.method == "REGISTER":
                self.seen.append((time.monotonic(), addr[1]))
                response = make_response(request, 200, extra_headers=[("Expires", "60")])
                self.sock.sendto(bytes(response), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def sources(self) -> set[int]:
        return {port for _, port in self.seen}


def test_one_node_registers_and_another_takes_over(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set FAXLINE_TEST_DATABASE_URL to run this on it")
    reset_postgres(PG_URL)
    database_url = PG_URL
    registrar = Registrar()
    engine = make_engine(database_url)
    migrate(engine)
    with session_factory(engine)() as s:
        trunk = {
            "name": "carrier",
            "uri": f"sip:127.0.0.1:{registrar.port}",
            "username": "fax-user",
            "password": "s3cret",
            "register": True,
            "registerExpires": 60,
        }
        apply(s, parse({"trunks": [trunk]}))
        s.commit()
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
    env.update(FAXLINE_DATABASE_URL=database_url, FAXLINE_REGISTRATION_LEASE_S=str(LEASE_S))
    workers: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for n in range(2):
            port = free_port()
            with (tmp_path / f"worker-{n}.log").open("wb") as log:
                workers[port] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "faxline.cli",
                        "worker",
                        "--data-dir",
                        str(tmp_path / f"node-{n}"),
                        "--sip-listen",
                        f"127.0.0.1:{port}",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                )
        eventually(lambda: bool(registrar.seen), 60, "a first REGISTER")
        time.sleep(LEASE_S * 2)  # both have asked for the lease several times by now
        (owner,) = registrar.sources()
        assert owner in workers
        killed = time.monotonic()
        os.kill(workers[owner].pid, signal.SIGKILL)  # the node only: its children follow
        workers[owner].wait()
        eventually(lambda: len(registrar.sources()) == 2, 60, "the other node to register")
        (taker,) = registrar.sources() - {owner}
        taken = min(t for t, port in registrar.seen if port == taker)
        print(f"registration taken over {taken - killed:.1f} s after the SIGKILL")
        assert taker in workers and workers[taker].poll() is None
        # Nothing came from the dead node after it died, nor from the taker before.
        assert all(t < killed for t, port in registrar.seen if port == owner)
        assert all(t > killed for t, port in registrar.seen if port == taker)
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        registrar.close()
