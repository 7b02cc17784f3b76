"""Where the traces of one recording are: FILE itself, or FILE.PID for each process.

``allocffi trace record -o FILE`` writes one trace per process, ``FILE.PID`` (``FILE.PID-N``
when one pid ran several images that each flushed events). Every command that reads traces
accepts either a trace file or that FILE prefix.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from allocffi.harness.core import inputs
from allocffi.harness.trace.native import TraceError

_PROCESS_SUFFIX = re.compile(r"^\.\d+(-\d+)?$")
RAW_SUFFIX = ".raw"


def process_files(prefix: Path, suffix: str = "") -> list[Path]:
    """FILE.PID[-N]<suffix> files next to ``prefix``, in pid order."""
    directory = prefix.parent if str(prefix.parent) else Path(".")
    try:
        entries = list(directory.iterdir())
    except OSError:  # no such directory, or not one we may list: no FILE.PID files there
        return []
    found = []
    for entry in entries:
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
    try:
        mode: int | None = os.stat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None  # perhaps the FILE prefix of FILE.PID files
    except OSError as exc:  # too long a name, no permission
        raise inputs.os_error("trace", path, exc) from exc
    except ValueError as exc:
        raise TraceError(f"{inputs.shown(target)}: the path holds a NUL byte") from exc
    if mode is not None and stat.S_ISDIR(mode):
        raise TraceError(f"{inputs.shown(target)}: is a directory, not a trace file")
    if mode is not None:
        return [inputs.check_input(target, "trace")]  # a FIFO or a device is refused, unread
    found = process_files(target)
    if not found:
        raise TraceError(
            f"{target}: no such trace file, and no {target.name}.PID files "
            f"from `allocffi trace record -o {target}`"
        )
    return found
