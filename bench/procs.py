"""Every process's ``/proc/PID/stat``, read once for the benchmarks that look at maild's
process tree (bench/ingest.py: CPU by role; bench/memory.py: the tree below a pid)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, name, the fields after the name) of each process still there when read: fields[1]
    is the parent, [3] the session, [11] and [12] user and system time in clock ticks."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        yield int(entry.name), stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
