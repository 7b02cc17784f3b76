"""The raw fast path: C allocator calls with NO checks. Like ctypes, a mistake here can crash.

Nothing in this module validates anything: passing a freed, foreign or made-up pointer, the
wrong size or alignment, using a handle after its allocator was closed, or reading past the end
of a block corrupts memory or kills the process. Use it where the per-call cost of the safe layer
(a Block object, a lock, a table of live blocks) matters and the caller already knows the
arguments are right. Everything reachable without the word ``unchecked`` is safe.

Memory from this module is NOT tracked by the safe layer: it has no Block, ``Allocator.free``
does not accept it, and ``Allocator.close()``/``reset()`` release it only where the C allocator
itself does (bump, slab, large, mimalloc-heap, jemalloc-arena release everything; libc, mimalloc,
jemalloc and tcmalloc do not: free it yourself before close()). Never pass a safe Block's address
to the raw free: the Block would stay alive over freed memory.

The functions are the cffi ``lib`` functions themselves, bound once: one call costs one cffi call.

    from allocffi import unchecked
    h = unchecked.handle(allocator)           # af_allocator* of an open allocffi.Allocator
    p = unchecked.alloc(h, 64, 16)            # void* cdata, ffi.NULL on failure
    unchecked.free(h, p, 64, 16)              # -> status: 0 (AF_OK) or e.g. AF_ERR_NOT_OWNED

Pointers are cffi ``void *`` cdata; ``address(p)`` gives the int, ``pointer(address)`` the cdata.

The fastest single-block path works on ints only. cffi calls functions of several arguments
through a generic wrapper and releases the GIL around each call, which costs more than the
allocation; ``alloc_address``/``free_address`` are vectorcall functions of allocffi's own
``allocffi._safe`` raw path that call the same C entry points and keep the GIL::

    h = unchecked.handle_address(allocator)   # int
    addr = unchecked.alloc_address(h, 64)     # int, 0 on failure
    unchecked.free_address(h, addr, 64)       # -> status
``free``'s return value is the af_status: bump, slab and large know their own memory in O(1) and
refuse a foreign pointer with ``AF_ERR_NOT_OWNED`` instead of corrupting themselves (the system
allocators cannot tell: a foreign pointer crashes them). ``free_checked`` raises on that status.

Batch calls fill or read a preallocated pointer array (``pointer_array(n)``) in one C call:

    ptrs = unchecked.pointer_array(1000)
    if unchecked.alloc_batch(h, 48, 16, 1000, ptrs) != 1000: ...   # all or nothing
    freed = unchecked.free_batch(h, ptrs, 1000, 48, 16)             # stops at a refused pointer

Each call takes the allocator's C lock, so a handle may be shared between threads; the safe layer
does not see these calls (mixing both on one allocator is fine as long as each block stays on
the side that allocated it).
"""

from __future__ import annotations

from typing import Any

from allocffi import _safe, errors
from allocffi._native import ffi, lib
from allocffi.interface import Allocator

__all__ = [
    "AF_ERR_NOT_OWNED",
    "AF_OK",
    "address",
    "alloc",
    "alloc_address",
    "alloc_batch",
    "buffer",
    "calloc",
    "ffi",
    "free",
    "free_address",
    "free_batch",
    "free_checked",
    "handle",
    "handle_address",
    "last_error",
    "noop",
    "pointer",
    "pointer_array",
    "realloc",
    "usable_size",
]

AF_OK: int = lib.AF_OK
AF_ERR_NOT_OWNED: int = lib.AF_ERR_NOT_OWNED

#: alloc(h, size, align) -> void* (ffi.NULL on failure; last_error(h) says why)
alloc = lib.af_alloc
#: calloc(h, size, align) -> zeroed void* or ffi.NULL
calloc = lib.af_calloc
#: free(h, ptr, size, align) -> af_status (size/align exactly as allocated)
free = lib.af_free
#: realloc(h, ptr, old_size, new_size, align) -> void* or ffi.NULL (then ptr is still valid)
realloc = lib.af_realloc
#: usable_size(h, ptr, size, align) -> int
usable_size = lib.af_usable_size
#: alloc_batch(h, size, align, n, out) -> n, or 0 with nothing allocated
alloc_batch = lib.af_alloc_batch
#: free_batch(h, ptrs, n, size, align) -> how many were freed (stops at the first refused)
free_batch = lib.af_free_batch
#: last_error(h) -> af_status of the most recent failure on this handle
last_error = lib.af_last_error
#: noop() -> None: one bare cffi call, the floor for overhead measurements
noop = lib.af_noop

#: alloc_address(h, size, align=16) -> int address, 0 on failure (h from handle_address)
alloc_address = _safe.alloc_address
#: free_address(h, address, size, align=16) -> af_status
free_address = _safe.free_address


def handle(allocator: Allocator) -> Any:
    """The ``af_allocator *`` of an open safe allocator (thread-safe wrapper).

    Valid until ``allocator.close()``; using it afterwards is a use-after-free.
    """
    if not isinstance(allocator, Allocator):
        raise TypeError(f"handle() expects an allocffi.Allocator, not {type(allocator).__name__}")
    return ffi.cast("af_allocator *", handle_address(allocator))


def handle_address(allocator: Allocator) -> int:
    """The int address of ``handle(allocator)``, for ``alloc_address``/``free_address``."""
    if not isinstance(allocator, Allocator):
        raise TypeError(f"handle_address() expects an allocffi.Allocator, not {type(allocator).__name__}")
    return int(allocator._require_open("handle"))


def address(ptr: Any) -> int:
    """The int address of a ``void *`` cdata."""
    return int(ffi.cast("uintptr_t", ptr))


def pointer(addr: int) -> Any:
    """The ``void *`` cdata of an int address."""
    return ffi.cast("void *", addr)


def pointer_array(n: int) -> Any:
    """A zeroed ``void *[n]`` for alloc_batch/free_batch (owned by the returned cdata)."""
    return ffi.new("void *[]", n)


def buffer(ptr: Any, size: int) -> Any:
    """A writable buffer over ``size`` bytes at ``ptr`` (no lifetime tracking: do not outlive the block)."""
    return ffi.buffer(ffi.cast("char *", ptr), size)


def free_checked(h: Any, ptr: Any, size: int, align: int = 16) -> None:
    """free(), raising ForeignBlockError (or the matching error) when the allocator refuses ``ptr``."""
    status = lib.af_free(h, ptr, size, align)
    if status != AF_OK:
        raise errors.error_for_status(status, "unchecked.free_checked")
