"""A child that asked to die with its parent does, even when the parent is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from faxline.testing.waiting import eventually


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_grandchild_dies_when_its_parent_is_killed() -> None:
    parent_code = textwrap.dedent(
        """
        import subprocess, sys, time
        from faxline.procs import child_preexec
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 preexec_fn=child_preexec)
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE) as parent:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert _alive(child_pid)
        parent.send_signal(signal.SIGKILL)
    eventually(lambda: not _alive(child_pid), timeout=10, what="the child to end")


def test_a_child_whose_parent_is_already_gone_exits() -> None:
    code = "from faxline.procs import die_with_parent; die_with_parent(parent_pid=1); print('x')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert out.returncode == 1
    assert out.stdout == b""


def test_a_child_on_a_lifeline_dies_with_its_busy_parent_even_from_c_code() -> None:
    # The parent holds the only write end; it is SIGKILLed while the child is busy in C
    # (a long sleep with no Python in between), and the child ends at once.
    parent_code = textwrap.dedent(
        """
        import os, subprocess, sys, time
        r, w = os.pipe()
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time; from faxline.procs import die_when_closed; "
             "die_when_closed(int(sys.argv[1])); print('armed', flush=True); time.sleep(600)",
             str(r)],
            pass_fds=[r], stdout=subprocess.PIPE, text=True)
        os.close(r)
        assert child.stdout.readline() == "armed\\n"
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert _alive(child_pid)
        parent.send_signal(signal.SIGKILL)
    eventually(lambda: not _alive(child_pid), timeout=10, what="the child to end")


def test_a_lifeline_already_closed_ends_the_child_at_once() -> None:
    r, w = os.pipe()
    os.close(w)
    code = (
        "import sys; from faxline.procs import die_when_closed; "
        "die_when_closed(int(sys.argv[1])); print('x')"
    )
    out = subprocess.run([sys.executable, "-c", code, str(r)], pass_fds=[r], capture_output=True)
    os.close(r)
    assert out.returncode == -signal.SIGKILL and out.stdout == b""
