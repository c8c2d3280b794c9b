"""Child processes that end with their parent, even when the parent is SIGKILLed.

Linux delivers a chosen signal to a child when the thread that forked it exits
(``PR_SET_PDEATHSIG``); a child also checks once that its parent did not die before the
request took effect.

A *lifeline* is the other way, independent of threads and of who forked: the parent keeps
the write end of a pipe that only it holds, the child watches the read end
(:func:`die_when_closed`), and the kernel closes the write end when the parent ends, however
it ends.

The signal follows the *thread* that forked: start children from a thread that lives as
long as the process (the main thread, or a pool's long-lived threads), never from a
short-lived one.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent ends.

    `parent_pid` is the pid the caller expects as parent (given before forking); if the
    parent already changed, the process exits at once.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def child_preexec() -> None:
    """A ``subprocess.Popen(preexec_fn=...)`` hook: the child dies with this process."""
    die_with_parent()


def die_when_closed(fd: int) -> None:
    """Have the kernel SIGKILL this process when the write end of the pipe `fd` is closed.

    The pipe's only writer is the parent; when it ends, however it ends, the kernel closes
    the write end, and a pipe whose last writer goes signals its reader (``O_ASYNC``, with
    ``F_SETSIG`` choosing SIGKILL). No thread watches: the process ends at once, whatever
    its main thread is doing (a call or a conversion in C code), since its work is no
    longer anybody's. Nothing may be written to the pipe (data would signal too).
    """
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGKILL)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
    # The parent may have ended before the signal was armed: then the pipe is at EOF now.
    readable, _, _ = select.select([fd], [], [], 0)
    if readable:
        os.kill(os.getpid(), signal.SIGKILL)
