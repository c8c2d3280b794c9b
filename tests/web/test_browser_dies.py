"""chromedriver and Chromium end with the process that started them, even on SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from faxline.testing.waiting import OutputWatcher, eventually
from tests.web.conftest import CHROMEDRIVER

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True)
    children: dict[int, list[int]] = {}
    for line in out.stdout.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def test_sigkill_of_the_test_process_ends_the_browser(tmp_path: Path) -> None:
    if not Path(CHROMEDRIVER).exists():
        pytest.skip("chromium-driver is needed")
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from tests.web.conftest import start_browser
        driver = start_browser(Path(sys.argv[1]))
        print("browser up", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = OutputWatcher(proc.stdout, tmp_path / "out.log")
    try:
        output.wait_for("browser up", timeout=60)
        family = descendants(proc.pid)
        assert len(family) >= 2  # chromedriver and at least Chromium's first process
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        eventually(lambda: not any(alive(p) for p in family), 30, "the browser processes end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()
        output.close()
