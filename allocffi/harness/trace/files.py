"""Where the traces of one recording are: FILE itself, or FILE.PID for each process.

``allocffi trace record -o FILE`` writes one trace per process, ``FILE.PID`` (``FILE.PID-N``
when one pid ran several images that each flushed events). Every command that reads traces
accepts either a trace file or that FILE prefix.
"""

from __future__ import annotations

import re
from pathlib import Path

from allocffi.harness.trace.native import TraceError

_PROCESS_SUFFIX = re.compile(r"^\.\d+(-\d+)?$")
RAW_SUFFIX = ".raw"


def process_files(prefix: Path, suffix: str = "") -> list[Path]:
    """FILE.PID[-N]<suffix> files next to ``prefix``, in pid order."""
    directory = prefix.parent if str(prefix.parent) else Path(".")
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        name = entry.name
        if not name.startswith(prefix.name) or not name.endswith(suffix) or not entry.is_file():
            continue
        middle = name[len(prefix.name) : len(name) - len(suffix)]
        if _PROCESS_SUFFIX.match(middle):
            found.append(entry)

    def pid_key(p: Path) -> tuple[int, int]:
        middle = p.name[len(prefix.name) + 1 : len(p.name) - len(suffix)]
        pid, _, generation = middle.partition("-")
        return int(pid), int(generation or 1)

    return sorted(found, key=pid_key)


def resolve(path: str | Path) -> list[Path]:
    """The trace files ``path`` names: itself when it is a file, else its FILE.PID files."""
    target = Path(path)
    if target.is_file():
        return [target]
    if target.is_dir():
        raise TraceError(f"{target}: is a directory, not a trace file")
    found = process_files(target)
    if not found:
        raise TraceError(
            f"{target}: no such trace file, and no {target.name}.PID files "
            f"from `allocffi trace record -o {target}`"
        )
    return found
