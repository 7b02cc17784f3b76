"""``allocffi trace import memray``: a memray capture turned into a trace.

memray's own reader (``memray.FileReader(path).get_allocation_records()``) yields one record per
call in order; this module writes them as a raw capture (the format the capture library writes,
csrc/trace/format.h) with the record index as sequence number, and the C converter does the rest
(dense ids, unknown frees), so an imported trace and a recorded one are the same kind of file.

How memray's allocator kinds map:
- MALLOC, CALLOC, VALLOC, PVALLOC, MEMALIGN, ALIGNED_ALLOC, POSIX_MEMALIGN, FREE: the same calls.
  memray does not keep nmemb or the alignment: calloc is 1 x size, and the aligned calls get
  alignment 16 (posix_memalign's return code is 0: memray records successful calls only).
- REALLOC: memray records a realloc as a FREE of the old block immediately followed, on the same
  thread, by the REALLOC of the new one; the two become one realloc. A REALLOC with no such FREE
  is realloc(NULL, size).
- MMAP, MUNMAP and the PYMALLOC_* kinds are not malloc-family calls: they are left out and counted.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allocffi.harness.core import inputs, outputs
from allocffi.harness.core.errors import UsageError
from allocffi.harness.trace import files, native

RAW_MAGIC = b"AFRAWTR\n"
RAW_VERSION = 1
# Raw tags (format.h's TR_* call types).
TAGS = {name: i for i, name in enumerate(native.CALLS)}
DEFAULT_ALIGN = 16


@dataclass
class ImportStats:
    records: int = 0
    calls: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # memray kind -> records left out


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _event(tag: str, *values: int) -> bytes:
    return bytes([TAGS[tag]]) + b"".join(_varint(v) for v in values)


def _require_memray() -> Any:
    try:
        import memray
    except ImportError as exc:
        raise UsageError("importing memray captures needs memray: pip install 'allocffi[memray]'") from exc
    return memray


def raw_events(records: Iterable[Any], stats: ImportStats, kinds: Any) -> list[tuple[int, bytes]]:
    """(memray thread id, raw event) per call, in order; ``kinds`` is memray.AllocatorType."""
    events: list[tuple[int, bytes]] = []
    pending_free: tuple[int, int, int] | None = None  # (tid, seq, address) of a FREE that may open a realloc
    seq = 0

    def flush_free() -> None:
        nonlocal pending_free
        if pending_free is not None:
            tid, free_seq, address = pending_free
            events.append((tid, _event("free", free_seq, address)))
            stats.calls += 1
            pending_free = None

    for rec in records:
        stats.records += 1
        kind = kinds(rec.allocator).name  # an int or the enum, depending on memray's version
        if kind == "REALLOC" and pending_free is not None and pending_free[0] == rec.tid:
            tid, free_seq, old = pending_free
            pending_free = None
            events.append((tid, _event("realloc", free_seq, seq, old, rec.size, rec.address)))
            stats.calls += 1
            seq += 1
            continue
        flush_free()
        if kind == "FREE":
            pending_free = (rec.tid, seq, rec.address)
        elif kind == "REALLOC":
            events.append((rec.tid, _event("realloc", seq, seq + 1, 0, rec.size, rec.address)))
            seq += 1
        elif kind in ("MALLOC", "VALLOC", "PVALLOC"):
            events.append((rec.tid, _event(kind.lower(), seq, rec.size, rec.address)))
        elif kind == "CALLOC":
            events.append((rec.tid, _event("calloc", seq, 1, rec.size, rec.address)))
        elif kind in ("MEMALIGN", "ALIGNED_ALLOC"):
            events.append((rec.tid, _event(kind.lower(), seq, DEFAULT_ALIGN, rec.size, rec.address)))
        elif kind == "POSIX_MEMALIGN":
            events.append((rec.tid, _event("posix_memalign", seq, DEFAULT_ALIGN, rec.size, rec.address, 0)))
        else:
            stats.skipped[kind] = stats.skipped.get(kind, 0) + 1
            continue
        if kind != "FREE":
            stats.calls += 1
        seq += 1
    flush_free()
    return events


def write_raw(path: Path, events: list[tuple[int, bytes]], pid: int, start_ns: int, command: bytes) -> None:
    """A raw capture file: header, then one chunk per run of events of one thread."""
    threads: dict[int, int] = {}
    with open(path, "wb") as out:
        out.write(
            RAW_MAGIC
            + struct.pack("<IIII", RAW_VERSION, pid, 0, 0)
            + struct.pack("<QI", start_ns, len(command))
        )
        out.write(command)
        i = 0
        while i < len(events):
            tid = events[i][0]
            j = i
            while j < len(events) and events[j][0] == tid and j - i < 65536:
                j += 1
            body = b"".join(e for _, e in events[i:j])
            index = threads.setdefault(tid, len(threads))
            out.write(struct.pack("<II", index, len(body)) + body)
            i = j


def import_capture(capture: str | Path, output: str | Path) -> ImportStats:
    """Convert a memray capture file into the trace ``output``."""
    source = inputs.check_input(capture, "memray capture")
    outputs.check_output(output, "-o", stdout_ok=False)
    memray = _require_memray()
    try:
        reader = memray.FileReader(str(source))
    except Exception as exc:  # memray raises plain OSError/ValueError/IOError variants
        raise native.TraceError(f"{source}: not a memray capture memray can read ({exc})") from exc
    meta = reader.metadata
    if getattr(meta.file_format, "name", "ALL_ALLOCATIONS") != "ALL_ALLOCATIONS":
        raise native.TraceError(
            f"{source}: written with --aggregate, which keeps no call sequence; record without it"
        )
    stats = ImportStats()
    try:
        events = raw_events(reader.get_allocation_records(), stats, memray.AllocatorType)
    except Exception as exc:
        raise native.TraceError(f"{source}: memray could not read its records ({exc})") from exc
    command = meta.command_line.encode("utf-8", "replace").replace(b" ", b"\0")
    with outputs.atomic_path(output, "-o") as temp:
        raw = temp.with_name(temp.name + files.RAW_SUFFIX)
        write_raw(raw, events, int(meta.pid), int(meta.start_time.timestamp() * 1e9), command)
        try:
            native.convert(raw, temp)
        finally:
            raw.unlink(missing_ok=True)
    return stats
