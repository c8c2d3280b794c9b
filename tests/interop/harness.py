"""Real peers for faxline's interop tests and the SIP benchmark: `faxline serve` processes,
Kamailio as a record-routing proxy, and SIPp runs. Every process started here is stopped by
its owner's ``stop()`` (the fixtures in conftest.py call it at teardown).

Only 127.0.0.1 (and 127.0.0.2 for SIPp as a stranger) is used.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "sipp"
KAMAILIO = shutil.which("kamailio") or (
    "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None
)
SIPP = shutil.which("sipp")
needs_peers = pytest.mark.skipif(
    KAMAILIO is None or SIPP is None,
    reason="kamailio and sipp (Debian kamailio, sip-tester) are not installed",
)


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free now, from the kernel's ephemeral range: for a socket bound at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_reserved: set[int] = set()


def reserved_udp_port() -> int:
    """A UDP port free now and below the ephemeral range, for a peer that binds it much
    later: the servers' media sockets (port 0) never take it in the meantime."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 32000)
        if port in _reserved:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _reserved.add(port)
        return port


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL to its process group if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(
    check: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; its last value is in the error."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}: last {value!r}")
        time.sleep(interval)


# -- Kamailio ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Relayed:
    """One request Kamailio received (``routed``: it followed the request's Route header)."""

    method: str
    call_id: str
    in_dialog: bool
    source: tuple[str, int]
    uri: str
    routed: bool = False


