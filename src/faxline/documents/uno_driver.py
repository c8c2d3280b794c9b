"""The UNO side of an Office instance: runs under the Python that has ``uno`` (Debian's
``python3-uno``, i.e. /usr/bin/python3), not in faxline's virtual environment.

It imports nothing of faxline. It starts one ``soffice.bin`` as its child (under an
address-space limit, and set to die with this process, which in turn dies with faxline),
connects to it over a named pipe, says ``{"ready": true, "pid": SOFFICE_PID}`` on stdout,
then reads one JSON request per line on stdin,
``{"in": PATH, "out": PATH, "filter": NAME, "export": NAME}``, and answers ``{"ok": true}``
or ``{"error": REASON}``. The time limit is the parent's: it kills this process, and the
kernel then kills soffice. ``office`` runs this process in a network namespace of its own.
"""

from __future__ import annotations

import ctypes
import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
from com.sun.star.connection import NoConnectException  # type: ignore[import-not-found]

_NEVER_EXECUTE = 0  # com.sun.star.document.MacroExecMode.NEVER_EXECUTE
_NO_UPDATE = 0  # com.sun.star.document.UpdateDocMode.NO_UPDATE


def _props(**values: object) -> tuple[Any, ...]:
    out: list[Any] = []
    for name, value in values.items():
        prop = PropertyValue()
        prop.Name = name
        prop.Value = value
        out.append(prop)
    return tuple(out)


_PR_SET_PDEATHSIG = 1
_RESTART_STATUS = 81  # soffice.bin set up a new profile and wants to be started again


def die_with_parent() -> None:
    """The same as faxline.procs.die_with_parent (this Python cannot import faxline)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _launch(
    soffice: str, profile_url: str, pipe: str, memory_bytes: int
) -> subprocess.Popen[bytes]:
    def preexec() -> None:
        die_with_parent()
        if memory_bytes > 0:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return subprocess.Popen(
        [
            soffice,
            f"-env:UserInstallation={profile_url}",
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            "--nolockcheck",
            f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=preexec,
    )


def _connect(
    pipe: str, deadline: float, soffice: subprocess.Popen[bytes], relaunch: Any
) -> tuple[Any, subprocess.Popen[bytes]]:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local
    )
    restarted = False
    while True:
        try:
            url = f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext"
            return resolver.resolve(url), soffice
        except NoConnectException:
            status = soffice.poll()
            if status == _RESTART_STATUS and not restarted:
                restarted, soffice = True, relaunch()
            elif status is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # soffice is still starting: nothing to wait on but the pipe


def _convert(desktop: Any, request: dict[str, str]) -> dict[str, object]:
    source = uno.systemPathToFileUrl(request["in"])
    target = uno.systemPathToFileUrl(request["out"])
    document = desktop.loadComponentFromURL(
        source,
        "_blank",
        0,
        _props(
            Hidden=True,
            ReadOnly=True,
            FilterName=request["filter"],
            MacroExecutionMode=_NEVER_EXECUTE,
            UpdateDocMode=_NO_UPDATE,
            Referer="private:no-referer",
        ),
    )
    if document is None:
        return {"error": "LibreOffice could not read the document"}
    try:
        document.storeToURL(target, _props(FilterName=request["export"]))
    finally:
        document.close(True)
    if not Path(request["out"]).exists():
        return {"error": "LibreOffice wrote no PDF for the document"}
    return {"ok": True}


def main(argv: list[str]) -> None:
    """``argv``: SOFFICE PROFILE_URL PIPE MEMORY_BYTES START_TIMEOUT_S."""
    die_with_parent()
    soffice_path, profile_url, pipe = argv[0], argv[1], argv[2]
    memory_bytes, start_timeout = int(argv[3]), float(argv[4])

    def relaunch() -> subprocess.Popen[bytes]:
        return _launch(soffice_path, profile_url, pipe, memory_bytes)

    context, soffice = _connect(pipe, time.monotonic() + start_timeout, relaunch(), relaunch)
    desktop = context.ServiceManager.createInstanceWithContext(
        "com.sun.star.frame.Desktop", context
    )
    out = sys.stdout
    out.write(json.dumps({"ready": True, "pid": soffice.pid}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer: dict[str, object] = _convert(desktop, request)
        except Exception as exc:  # LibreOffice's IllegalArgument/IOException for bad files
            message = getattr(exc, "Message", "") or type(exc).__name__
            if type(exc).__name__ == "DisposedException":
                raise  # the instance died: the parent sees this process end
            answer = {"error": f"LibreOffice could not read the document ({message})"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
