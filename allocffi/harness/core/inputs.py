"""Files the user names for reading: checked, bounded, and parsed without surprises.

Every command reads its inputs through here, before any measured work:
- ``check_input``: the path names a regular file this process may read (not a FIFO, which
  would block forever, not a device such as /dev/zero, which never ends, not a directory).
- ``read_user_file``: the same, then at most ``max_bytes`` read from a descriptor opened
  without blocking; ``read_user_text`` decodes it as UTF-8.
- ``parse_json`` / ``parse_toml``: nesting and number lengths bounded before the parser sees
  the text, so a hostile file ends in one line naming the file and the line, never in a
  RecursionError or Python's int-conversion limit.

Invariant: every failure is a ``UsageError`` of one line naming what was read, the path and
the fix.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from allocffi.harness.core.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# Deeper than any file allocffi writes or reads (a saved report nests about 6 levels).
MAX_NESTING = 32
# Digits (and TOML's '_' separators) in one number: 2**64 has 20; a float's precision ends near 17.
MAX_NUMBER_DIGITS = 64
# The largest results, report or workload file read (a saved run with RSS curves is a few MB).
MAX_TEXT_BYTES = 128 << 20
# Longest path shown whole in a message; a longer one is cut in the middle.
_SHOWN_PATH = 160

_FIXES = {
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "check the symbolic links on the path",
}


def shown(path: str | Path) -> str:
    """``path`` for a one-line message: whole, or cut in the middle when very long."""
    text = str(path).replace("\n", "\\n")
    if len(text) <= _SHOWN_PATH:
        return text
    return f"{text[:100]}...{text[-50:]} ({len(text)} characters)"


def os_error(what: str, path: str | Path, exc: OSError, verb: str = "read") -> UsageError:
    """The one-line UsageError for an OSError on ``path``, with what to do about it."""
    reason = exc.strerror or str(exc)
    fix = _FIXES.get(exc.errno or 0)
    return UsageError(f"cannot {verb} {what} {shown(path)}: {reason}" + (f"; {fix}" if fix else ""))


def _not_regular(what: str, path: str | Path, mode: int) -> UsageError:
    kind = (
        "a directory"
        if stat.S_ISDIR(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    return UsageError(f"{what} {shown(path)} is {kind}: give the path of a regular file")


def check_input(path: str | Path, what: str) -> Path:
    """``path`` if it names a regular file this process may read; else a UsageError."""
    if str(path) == "":
        raise UsageError(f"{what}: the path is empty; give a file")
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        if isinstance(exc, OSError):
            raise os_error(what, path, exc) from exc
        raise UsageError(f"cannot read {what} {shown(path)}: the path holds a NUL byte") from exc
    if not stat.S_ISREG(mode):
        raise _not_regular(what, path, mode)
    if not os.access(path, os.R_OK):
        raise UsageError(f"cannot read {what} {shown(path)}: permission denied; check its permissions")
    return Path(path)


def read_user_file(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; never blocks on a FIFO or device."""
    check_input(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise os_error(what, path, exc) from exc
    try:
        mode = os.fstat(fd).st_mode  # the file opened may not be the one checked: check again
        if not stat.S_ISREG(mode):
            raise _not_regular(what, path, mode)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise os_error(what, path, exc) from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise UsageError(
            f"{what} {shown(path)} is larger than {max_bytes:,} bytes: this is not a file allocffi wrote "
            "(give the right file)"
        )
    return data


def read_user_text(path: str | Path, what: str, max_bytes: int) -> str:
    """``read_user_file`` decoded as UTF-8."""
    data = read_user_file(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(
            f"{what} {shown(path)}: line {line}: not UTF-8 text (byte {exc.start}); give a text file"
        ) from exc


# --------------------------------------------------------------------------
# Bounded parsing
# --------------------------------------------------------------------------


def _check_shape(text: str, source: str, toml: bool) -> None:
    """UsageError when brackets nest deeper than MAX_NESTING or a number is too long.

    Scans outside strings (and TOML comments) only; the parser still judges the syntax.
    """
    depth = 0
    digits = 0
    line = 1
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        if ch in "0123456789" or (ch == "_" and digits):
            digits += 1
            if digits > MAX_NUMBER_DIGITS:
                raise UsageError(
                    f"{source}: line {line}: a number with more than {MAX_NUMBER_DIGITS} digits; "
                    "no value allocffi reads is that long"
                )
            i += 1
            continue
        digits = 0
        if ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise UsageError(
                    f"{source}: line {line}: lists and tables nested deeper than {MAX_NESTING} levels; "
                    "no file allocffi reads nests that deep"
                )
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "#" and toml:
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch == '"' or (ch == "'" and toml):
            i, line = _skip_string(text, i, line)
            continue
        i += 1


def _skip_string(text: str, start: int, line: int) -> tuple[int, int]:
    """The index just past the string opening at ``start`` (JSON or TOML quoting), and the line."""
    quote = text[start]
    triple = text.startswith(quote * 3, start)
    closing = quote * 3 if triple else quote
    i = start + len(closing)
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and quote == '"':
            i += 2
            continue
        if ch == "\n":
            line += 1
            if not triple:  # an unterminated one-line string: let the parser say so
                return i + 1, line
        if text.startswith(closing, i):
            i += len(closing)
            while triple and i < n and text[i] == quote:  # TOML allows up to two quotes before the end
                i += 1
            return i, line
        i += 1
    return n, line


def parse_json(text: str, source: str) -> Any:
    """JSON with bounded nesting and numbers; UsageError naming ``source`` otherwise."""
    _check_shape(text, source, toml=False)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{source}: not valid JSON: {exc}") from exc


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML with bounded nesting and numbers; UsageError naming ``source`` otherwise."""
    _check_shape(text, source, toml=True)
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise UsageError(f"{source}: not valid TOML: {exc}") from exc


__all__ = [
    "MAX_NESTING",
    "MAX_NUMBER_DIGITS",
    "MAX_TEXT_BYTES",
    "check_input",
    "os_error",
    "parse_json",
    "parse_toml",
    "read_user_file",
    "read_user_text",
    "shown",
]
