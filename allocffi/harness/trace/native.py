"""The C side of traces, one call each: convert, summarize, replay.

Every function loads ``allocffi.harness._engine`` lazily (the harness parent never needs it for
replays: those run in workers) and turns a C failure into ``TraceError`` carrying the C
message, which names the file and, for a bad trace, the byte offset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allocffi.harness.bench import catalog
from allocffi.harness.bench.worker import cdata_to_python
from allocffi.harness.core.errors import UsageError

# Call types in the order of af_trace_summary.calls (csrc/trace/format.h is the source;
# test_trace_info checks that af_trace_call_name agrees).
CALLS: tuple[str, ...] = (
    "malloc",
    "calloc",
    "realloc",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "reallocarray",
)
MODES: tuple[str, ...] = ("serial", "threads")  # AF_TRACE_SERIAL, AF_TRACE_THREADS

PACKAGE_DIR = Path(__file__).resolve().parent


class TraceError(UsageError):
    """A trace (or raw capture) file that cannot be used, or a command that cannot be traced."""


def _load() -> tuple[Any, Any]:
    try:
        from allocffi.harness._engine import ffi, lib
    except ImportError as exc:
        raise UsageError(
            f"the harness's native module allocffi.harness._engine cannot be loaded ({exc}); "
            "build it with `make build`"
        ) from exc
    return ffi, lib


def _message(ffi: Any, err: Any, lib: Any, status: int) -> str:
    text = str(ffi.string(err.message).decode("utf-8", "replace"))
    return text or str(ffi.string(lib.af_status_text(status)).decode())


def capture_library() -> Path:
    """The built capture library (allocffi/harness/trace/_capture*.so)."""
    found = sorted(PACKAGE_DIR.glob("_capture*.so"))
    if not found:
        raise UsageError(
            f"the capture library is not built (no _capture*.so in {PACKAGE_DIR}): run `make build`"
        )
    return found[0]


def convert(raw_path: str | Path, out_path: str | Path) -> None:
    """Turn a raw capture file into a trace file."""
    ffi, lib = _load()
    err = ffi.new("af_error *")
    status = lib.af_trace_convert(str(raw_path).encode(), str(out_path).encode(), err)
    if status != 0:
        raise TraceError(_message(ffi, err, lib, status))


def summarize(path: str | Path) -> dict[str, Any]:
    """Read and validate a trace; the af_trace_summary fields as a dict (arrays as lists)."""
    ffi, lib = _load()
    err = ffi.new("af_error *")
    out = ffi.new("af_trace_summary *")
    status = lib.af_trace_summarize(str(path).encode(), out, err)
    if status != 0:
        raise TraceError(_message(ffi, err, lib, status))
    s = out[0]
    command_bytes = bytes(ffi.buffer(s.command, min(s.command_len, len(s.command) - 1)))
    result: dict[str, Any] = {}
    for name, _field in ffi.typeof(s).fields:
        value = getattr(s, name)
        if name == "command":
            continue
        if isinstance(value, ffi.CData):
            result[name] = list(value)
        else:
            result[name] = value
    result["command"] = [a.decode("utf-8", "replace") for a in command_bytes.split(b"\0") if a]
    result["command_truncated"] = s.command_len >= len(s.command)
    return result


def replay_once(path: str | Path, allocator: str, touch: str, mode: str) -> dict[str, Any]:
    """One replay in this process (a worker's job); the af_trace_replay_result fields."""
    ffi, lib = _load()
    path_c = ffi.new("char[]", str(path).encode())
    allocator_c = ffi.new("char[]", allocator.encode())
    config = ffi.new(
        "af_trace_replay_config *",
        {
            "path": path_c,
            "allocator": allocator_c,
            "touch": catalog.TOUCH_POLICIES.index(touch),
            "mode": MODES.index(mode),
        },
    )
    out = ffi.new("af_trace_replay_result *")
    err = ffi.new("af_error *")
    status = lib.af_trace_replay(config, out, err)
    if status != 0:
        raise TraceError(f"[{status}] {_message(ffi, err, lib, status)}")
    result: dict[str, Any] = cdata_to_python(ffi, out[0])
    return result
