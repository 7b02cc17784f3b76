"""The safe Python layer: ``Allocator`` (one interface over every C allocator) and ``Block``.

Safety model (what makes this layer "safe"):

- Every argument is checked in Python before any C call: sizes, alignments, that a Block is a
  Block, is alive, belongs to this allocator and is from the current generation (no reset()
  since it was allocated), and that the allocator is open.
- A Block exports its memory through the buffer protocol (``memoryview(block)``, ``bytes``,
  ``numpy.frombuffer``); the export count lives in the C base type (csrc/python/blockbuffer.c).
  free/realloc/reset/close refuse with ``ViewsOutstandingError`` (a BufferError) while any
  export is alive, and change nothing. The state change that ends a Block's life is made in C
  together with the export check, so no view can appear in between.
- Each allocator object owns a C allocator wrapped by ``af_locked_new``: cffi releases the GIL
  around C calls, so several Python threads may be inside it at once. The Python-side state (the
  table of live blocks, the generation, the handle) lives in the C base type ``AllocatorBase``
  (csrc/python/allocstate.c) and is guarded by one lock (``self._lock``, like threading.Lock) that
  is also held across the C call which changes it, so the table always matches the C allocator.
- Fast paths: alloc, calloc, free, alloc_many and free_many first try one C call (``_try_alloc``,
  ``_try_free``, ``_try_alloc_many``, ``_try_free_many``) that takes the lock without waiting,
  allocates or frees through the af_* entry points and updates the state. It declines (returns
  None, changing nothing) for anything unusual, and the Python slow path below it then waits for
  the lock, checks everything and raises the precise error.
- The allocator owns the memory, a Block is a handle to it: dropping a Block without free() does
  not free the memory (it stays in ``blocks()`` until free(), reset() or close()). A Block keeps its
  allocator alive, and an allocator nobody references is closed by the garbage collector.
- After any exception, everything that was alive is still alive with its contents.

Capabilities are an :class:`enum.Flag`, :class:`Capability` (``Capability.RESET in a.capabilities``).
"""

from __future__ import annotations

import enum
import operator
import sys
import threading
from collections.abc import Iterable
from typing import Any, ClassVar, NoReturn

from allocffi import errors
from allocffi.errors import (
    ClosedAllocatorError,
    DoubleFreeError,
    ForeignBlockError,
    InvalidAlignmentError,
    InvalidSizeError,
    StaleBlockError,
    ThreadAffinityError,
    UnsupportedOperationError,
)

try:
    from allocffi import _blockbuffer
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

# Block lifecycle states (csrc/python/blockbuffer.c).
_ALIVE = _blockbuffer.ALIVE
_FREED = _blockbuffer.FREED
_RESET = _blockbuffer.RESET
_CLOSED = _blockbuffer.CLOSED
_MOVED = _blockbuffer.MOVED

# Bound once: attribute lookups on `_lib` cost as much as the check they guard.
_af_last_error = _lib.af_last_error
_new_block = _blockbuffer.new_block
_retire_all = _blockbuffer.retire_all

