"""Files the user names for writing: checked before any work, written atomically after it.

- ``check_output`` runs before anything is measured, for every output of a command: the
  directory exists and takes a new file, the path is not a directory, a device or a FIFO, its
  name fits the file system, and, for an image, the extension is a format the plots write.
  A long run therefore never ends in an unwritable file.
- ``write_atomically`` is the one way a results file is written: a temporary file in the
  same directory, flushed to disk, then renamed over the target, so that a crash or Ctrl-C
  never leaves half a report behind. ``atomic_path`` is the same for a file another writer
  fills (the C trace converter). The path ``-`` means standard output.

Invariant: every failure is a ``UsageError`` of one line naming the option, the path and
the fix.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from allocffi.harness.core.errors import UsageError
from allocffi.harness.core.inputs import os_error, shown

STDOUT = "-"  # as a path: standard output
PLOT_SUFFIXES: tuple[str, ...] = (".png", ".svg", ".pdf")
# The temporary file: short, so that it fits wherever the target's name fits.
_TEMP_PREFIX = ".allocffi-"
_TEMP_SUFFIX = ".tmp"


def _name_max(directory: str) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_output(
    path: str | Path,
    what: str,
    allowed_suffixes: Collection[str] | None = None,
    *,
    stdout_ok: bool = True,
    name_room: int = 0,
) -> None:
    """UsageError unless ``path`` can receive ``what`` (e.g. ``--json``); touches nothing.

    ``allowed_suffixes``: the extensions accepted (lower case, with the dot), None for any.
    ``name_room``: characters the writer appends to the name (``FILE.PID`` of a trace).
    """
    text = str(path)
    if text == STDOUT:
        if stdout_ok:
            return
        raise UsageError(f"{what} needs a file name: this output does not go to standard output")
    if text == "":
        raise UsageError(f"{what}: the path is empty; give a file name")
    if "\0" in text:
        raise UsageError(f"{what} {shown(path)}: the path holds a NUL byte; give a plain file name")
    target = Path(text)
    if allowed_suffixes is not None and target.suffix.lower() not in allowed_suffixes:
        found = f"'{target.suffix}'" if target.suffix else "no extension"
        *most, last = allowed_suffixes
        choices = f"{', '.join(most)} or {last}" if most else last
        raise UsageError(
            f"{what} {shown(path)}: the format comes from the extension and {found} is not one "
            f"it writes; use {choices}"
        )
    directory = str(target.parent) or "."
    limit = _name_max(directory) if os.path.isdir(directory) else 255
    if len(os.fsencode(target.name)) + name_room > limit:
        raise UsageError(
            f"{what} {shown(path)}: the file name is longer than the {limit - name_room} bytes this "
            "file system allows; use a shorter name"
        )
    try:
        mode: int | None = os.stat(text).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None  # a new file; its directory is checked below
    except OSError as exc:
        raise os_error(what, path, exc, verb="write") from exc
    if mode is not None and stat.S_ISDIR(mode):
        example = target / f"results{next(iter(allowed_suffixes or ['.json']))}"
        raise UsageError(
            f"{what} {shown(path)} is a directory: give a file name inside it (for example {shown(example)})"
        )
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(
            f"{what} {shown(path)} exists and is not a regular file: give a file name"
            + (" (or '-' for standard output)" if stdout_ok else "")
        )
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise UsageError(
                f"{what} {shown(path)}: {shown(directory)} is a file, not a directory; fix the path"
            )
        raise UsageError(
            f"{what} {shown(path)}: the directory {shown(directory)} does not exist; create it first"
        )
    try:  # the rename needs a new file in the directory: prove one can be made
        fd, probe = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"cannot write {what} {shown(path)}: the directory {shown(directory)} does not take new "
            f"files ({exc.strerror or exc}); choose another directory"
        ) from exc
    if mode is not None and not os.access(text, os.W_OK):
        raise UsageError(f"cannot write {what} {shown(path)}: the file is read-only; choose another path")


def require_matplotlib() -> Any:
    """The pyplot module with a file-only backend; UsageError when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError(
            "--plot needs matplotlib: pip install 'allocffi[bench]' (or pip install matplotlib)"
        ) from exc
    return plt


def check_outputs(
    files: Mapping[str, str | None], plot: str | None = None, plot_option: str = "--plot"
) -> None:
    """Every output of one command, checked at once before it runs (``files``: option -> path).

    At most one of ``files`` may be ``-`` (standard output); a plot needs a file with an image
    extension, and matplotlib.
    """
    if sum(path == STDOUT for path in files.values()) > 1:
        chosen = ", ".join(option for option, path in files.items() if path == STDOUT)
        raise UsageError(
            f"{chosen}: only one output can be '-' (standard output); give the others file names"
        )
    for option, path in files.items():
        if path is not None:
            check_output(path, option)
    if plot is not None:
        check_output(plot, plot_option, PLOT_SUFFIXES, stdout_ok=False)
        require_matplotlib()


def save_figure(figure: Any, path: str | Path, what: str = "--plot", **options: Any) -> None:
    """A matplotlib figure written atomically, in the format its extension names."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lower().lstrip("."), **options)
    write_atomically(path, buffer.getvalue(), what)


def _new_file_mode(target: Path) -> int:
    """The existing file's permissions, or what a plain open() would give a new file."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_directory(directory: str) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot sync a directory: the rename stands
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str) -> Iterator[Path]:
    """A temporary path to fill; renamed to ``path`` when the block ends without error."""
    target = Path(path)
    directory = str(target.parent) or "."
    try:
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=directory)
        os.close(fd)
    except OSError as exc:
        raise os_error(what, path, exc, verb="write") from exc
    try:
        yield Path(temp)
        os.chmod(temp, _new_file_mode(target))
        os.replace(temp, target)
    except OSError as exc:
        raise os_error(what, path, exc, verb="write") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    _fsync_directory(directory)


def write_atomically(path: str | Path, data: str | bytes, what: str = "the results") -> None:
    """Write ``data`` (text as UTF-8) to ``path`` all at once, or to standard output for ``-``."""
    if str(path) == STDOUT:
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(data)
            sys.stdout.flush()
        return
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, what) as temp, open(temp, "wb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())


__all__ = [
    "PLOT_SUFFIXES",
    "STDOUT",
    "atomic_path",
    "check_output",
    "check_outputs",
    "require_matplotlib",
    "save_figure",
    "write_atomically",
]