class Kamailio:
    """Kamailio 5.6 on 127.0.0.1 as a record-routing proxy that logs what it relays."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = reserved_udp_port()
        self.log = workdir / "kamailio.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    def start(self) -> None:
        if KAMAILIO is None:
            raise RuntimeError("kamailio is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config, defines = self.configure()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    KAMAILIO,
                    "-f",
                    str(config),
                    *(f"-A{name}={value}" for name, value in defines.items()),
                    "-DD",
                    "-E",
                    "-P",
                    str(self.workdir / "kamailio.pid"),
                    "-Y",
                    str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._answers, timeout=15, what="kamailio to answer")

    def configure(self) -> tuple[Path, dict[str, str]]:
        """The configuration file to run and its ``-A`` defines."""
        config = self.workdir / "proxy.cfg"
        template = (HERE / "kamailio" / "proxy.cfg").read_text()
        config.write_text(template.replace("LISTEN_PORT", str(self.port)))
        return config, {}

    def _answers(self) -> bool:
        """An OPTIONS with Max-Forwards 0 gets 483 from the proxy itself once it runs."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"kamailio exited:\n{self.log.read_text(errors='replace')}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.3)
            port = sock.getsockname()[1]
            probe = (
                f"OPTIONS sip:probe@127.0.0.1:{self.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-probe-{time.monotonic_ns()}\r\n"
                "Max-Forwards: 0\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\n"
                "To: <sip:probe@127.0.0.1>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            sock.sendto(probe.encode(), self.address)
            try:
                return sock.recv(4096).startswith(b"SIP/2.0 483")
            except TimeoutError:
                return False

    def relayed(self) -> list[Relayed]:
        """Every request logged so far, in order."""
        out = []
        pattern = re.compile(
            r"(relay|routed): method=(\S+) callid=(\S+)(?: totag=(\S*))? "
            r"source=([\d.]+):(\d+)(?: ruri=(\S+))?"
        )
        for line in self.log.read_text(errors="replace").splitlines():
            m = pattern.search(line)
            if m is None or m.group(3) == "probe":
                continue
            kind, method, call_id, totag, host, port, uri = m.groups()
            out.append(
                Relayed(
                    method=method,
                    call_id=call_id,
                    in_dialog=kind == "routed" or totag not in (None, "", "<null>"),
                    source=(host, int(port)),
                    uri=uri or "",
                    routed=kind == "routed",
                )
            )
        return out

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


# -- faxline servers --------------------------------------------------------------------


class FaxServer:
    """One `faxline serve` process with its own data directory, HTTP port and SIP port."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.data_dir = workdir / name
        self.http_port = free_tcp_port()
        self.sip_port = reserved_udp_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
        self.env.update(env or {})
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._tokens: dict[str, str] = {}

    @property
    def sip_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.sip_port

    @property
    def sip_uri(self) -> str:
        return f"sip:127.0.0.1:{self.sip_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def provision(self, spec: dict[str, Any]) -> None:
        """Run `faxline provision` (idempotent; works while the server runs)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir.parent / f"{self.name}-provision.json"
        path.write_text(json.dumps(spec, indent=1))
        command = [sys.executable, "-m", "faxline.cli", "provision"]
        done = subprocess.run(
            [*command, "--data-dir", str(self.data_dir), str(path)],
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise AssertionError(f"provisioning {self.name} failed: {done.stderr}")

    def start(self) -> None:
        """Launch and wait until it serves."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process (servers start faster side by side: launch all, then wait)."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "faxline.cli",
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.http_port),
                    "--sip-listen",
                    f"127.0.0.1:{self.sip_port}",
                    "--no-access-log",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        wait_until(self._healthy, timeout=60, what=f"{self.name} to serve")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.log()}")
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=40)
            self.process = None

    # The UAPI as an app uses it.

    def token(self, app: str, secret: str) -> str:
        if app not in self._tokens:
            r = httpx.post(
                f"{self.base_url}/oauth/token.php",
                data={
                    "grant_type": "client_credentials",
                    "client_id": app,
                    "client_secret": secret,
                },
                timeout=10,
            )
            assert r.status_code == 200, r.text
            self._tokens[app] = str(r.json()["access_token"])
        return self._tokens[app]

    def client(self, app: str, secret: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token(app, secret)}"},
            timeout=30,
        )

    def send(self, client: httpx.Client, extension: str, recipients: list[str], tiff: bytes) -> int:
        """Create a fax from one TIFF; return its id."""
        r = client.post(
            f"/uapi/faxes/@me/{extension}",
            files=[
                ("files", ("pages.tif", tiff, "application/octet-stream")),
                ("request", (None, json.dumps({"recipients": recipients}))),
            ],
        )
        assert r.status_code == 200, r.text
        return int(r.json()["id"])

    def fax(self, client: httpx.Client, extension: str, fax_id: int) -> dict[str, Any]:
        r = client.get(f"/uapi/faxes/@me/{extension}/{fax_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait_for_deliveries(
        self,
        client: httpx.Client,
        extension: str,
        fax_id: int,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float,
        interval: float = 0.3,
    ) -> dict[str, Any]:
        """Poll the fax every ``interval`` seconds until ``done(deliveries)``; return it."""
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            last = self.fax(client, extension, fax_id)
            return done(last["deliveries"])

        try:
            wait_until(check, timeout=timeout, interval=interval, what=f"fax {fax_id}")
        except AssertionError:
            raise AssertionError(f"{self.name}: fax {fax_id} is {last}\n{self.log()}") from None
        return last

    def inbox(self, client: httpx.Client, extension: str) -> list[dict[str, Any]]:
        r = client.get(f"/uapi/faxes/@me/{extension}", params={"direction": "in"})
        assert r.status_code == 200, r.text
        entries: list[dict[str, Any]] = r.json()["entry"]
        return entries

    def document(self, client: httpx.Client, extension: str, fax_id: int) -> bytes:
        r = client.get(f"/uapi/faxes/@me/{extension}/{fax_id}/document")
        assert r.status_code == 200, r.text
        return r.content


def final(statuses: Iterable[str]) -> bool:
    return all(s in ("delivered", "failed", "cancelled") for s in statuses)


# -- SIPp -------------------------------------------------------------------------------


def scenario(workdir: Path, name: str, **fields: str) -> Path:
    """A copy of ``sipp/<name>.xml`` in ``workdir`` with its ``@FIELD@`` markers filled."""
    text = (SCENARIOS / f"{name}.xml").read_text()
    for key, value in fields.items():
        text = text.replace(f"@{key.upper()}@", value)
    leftover = re.search(r"@[A-Z]+@", text)
    if leftover is not None:
        raise ValueError(f"{name}.xml: {leftover.group()} not filled in")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}-{len(list(workdir.glob(name + '*.xml')))}.xml"
    path.write_text(text)
    return path


class Sipp:
    """One SIPp process running a scenario, as UAS (``remote`` None) or UAC."""

    def __init__(
        self,
        scenario_file: Path,
        *,
        local_ip: str = "127.0.0.1",
        port: int | None = None,
        remote: tuple[str, int] | None = None,
        calls: int = 1,
        timeout_s: float = 60,
    ) -> None:
        if SIPP is None:
            raise RuntimeError("sipp (Debian sip-tester) is not installed")
        self.workdir = scenario_file.parent
        self.local_ip = local_ip
        self.port = port or free_udp_port(local_ip)
        self.output = self.workdir / f"{scenario_file.stem}.out"
        command = [
            SIPP,
            "-sf",
            str(scenario_file),
            "-i",
            local_ip,
            "-p",
            str(self.port),
            "-mp",
            str(free_udp_port(local_ip)),
            "-m",
            str(calls),
            "-timeout",
            f"{int(timeout_s)}s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-trace_msg",
        ]
        if remote is not None:
            command.append(f"{remote[0]}:{remote[1]}")
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def uri(self) -> str:
        return f"sip:{self.local_ip}:{self.port}"

    def wait(self, timeout: float = 90) -> int:
        """Wait for the scenario to end; its exit code (0: every call passed)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"sipp still running after {timeout} s\n{self.report()}") from None

    def messages(self) -> str:
        """Everything SIPp sent and received (its -trace_msg log)."""
        return "".join(p.read_text(errors="replace") for p in self.workdir.glob("*_messages.log"))

    def report(self) -> str:
        errors = "".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))
        return self.output.read_text(errors="replace")[-2500:] + errors

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