# The fast paths of AllocatorBase call the cffi module's own entry points (one copy of the C
# library; af_* still validate size and alignment). Bound once, here, before any user code runs.
_blockbuffer.bind_entry_points(
    *(
        int(_ffi.cast("uintptr_t", _ffi.addressof(_lib, name)))
        for name in ("af_alloc", "af_calloc", "af_free", "af_last_error", "af_alloc_batch", "af_free_batch")
    )
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


# ---------------------------------------------------------------------------------------------------
# Argument checks (raise before any C call)
# ---------------------------------------------------------------------------------------------------


def _checked_size(size: object, what: str = "size") -> int:
    """An int in [0, MAX_ALLOC_SIZE], or InvalidSizeError/TypeError saying what is wrong."""
    if size.__class__ is not int:
        if isinstance(size, bool) or not hasattr(size, "__index__"):
            raise TypeError(f"{what} must be an int, not {type(size).__name__}")
        size = operator.index(size)
    assert isinstance(size, int)
    if size < 0:
        raise InvalidSizeError(f"{what} must be >= 0, got {size}")
    if size > MAX_ALLOC_SIZE:
        raise InvalidSizeError(f"{what} {size} is larger than the maximum {MAX_ALLOC_SIZE} (1 TiB)")
    return size


def _checked_align(align: object) -> int:
    """A power of two in [1, MAX_ALIGN], or InvalidAlignmentError/TypeError."""
    if align.__class__ is not int:
        if isinstance(align, bool) or not hasattr(align, "__index__"):
            raise TypeError(f"align must be an int, not {type(align).__name__}")
        align = operator.index(align)
    assert isinstance(align, int)
    if align <= 0 or align & (align - 1) or align > MAX_ALIGN:
        raise InvalidAlignmentError(f"align must be a power of two between 1 and {MAX_ALIGN}, got {align}")
    return align


# ---------------------------------------------------------------------------------------------------
# Block
# ---------------------------------------------------------------------------------------------------


class Block(_blockbuffer.BlockBase):
    """Memory from an :class:`Allocator`: ``address``, ``size`` bytes, aligned to ``align``.

    Exports its memory through the buffer protocol: ``memoryview(block)``, ``bytes(block)``,
    ``numpy.frombuffer(block)``, ``block.view()``, ``block.numpy()``. Created only by an allocator
    (``Block()`` raises TypeError). ``alive`` is True until free(), realloc() (which returns a new
    Block), or the allocator's reset() or close(); after that every use raises StaleBlockError.
    A Block is a context manager that frees it on exit.

    Read-only attributes (from the C base type): address, size, align, generation, exports
    (live buffer exports), alive, freed.
    """

    __slots__ = ("__weakref__",)

    @property
    def allocator(self) -> Allocator:
        """The allocator that handed this memory out."""
        owner = self._owner
        if owner is None:  # only during garbage collection
            raise StaleBlockError(self._state_text)
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
        if self._state != _ALIVE:
            raise StaleBlockError(self._state_text)
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
        if self._state == _ALIVE:
            self.allocator.free(self)

    def __repr__(self) -> str:
        owner = self._owner
        where = owner.name if owner is not None else "?"
        state = "alive" if self._state == _ALIVE else self._state_text.split(";")[0]
        return (
            f"<allocffi.Block {where} address=0x{self.address:x} size={self.size} align={self.align} "
            f"generation={self.generation} {state}>"
        )


_blockbuffer.set_block_type(Block)


# ---------------------------------------------------------------------------------------------------
# Allocator
# ---------------------------------------------------------------------------------------------------


class Allocator(_blockbuffer.AllocatorBase):
    """One native allocator behind the common interface. Build one with :func:`allocffi.open`.

    Methods: alloc, calloc, realloc, free, alloc_many, free_many, usable_size, reset, trim,
    stats, blocks, close; a context manager (close() on exit). Thread-safe.
    """

    #: option names accepted by the constructor (for allocffi.open's error message)
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    _handle: Any  # af_allocator* (the af_locked_new wrapper); None once closed

    def __init__(self, inner: Any, keepalive: object = None) -> None:
        """Take ownership of ``inner`` (an af_allocator* cdata) and wrap it for threads.

        Only the concrete classes call this; build allocators with :func:`allocffi.open`.
        """
        if type(self) is Allocator or _ffi.typeof(inner) is not _ffi.typeof("af_allocator *"):
            raise TypeError("Allocator is abstract: use allocffi.open(name) or one of its subclasses")
        err = _ffi.new("af_error *")
        handle = _lib.af_locked_new(inner, err)
        if handle == _ffi.NULL:  # (only when out of memory; `inner` is then leaked, never double-freed)
            raise errors.error_for_status(err.code, "af_locked_new", _message(err))
        # self._lock (AllocatorBase) guards _handle, the C base's state (_live: keys are the alive
        # Blocks; _generation: reset() count, which a Block's generation must match to be used) and
        # every C call that changes them.
        self._handle = handle
        self._attach(int(_ffi.cast("uintptr_t", handle)))  # the same handle, for the fast paths
        self._keepalive = keepalive  # cffi memory the C allocator may point into (options)
        self._name: str = _ffi.string(_lib.af_name(handle)).decode()
        self._capabilities = Capability(_lib.af_caps(handle))
        self._resettable = Capability.RESET in self._capabilities
        self._thread_bound = Capability.THREAD_BOUND in self._capabilities
        self._creator_thread = threading.get_ident()
        self._stats = _ffi.new("af_stats *")

    # -- properties ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The allocator's name, e.g. ``"slab"`` or ``"mimalloc-heap"``."""
        return self._name

    @property
    def capabilities(self) -> Capability:
        """What it offers: a :class:`Capability` flag (``Capability.RESET in a.capabilities``)."""
        return self._capabilities

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._handle is None

    @property
    def generation(self) -> int:
        """How many times reset() succeeded; Blocks from an older generation are stale."""
        return self._generation

    # -- allocation ------------------------------------------------------------------------------

    def alloc(self, size: int, align: int = DEFAULT_ALIGN) -> Block:
        """``size`` bytes aligned to ``align`` (a power of two <= 4096). Contents are undefined.

        Raises InvalidSizeError, InvalidAlignmentError, OutOfMemoryError (ByteLimitError when the
        allocator's byte_limit is reached), ThreadAffinityError, ClosedAllocatorError.
        """
        block = self._try_alloc(size, align, False)
        if block is None:
            block = self._alloc_slow(size, align, False)
        return block

    def calloc(self, size: int, align: int = DEFAULT_ALIGN) -> Block:
        """Like alloc(), but the memory is zeroed."""
        block = self._try_alloc(size, align, True)
        if block is None:
            block = self._alloc_slow(size, align, True)
        return block

    def _alloc_slow(self, size: object, align: object, zeroed: bool) -> Block:
        """alloc/calloc when the fast path declined: check, wait for the lock, allocate."""
        size = _checked_size(size)
        align = _checked_align(align)
        with self._lock:
            self._open_handle()
            block: Block = self._alloc_held(size, align, zeroed)
        return block

    def realloc(self, block: Block, new_size: int) -> Block:
        """Resize: returns a new Block with the first min(old, new) bytes of content (same align).

        The old Block dies (StaleBlockError on use) whether or not the memory moved. On failure
        (e.g. OutOfMemoryError) the old Block is untouched and still alive.
        """
        new_size = _checked_size(new_size, "new_size")
        with self._lock:
            handle = self._open_handle()
            self._check_owned(block, "realloc")
            block._retire(_MOVED)  # ViewsOutstandingError while views exist: nothing changed
            ptr = _lib.af_realloc(
                handle, _ffi.cast("void *", block.address), block.size, new_size, block.align
            )
            if ptr == _ffi.NULL:
                block._revive()
                raise self._failure(f"realloc({block.size} -> {new_size}, align={block.align})")
            address = int(_ffi.cast("uintptr_t", ptr))
            del self._live[block]
            new_block = _new_block(address, new_size, block.align, self._generation, self)
            self._live[new_block] = None
        return new_block

    def free(self, block: Block) -> None:
        """Give a block's memory back. The Block dies: any later use raises StaleBlockError.

        Raises DoubleFreeError, ForeignBlockError, StaleBlockError, ViewsOutstandingError (views
        still point into the memory: release them first), ClosedAllocatorError, TypeError.
        """
        if self._try_free(block) is None:
            self._free_slow(block)

    def _free_slow(self, block: Block) -> None:
        """free() when the fast path declined: wait for the lock, then free or raise the precise error."""
        with self._lock:
            self._open_handle()
            if self._free_held(block) is None:
                self._check_owned(block, "free")  # raises
                raise AssertionError("_free_held refused a valid block")  # pragma: no cover

    def alloc_many(self, n: int, size: int, align: int = DEFAULT_ALIGN) -> list[Block]:
        """``n`` blocks of one size in one C call (all or nothing).

        On any failure nothing is allocated and the precise error is raised (as for alloc()).
        """
        blocks: list[Block] | None = self._try_alloc_many(n, size, align)
        if blocks is None:
            n = _checked_size(n, "n")
            size = _checked_size(size)
            align = _checked_align(align)
            with self._lock:
                self._open_handle()
                blocks = self._alloc_many_held(n, size, align)
        return blocks

    def free_many(self, blocks: Iterable[Block]) -> None:
        """Free many blocks in one C call (one C allocator call per run of equal size and align).

        Every block is checked first (and none may have views or be listed twice); if any check
        fails nothing is freed. Should the C allocator refuse one, the blocks before it are freed
        and the rest stay alive.
        """
        if blocks.__class__ is not list:
            blocks = list(blocks)
        assert isinstance(blocks, list)
        if self._try_free_many(blocks) is None:
            with self._lock:
                self._open_handle()
                if self._free_many_held(blocks) is None:
                    self._raise_free_many_error(blocks)

    def _raise_free_many_error(self, blocks: list[Block]) -> NoReturn:
        """The precise error for a free_many() list that _free_many_held() turned down."""
        seen: set[int] = set()
        for b in blocks:
            self._check_owned(b, "free_many")
            if id(b) in seen:
                raise DoubleFreeError(f"free_many: {b!r} appears twice in the list; free each block once")
            seen.add(id(b))
        raise AssertionError("_free_many_held refused a valid list")  # pragma: no cover

    def usable_size(self, block: Block) -> int:
        """Bytes the allocator actually reserved for ``block`` (>= block.size)."""
        with self._lock:
            handle = self._open_handle()
            self._check_owned(block, "usable_size")
            ptr = _ffi.cast("void *", block.address)
            return int(_lib.af_usable_size(handle, ptr, block.size, block.align))

    # -- whole-allocator operations ---------------------------------------------------------------

    def reset(self) -> None:
        """Release every live block at once (only if ``Capability.RESET in capabilities``).

        Every Block allocated before becomes stale. Raises UnsupportedOperationError for
        allocators without reset, ViewsOutstandingError (nothing changed) while views exist,
        ThreadAffinityError from a thread other than a thread-bound allocator's creator.
        """
        with self._lock:
            handle = self._open_handle()
            if not self._resettable:
                raise UnsupportedOperationError(
                    f"{self._name} cannot reset(): free blocks one by one, or use an allocator whose "
                    f"capabilities include RESET (bump, mimalloc-heap, jemalloc-arena)"
                )
            self._check_thread("reset")
            blocks = list(self._live)
            _retire_all(blocks, _RESET)
            if _lib.af_reset(handle) != _lib.AF_OK:
                for b in blocks:
                    b._revive()
                raise self._failure("reset")
            self._live.clear()
            self._advance_generation()

    def trim(self) -> None:
        """Return cached or empty memory to the OS where the allocator can (a no-op otherwise)."""
        with self._lock:
            _lib.af_trim(self._open_handle())

    def stats(self) -> dict[str, Any]:
        """Counters of the C allocator (every af_stats field), plus ``name``, ``generation``,
        ``live_blocks`` (as tracked by this object) and, for the slab, ``classes`` (one dict per
        size class: class_size, in_use, free, hits, misses, slabs) and ``oversize``.
        """
        with self._lock:
            handle = self._open_handle()
            raw = self._stats
            _lib.af_get_stats(handle, raw)
            result: dict[str, Any] = {field: getattr(raw, field) for field in _STATS_FIELDS}
            result["name"] = self._name
            result["generation"] = self._generation
            result["live_blocks"] = len(self._live)
            self._extra_stats(handle, result)
        return result

    def blocks(self) -> list[Block]:
        """A snapshot of the live Blocks (including ones the caller dropped without freeing)."""
        with self._lock:
            self._open_handle()
            return list(self._live)

    def close(self) -> None:
        """Free every live block and destroy the C allocator. Idempotent.

        Refuses with ViewsOutstandingError (and changes nothing) while memoryviews or arrays
        point into any live block. Afterwards every method raises ClosedAllocatorError and every
        Block is stale.
        """
        with self._lock:
            if self._handle is None:
                return
            self._release_all()

    def __enter__(self) -> Allocator:
        with self._lock:
            self._open_handle()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else f"{len(self._live)} live blocks"
        return f"<{type(self).__name__} {self._name!r} {state}>"

    def __del__(self) -> None:
        # Reached when nothing refers to the allocator any more, so no Block does either (a Block
        # holds its allocator). Views hold their Block, so normally none exist; if some do (a
        # garbage cycle holding a memoryview), the memory is leaked rather than freed under it.
        try:
            if sys.is_finalizing() or getattr(self, "_handle", None) is None:
                return
            if not self._lock.acquire(False):
                return
            try:
                if self._handle is not None:
                    self._release_all()
            finally:
                self._lock.release()
        except Exception:  # never raise from a finalizer; leaking is the safe failure
            return

    # -- internals (call with self._lock held) ----------------------------------------------------

    def _release_all(self) -> None:
        handle = self._handle
        blocks = list(self._live)
        _retire_all(blocks, _CLOSED)  # ViewsOutstandingError: nothing changed
        process_wide = not self._resettable and Capability.SYSTEM in self._capabilities
        foreign_thread = self._thread_bound and threading.get_ident() != self._creator_thread
        if process_wide or foreign_thread:
            # A process-wide allocator does not free its blocks when destroyed, and a thread-bound
            # heap destroyed from another thread is abandoned, not emptied (see system_heaps.c):
            # free them one by one (frees work from any thread).
            for b in blocks:
                _lib.af_free(handle, _ffi.cast("void *", b.address), b.size, b.align)
        self._live.clear()
        self._handle = None
        self._detach()
        _lib.af_destroy(handle)

    def _open_handle(self) -> Any:
        handle = self._handle
        if handle is None:
            raise self._closed_error()
        return handle

    def _closed_error(self) -> ClosedAllocatorError:
        return ClosedAllocatorError(f"operation on a closed allocator ({self._name}); open a new one")

    def _check_owned(self, block: object, operation: str) -> None:
        """Raise unless ``block`` is an alive Block of this allocator's current generation."""
        if not isinstance(block, Block):
            raise TypeError(f"{operation}() expects an allocffi.Block, not {type(block).__name__}")
        if block._owner is not self:
            raise ForeignBlockError(
                f"{operation}: {block!r} belongs to another allocator; give it back to "
                f"block.allocator instead"
            )
        state = block._state
        if state == _FREED and operation in ("free", "free_many"):
            raise DoubleFreeError(f"{operation}: double free of {block!r}; each block is freed once")
        if state != _ALIVE or block.generation != self._generation:
            raise StaleBlockError(f"{operation}: {block._state_text} ({block!r})")

    def _check_thread(self, operation: str) -> None:
        if self._thread_bound and threading.get_ident() != self._creator_thread:
            raise ThreadAffinityError(
                f"{self._name}: {operation}() from a thread other than the one that created the "
                f"allocator; allocate and reset on the creating thread (frees may come from any thread)"
            )

    def _failure(self, call: str, status: int | None = None) -> errors.AllocffiError:
        """The exception for the C call that just failed: its ``status``, by default af_last_error
        (lock held). Also called by the C fast paths, which pass the status they read."""
        if status is None:
            status = _af_last_error(self._handle)
        return errors.error_for_status(status, f"{self._name}: {call}")

    def _extra_stats(self, handle: Any, result: dict[str, Any]) -> None:
        """Allocator-specific additions to stats() (lock held)."""


_STATS_FIELDS: tuple[str, ...] = tuple(name for name, _ in _ffi.typeof("af_stats").fields)


def _message(err: Any) -> str:
    return str(_ffi.string(err.message).decode(errors="replace"))
