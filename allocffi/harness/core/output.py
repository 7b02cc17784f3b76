"""Where a command's files go: checked before any run, written whole.

``STDOUT`` ("-") as a path means standard output. ``ensure_writable`` is called before the first
measured run, so a long run never dies at the end on a bad path; ``write_text`` replaces a file
atomically, so a crash never leaves half a report behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from allocffi.harness.core.errors import UsageError

STDOUT = "-"  # as a path: write to standard output


def ensure_writable(path: str | Path, what: str) -> Path:
    """Create the parent directory if needed and prove the file can be written.

    An existing file is left untouched; a new one is created and removed.
    """
    target = Path(path)
    if str(path) == STDOUT:
        return target
    if target.is_dir():
        raise UsageError(f"{what} path {target} is a directory, not a file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        existed = target.exists()
        with open(target, "a"):
            pass
        if not existed:
            target.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write {what} to {target}: {exc.strerror or exc}") from exc
    return target


def write_text(path: str | Path, text: str) -> None:
    """Write atomically: a crash never leaves half a report behind ("-": standard output)."""
    if str(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
