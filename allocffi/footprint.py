"""What a system library says about its own memory, for ``SystemAllocator.stats()``.

allocffi counts requested bytes itself (``bytes_in_use``, ``peak_bytes_in_use``), which are
equal for every library running the same work. What differs is what each library keeps from
the OS for them, and only the library can say. ``library_footprint`` asks it (C:
``af_get_footprint``, csrc/footprint.c) and returns every figure, ``None`` where the library
cannot tell: jemalloc gives allocated/active/resident/mapped; mimalloc its committed bytes, their
peak and the process's peak RSS; tcmalloc allocated/resident/mapped; glibc allocated/mapped. The
figures are the library's, for the whole process (a ``jemalloc-arena`` reports all of jemalloc;
glibc's include Python's own allocations).
"""

from __future__ import annotations

from typing import Any

from allocffi._native import ffi as _ffi
from allocffi._native import lib as _lib

__all__ = ["FOOTPRINT_FIELDS", "library_footprint"]

#: footprint key -> the AF_FOOTPRINT_* bit that says it is known
FOOTPRINT_FIELDS: dict[str, int] = {
    "allocated_bytes": _lib.AF_FOOTPRINT_ALLOCATED,
    "active_bytes": _lib.AF_FOOTPRINT_ACTIVE,
    "resident_bytes": _lib.AF_FOOTPRINT_RESIDENT,
    "mapped_bytes": _lib.AF_FOOTPRINT_MAPPED,
    "peak_mapped_bytes": _lib.AF_FOOTPRINT_PEAK_MAPPED,
    "process_peak_resident_bytes": _lib.AF_FOOTPRINT_PROCESS_PEAK_RESIDENT,
}


def library_footprint(handle: Any) -> dict[str, int | None] | None:
    """The library's figures for the allocator behind ``handle`` (an ``af_allocator *``, open),
    each ``None`` when unknown; ``None`` altogether for an allocator that is not a system one."""
    out = _ffi.new("af_footprint *")
    if _lib.af_get_footprint(handle, out) != _lib.AF_OK:
        return None
    return {
        name: int(getattr(out, name)) if out.known & bit else None for name, bit in FOOTPRINT_FIELDS.items()
    }
