"""Office documents and HTML to PDF with a pool of long-lived headless LibreOffice instances.

Each instance is a small UNO driver (``uno_driver``, run by the Python that has ``uno``) and
the ``soffice.bin`` it starts, with a fresh profile of its own (deleted when the instance
ends), in a network namespace with no network (``unshare --net``). The profile turns
macros off (highest macro security, macro execution disabled, and every document loaded
with ``MacroExecutionMode=NEVER_EXECUTE``) and refuses linked content
(``BlockUntrustedRefererLinks``, ``UpdateDocMode=NO_UPDATE``); what LibreOffice fetches
regardless (HTML stylesheets) finds no network. soffice runs under an address-space limit.
A document that overruns the time limit or crashes the instance gets a DocumentError; the
instance is killed and a new one is started for the next document. An instance that cannot
start at all is a ConverterSetupError (500).

The input filter is chosen from the sniffed type, so LibreOffice never guesses from a name.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import shutil
import subprocess
import tempfile
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from faxline.documents.errors import ConverterSetupError, DocumentError
from faxline.procs import die_with_parent

_IMPORT_FILTERS: dict[str, tuple[str, str]] = {
    "docx": ("MS Word 2007 XML", "writer_pdf_Export"),
    "doc": ("MS Word 97", "writer_pdf_Export"),
    "odt": ("writer8", "writer_pdf_Export"),
    "rtf": ("Rich Text Format", "writer_pdf_Export"),
    "html": ("HTML (StarWriter)", "writer_pdf_Export"),
    "xlsx": ("Calc MS Excel 2007 XML", "calc_pdf_Export"),
    "xls": ("MS Excel 97", "calc_pdf_Export"),
    "ods": ("calc8", "calc_pdf_Export"),
    "pptx": ("Impress MS PowerPoint 2007 XML", "impress_pdf_Export"),
    "ppt": ("MS PowerPoint 97", "impress_pdf_Export"),
    "odp": ("impress8", "impress_pdf_Export"),
}
_TEST_SOURCES = {"csv": ("Text - txt - csv (StarCalc)", "calc_pdf_Export")}
"""Sources that no upload has (never sniffed), from which tests have spreadsheets written."""
_DRIVER = Path(__file__).with_name("uno_driver.py")
_MIB = 1024**2

_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
{items}
</oor:items>
"""
_SETTINGS = (
    ("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "3"),
    ("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution", "true"),
    ("/org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks", "true"),
    ("/org.openoffice.Office.Common/Security/Scripting", "WarnSaveOrSendDoc", "false"),
    ("/org.openoffice.Office.Common/Misc", "UseLocking", "false"),
    ("/org.openoffice.Office.Common/Misc", "UseDocumentSystemFileLocking", "false"),
    ("/org.openoffice.Office.Common/Misc", "UseDocumentOOoLockFile", "false"),
    ("/org.openoffice.Office.Common/Save/Document", "AutoSave", "false"),
    ("/org.openoffice.Office.Recovery/RecoveryInfo", "Enabled", "false"),
    ("/org.openoffice.Office.Common/Misc", "PerformFileExtCheck", "false"),
    ("/org.openoffice.Office.Common/Misc", "ShowTipOfTheDay", "false"),
    ("/org.openoffice.Setup/Office", "ooSetupInstCompleted", "true"),
    ("/org.openoffice.Inet/Settings", "ooInetProxyType", "0"),
    ("/org.openoffice.Office.Update/Update", "AutoCheckEnabled", "false"),
)


def office_kind(kind: str) -> bool:
    """Whether documents of this sniffed type go through LibreOffice."""
    return kind in _IMPORT_FILTERS


@dataclass(frozen=True)
class OfficeSettings:
    """Where LibreOffice is and what one conversion may cost."""

    soffice: str = "/usr/lib/libreoffice/program/soffice.bin"
    python: str = "/usr/bin/python3"
    """A Python that can ``import uno`` (Debian: python3-uno)."""
    timeout_s: float = 60.0
    memory_bytes: int = 3072 * _MIB
    start_timeout_s: float = 60.0
    isolate_network: bool = True
    """Run LibreOffice without network access (a network namespace, see ``_isolation``)."""
    unshare: str = "/usr/bin/unshare"


def _write_profile(root: Path) -> None:
    user = root / "user"
    user.mkdir(parents=True)
    items = "\n".join(
        f'<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse">'
        f"<value>{value}</value></prop></item>"
        for path, name, value in _SETTINGS
    )
    (user / "registrymodifications.xcu").write_text(_PROFILE.format(items=items))


def _isolation(settings: OfficeSettings) -> list[str]:
    """The command prefix that gives the instance a network namespace with no network.

    LibreOffice fetches some linked content (HTML stylesheets, for one) whatever its
    settings say; without a network it cannot. ``unshare`` execs the driver in place, so
    the driver stays faxline's child and dies with it.
    """
    if not settings.isolate_network:
        return []
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return [settings.unshare, *user, "--net", "--"]


def _wait_gone(pid: int) -> None:
    """Wait until soffice (the driver's child, killed with it) has ended."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            selector.select(10.0)
    finally:
        os.close(fd)


class _Instance:
    """One soffice.bin and its driver; started on first use and after every kill."""

    def __init__(self, settings: OfficeSettings) -> None:
        self._settings = settings
        self._soffice_pid: int | None = None
        self._driver: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The soffice.bin process id (None while stopped)."""
        return self._soffice_pid

    def _alive(self) -> bool:
        return self._driver is not None and self._driver.poll() is None

    def _start(self) -> None:
        self.kill()
        settings = self._settings
        root = Path(tempfile.mkdtemp(prefix="faxline-office-"))
        self._root = root
        _write_profile(root / "profile")
        (root / "work").mkdir()
        pipe = f"faxline-{os.getpid()}-{uuid.uuid4().hex}"
        env = {**os.environ, "SAL_USE_VCLPLUGIN": "svp", "HOME": str(root)}
        driver = [
            settings.python,
            str(_DRIVER),
            settings.soffice,
            (root / "profile").as_uri(),
            pipe,
            str(settings.memory_bytes),
            str(settings.start_timeout_s),
        ]
        try:
            self._driver = subprocess.Popen(
                [*_isolation(settings), *driver],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            self.kill()
            raise ConverterSetupError(f"LibreOffice cannot be started: {exc}") from exc
        self.starts += 1
        answer = self._read(settings.start_timeout_s)
        pid = None if answer is None else answer.get("pid")
        if not isinstance(pid, int):
            self.kill()
            raise ConverterSetupError(
                f"LibreOffice did not start ({settings.soffice} driven by {settings.python}; "
                "is python3-uno installed, and may this user create namespaces?)"
            )
        self._soffice_pid = pid

    def _read(self, timeout: float) -> dict[str, object] | None:
        """One answer line from the driver; None on timeout or when it ended."""
        driver = self._driver
        assert driver is not None and driver.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(driver.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return None
        line = driver.stdout.readline()
        if not line:
            return None
        answer: dict[str, object] = json.loads(line)
        return answer

    def convert(self, data: bytes, kind: str, name: str, export: str | None = None) -> bytes:
        """The document as PDF bytes; DocumentError naming it when LibreOffice fails.

        ``export`` names another export filter (tests use it to have LibreOffice write
        the docx, xlsx and odt files they upload).
        """
        if not self._alive():
            self._start()
        assert self._root is not None and self._driver is not None
        assert self._driver.stdin is not None
        work = self._root / "work"
        source, target = work / f"in.{kind}", work / "out"
        source.write_bytes(data)
        target.unlink(missing_ok=True)
        import_filter, export_filter = _IMPORT_FILTERS.get(kind) or _TEST_SOURCES[kind]
        request = {"in": str(source), "out": str(target), "filter": import_filter}
        request["export"] = export or export_filter
        try:
            self._driver.stdin.write((json.dumps(request) + "\n").encode())
            self._driver.stdin.flush()
        except OSError:
            self.kill()
            raise DocumentError(name, "the conversion failed (LibreOffice ended)") from None
        answer = self._read(self._settings.timeout_s)
        if answer is None:
            timed_out = self._alive()
            self.kill()
            if timed_out:
                raise DocumentError(
                    name, f"the conversion took longer than {self._settings.timeout_s:g} s"
                )
            raise DocumentError(
                name, "the conversion failed (the document needs too much memory or crashed)"
            )
        try:
            if "error" in answer:
                raise DocumentError(name, str(answer["error"]))
            return target.read_bytes()
        finally:
            source.unlink(missing_ok=True)
            target.unlink(missing_ok=True)

    def kill(self) -> None:
        """Stop soffice and the driver, and delete the profile."""
        driver, pid = self._driver, self._soffice_pid
        self._driver = self._soffice_pid = None
        if driver is not None:
            if driver.poll() is None:
                driver.kill()  # the kernel then kills soffice (its parent-death signal)
            driver.wait()
            for stream in (driver.stdin, driver.stdout):
                if stream is not None:
                    stream.close()
        if pid is not None:
            _wait_gone(pid)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


class OfficePool:
    """``instances`` LibreOffice instances; ``submit`` converts on the pool's own threads.

    The instances are started from the pool's threads, which live as long as the pool, so
    that they die with the process (the kernel's parent-death signal follows the thread).
    """

    def __init__(self, instances: int = 1, settings: OfficeSettings = OfficeSettings()) -> None:
        if instances < 1:
            raise ValueError("an Office pool needs at least one instance")
        self.settings = settings
        self._instances = [_Instance(settings) for _ in range(instances)]
        self._idle: queue.SimpleQueue[_Instance] = queue.SimpleQueue()
        for instance in self._instances:
            self._idle.put(instance)
        self._threads = ThreadPoolExecutor(instances, thread_name_prefix="faxline-office")
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> OfficePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the running soffice.bin instances."""
        return [pid for instance in self._instances if (pid := instance.pid) is not None]

    def submit(self, data: bytes, kind: str, name: str, export: str | None = None) -> Future[bytes]:
        """Convert a document to PDF (or with the ``export`` filter) on one of the instances."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the Office pool is closed")
            return self._threads.submit(self._convert, data, kind, name, export)

    def warm(self) -> None:
        """Start every instance now (the first document then need not wait for it)."""
        for future in [self._threads.submit(self._start_one) for _ in self._instances]:
            future.result()

    def _start_one(self) -> None:
        instance = self._idle.get()
        try:
            if not instance._alive():
                instance._start()
        finally:
            self._idle.put(instance)

    def _convert(self, data: bytes, kind: str, name: str, export: str | None) -> bytes:
        instance = self._idle.get()
        try:
            return instance.convert(data, kind, name, export)
        finally:
            self._idle.put(instance)

    def close(self) -> None:
        """Stop every instance."""
        with self._lock:
            self._closed = True
        for instance in self._instances:
            driver = instance._driver
            if driver is not None and driver.poll() is None:
                driver.kill()  # unblock a thread waiting on a conversion
        self._threads.shutdown(wait=True)
        for instance in self._instances:
            instance.kill()
