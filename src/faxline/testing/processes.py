"""Finding every process a test started, even those re-parented away from it: each is
started with a marker variable in its environment, which its children inherit."""

from __future__ import annotations

from pathlib import Path


def marked(variable: str, value: str) -> list[int]:
    """Live processes whose environment holds `variable=value`."""
    needle = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found
