"""The safe Python layer: ``Allocator`` (one interface over every C allocator) and ``Block``.

A thin, typed facade over the C module ``allocffi._safe`` (csrc/python/), which does the work:

- Every operation (alloc, calloc, realloc, free, alloc_many, free_many, usable_size, reset, trim,
  close) is one C method that checks everything itself before any allocator call: the
  arguments, that a Block is a Block, is alive, belongs to this allocator and is from the current
  generation (no reset() since it was allocated), that the allocator is open, that no view or
  NumPy array still uses the memory. A refusal is one reason code, turned into an exception by
  the table in :mod:`allocffi.errors`.
- A Block exports its memory through the buffer protocol (``memoryview(block)``, ``bytes``,
  ``numpy.frombuffer``); free/realloc/reset/close refuse with ``ViewsOutstandingError`` (a
  BufferError) while any export is alive, and change nothing.
- Each allocator object owns a C allocator wrapped by ``af_locked_new``, so several threads may
  call it at once; its Python-side state (the table of live blocks, the generation, the handle)
  is guarded by one lock held across the C call that changes it.
- The allocator owns the memory, a Block is a handle to it: dropping a Block without free() does
  not free the memory (it stays in ``blocks()`` until free(), reset() or close()). A Block keeps its
  allocator alive, and an allocator nobody references is closed by the garbage collector.
- After any exception, everything that was alive is still alive with its contents.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

from allocffi import errors
from allocffi.errors import StaleBlockError

try:
    from allocffi import _safe
    from allocffi._native import ffi as _ffi
    from allocffi._native import lib as _lib
except ImportError as _error:  # pragma: no cover - depends on the build
    raise ImportError(
        f"allocffi's compiled extensions are missing or broken ({_error}); build them with `make build` "
        "(or `python3 setup.py build_ext --inplace`) in a source checkout, or install the package with "
        "`pip install .`"
    ) from _error

__all__ = ["DEFAULT_ALIGN", "MAX_ALIGN", "MAX_ALLOC_SIZE", "Allocator", "Block", "Capability"]

MAX_ALLOC_SIZE: int = _lib.AF_MAX_ALLOC_SIZE
MAX_ALIGN: int = _lib.AF_MAX_ALIGN
DEFAULT_ALIGN: int = _lib.AF_DEFAULT_ALIGN

# The entry points the C layer calls (the cffi module's own: one copy of the C library; their
# names are the safe layer's table, csrc/python/entry.c) and the error table it raises through.
# Bound once, here, before any user code runs.
_safe.bind(
    {name: int(_ffi.cast("uintptr_t", _ffi.addressof(_lib, name))) for name in _safe.ENTRY_POINT_NAMES},
    errors.error_for,
)


class Capability(enum.Flag):
    """What an allocator offers beyond alloc (the AF_CAP_* bits of allocffi.h)."""

    NONE = 0
    FREE = _lib.AF_CAP_FREE  #: free() makes the memory reusable at once (bump: only at reset)
    RESET = _lib.AF_CAP_RESET  #: reset() releases every live block in one call
    TRIM = _lib.AF_CAP_TRIM  #: trim() returns cached/empty memory to the OS
    OWNS = _lib.AF_CAP_OWNS  #: ownership of an address is known in O(1) (foreign frees refused in C)
    THREAD_SAFE = _lib.AF_CAP_THREAD_SAFE  #: several threads may call it at once (always, via af_locked_new)
    THREAD_BOUND = _lib.AF_CAP_THREAD_BOUND  #: alloc/realloc/reset only on the creating thread
    SYSTEM = _lib.AF_CAP_SYSTEM  #: a process-wide allocator from a shared library


def _checked_size(size: object, op: str) -> int:
    """An int in [0, MAX_ALLOC_SIZE] (through __index__), or TypeError/InvalidSizeError naming op."""
    if isinstance(size, bool) or not hasattr(size, "__index__"):
        raise errors.error_for(errors.REASON_NOT_AN_INT, op, None, ("size", size))
    value = size.__index__()
    if value < 0:
        raise errors.error_for(errors.REASON_SIZE_NEGATIVE, op, None, ("size", value))
    if value > MAX_ALLOC_SIZE:
        raise errors.error_for(errors.REASON_SIZE_TOO_LARGE, op, None, ("size", value))
    return int(value)


# ---------------------------------------------------------------------------------------------------
# Block
# ---------------------------------------------------------------------------------------------------


class Block(_safe.BlockBase):
    """Memory from an :class:`Allocator`: ``address``, ``size`` bytes, aligned to ``align``.

    Exports its memory through the buffer protocol: ``memoryview(block)``, ``bytes(block)``,
    ``numpy.frombuffer(block)``, ``block.view()``, ``block.numpy()``. Created only by an allocator
    (``Block()`` raises TypeError). ``alive`` is True until free(), realloc() (which returns a new
    Block), or the allocator's reset() or close(); after that every use raises StaleBlockError.
    A Block is a context manager that frees it on exit.

    Read-only attributes: address, size, align, generation, exports (live buffer exports), alive,
    freed.
    """

    __slots__ = ("__weakref__",)

    @property
    def allocator(self) -> Allocator:
        """The allocator that handed this memory out."""
        owner: Allocator | None = self._owner
        if owner is None:  # only during garbage collection
            raise StaleBlockError(errors.STATE_TEXTS[self._state])
        return owner

    @property
    def usable_size(self) -> int:
        """Bytes the allocator reserved for this block (>= size); views span only ``size``."""
        return self.allocator.usable_size(self)

    def view(self) -> memoryview:
        """A writable memoryview of exactly ``size`` bytes (format 'B').

        While it exists, free/realloc/reset/close of the memory raise ViewsOutstandingError:
        release it (``view.release()`` or ``with block.view() as v:``) first.
        """
        return memoryview(self)

    def numpy(self, dtype: Any = "uint8", shape: int | tuple[int, ...] | None = None) -> Any:
        """A zero-copy, writable ``numpy.ndarray`` over the block's memory.

        ``shape=None`` gives a 1-d array covering all ``size`` bytes (size must then be a multiple
        of the dtype's itemsize); otherwise ``prod(shape) * itemsize`` must fit in ``size``.
        The array holds a buffer export: the memory cannot be freed while it is alive.
        """
        try:
            import numpy
        except ImportError as error:
            raise ImportError(
                "Block.numpy() needs numpy: pip install numpy (or 'allocffi[numpy]')"
            ) from error
        if not self.alive:
            raise StaleBlockError(errors.STATE_TEXTS[self._state])
        dt = numpy.dtype(dtype)
        itemsize = dt.itemsize
        if itemsize == 0:
            raise ValueError(f"dtype {dt} has itemsize 0; use a sized dtype")
        if shape is None:
            if self.size % itemsize:
                raise ValueError(
                    f"block size {self.size} is not a multiple of {dt} itemsize {itemsize}; pass shape="
                )
            dims: tuple[int, ...] = (self.size // itemsize,)
        else:
            dims = (shape,) if isinstance(shape, int) else tuple(shape)
            if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in dims):
                raise ValueError(f"shape must be non-negative ints, got {shape!r}")
        count = 1
        for d in dims:
            count *= d
        if count * itemsize > self.size:
            raise ValueError(
                f"shape {dims} of {dt} needs {count * itemsize} bytes but the block has {self.size}"
            )
        # frombuffer on a memoryview: the array's base chain holds the export until it dies.
        return numpy.frombuffer(memoryview(self), dtype=dt, count=count).reshape(dims)

    def free(self) -> None:
        """Give the memory back: ``block.allocator.free(block)``."""
        self.allocator.free(self)

    def realloc(self, new_size: int) -> Block:
        """``block.allocator.realloc(block, new_size)``: returns the new Block; this one dies."""
        return self.allocator.realloc(self, new_size)

    def __enter__(self) -> Block:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.alive:
            self.allocator.free(self)

    def __repr__(self) -> str:
        owner = self._owner
        where = owner.name if owner is not None else "?"
        state = "alive" if self.alive else errors.STATE_TEXTS[self._state].split(";")[0]
        return (
            f"<allocffi.Block {where} address=0x{self.address:x} size={self.size} align={self.align} "
            f"generation={self.generation} {state}>"
        )


_safe.set_block_type(Block)


# ---------------------------------------------------------------------------------------------------
# Allocator
# ---------------------------------------------------------------------------------------------------


class Allocator(_safe.AllocatorBase):
    """One native allocator behind the common interface. Build one with :func:`allocffi.open`.

    Methods: alloc, calloc, realloc, free, alloc_many, free_many, usable_size, reset, trim,
    stats, blocks, close; a context manager (close() on exit). Thread-safe.
    Properties: name, capabilities, closed, generation.
    """

    #: option names accepted by the constructor (for allocffi.open's error message)
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("Allocator is abstract: use allocffi.open(name) or one of its subclasses")

    def _adopt(self, inner: Any, keepalive: object = None) -> None:
        """Take ownership of ``inner`` (an af_allocator* cdata), wrapped for threads (subclasses)."""
        if _ffi.typeof(inner) is not _ffi.typeof("af_allocator *"):
            raise TypeError("_adopt() takes an af_allocator * cdata")
        err = _ffi.new("af_error *")
        handle = _lib.af_locked_new(inner, err)
        if handle == _ffi.NULL:  # (only when out of memory; `inner` is then leaked, never double-freed)
            raise errors.error_for_status(err.code, "af_locked_new", _message(err))
        self._attach(int(_ffi.cast("uintptr_t", handle)))
        self._keepalive = keepalive  # cffi memory the C allocator may point into (options)
        self._capabilities = Capability(self._caps)

    @property
    def capabilities(self) -> Capability:
        """What it offers: a :class:`Capability` flag (``Capability.RESET in a.capabilities``)."""
        return self._capabilities

    def stats(self) -> dict[str, Any]:
        """Counters of the C allocator (every af_stats field), plus ``name``, ``generation``,
        ``live_blocks`` (as tracked by this object) and, for the slab, ``classes`` (one dict per
        size class: class_size, in_use, free, hits, misses, slabs) and ``oversize``.
        """
        raw = _ffi.new("af_stats *")
        with self._lock:
            handle = _ffi.cast("af_allocator *", self._require_open("stats"))
            _lib.af_get_stats(handle, raw)
            result: dict[str, Any] = {field: getattr(raw, field) for field in _STATS_FIELDS}
            result["name"] = self.name
            result["generation"] = self.generation
            result["live_blocks"] = self._live_count
            self._extra_stats(handle, result)
        return result

    def __enter__(self) -> Allocator:
        self._require_open("with")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self._live_count} live blocks"
        return f"<{type(self).__name__} {self.name!r} {state}>"

    def _extra_stats(self, handle: Any, result: dict[str, Any]) -> None:
        """Allocator-specific additions to stats() (lock held)."""


_STATS_FIELDS: tuple[str, ...] = tuple(name for name, _ in _ffi.typeof("af_stats").fields)


def _message(err: Any) -> str:
    return str(_ffi.string(err.message).decode(errors="replace"))
