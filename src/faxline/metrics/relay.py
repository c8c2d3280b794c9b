"""Counts made in worker processes, carried back to the server that exposes them.

Call processes (one per line call, forked by the forkserver) and conversion workers count
where the work happens, with the same counters as the server. The server cannot see their
memory, and prometheus-client's multiprocess mode would keep one file per call process for
ever (a counter's total must outlive its process), which grows without bound with one
process per call. So a worker takes a :func:`snapshot` before a job, and sends
:func:`since` (what it counted during the job: plain, picklable numbers) with the job's
answer; the server :func:`add`\\s that to its own counters.
"""

from __future__ import annotations

from prometheus_client import Counter

from faxline.metrics import registry

Counts = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""(counter name, sorted label pairs) -> amount."""

_COUNTERS: dict[str, Counter] = {
    c._name: c for c in vars(registry).values() if isinstance(c, Counter)
}


def snapshot() -> Counts:
    """Every counter's current value in this process."""
    counts: Counts = {}
    for name, counter in _COUNTERS.items():
        for family in counter.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = (name, tuple(sorted(sample.labels.items())))
                    counts[key] = sample.value
    return counts


def since(before: Counts) -> Counts:
    """What was counted after `before` was taken (only the counters that moved)."""
    return {k: v - before.get(k, 0.0) for k, v in snapshot().items() if v > before.get(k, 0.0)}


def add(counts: Counts) -> None:
    """Add a worker's counts to this process's counters. Unknown names are an error of
    ours (a worker running other code than the server), so they raise."""
    for (name, labels), amount in counts.items():
        counter = _COUNTERS[name]
        if labels:
            counter.labels(**dict(labels)).inc(amount)
        else:
            counter.inc(amount)
