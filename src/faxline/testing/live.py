"""A real `faxline serve` on 127.0.0.1 (plain HTTP, SIP off), provisioned from a file, for
tests and benchmarks that need real sockets and a real server log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from faxline.procs import child_preexec
from faxline.testing.waiting import OutputWatcher


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base: str
    port: int
    process: subprocess.Popen[bytes]
    output: OutputWatcher

    @property
    def log(self) -> Path:
        return self.output.log


@contextmanager
def live_server(
    data_dir: Path, provision: Path, log: Path, settings: Mapping[str, str] | None = None
) -> Iterator[LiveServer]:
    """Provision `data_dir` from `provision`, run `faxline serve` on a free port with
    `settings` (`FAXLINE_*` names), copy its output to `log`; SIGTERM (then SIGKILL) at
    the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
    env.update(settings or {})
    cli = [sys.executable, "-m", "faxline.cli"]
    subprocess.run(
        [*cli, "provision", "--data-dir", str(data_dir), str(provision)],
        check=True,
        capture_output=True,
        env=env,
    )
    port = free_port()
    proc = subprocess.Popen(
        [*cli, "serve", "--data-dir", str(data_dir), "--port", str(port), "--sip-listen", "off"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=child_preexec,
    )
    assert proc.stdout is not None
    output = OutputWatcher(proc.stdout, log)
    try:
        output.wait_for("Uvicorn running on", timeout=60)
        yield LiveServer(base=f"http://127.0.0.1:{port}", port=port, process=proc, output=output)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output.close()
