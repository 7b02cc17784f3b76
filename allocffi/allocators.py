"""The concrete allocators, ``open(name, **options)`` and ``available()``.

- :class:`BumpArena`: pointer-bump allocation in growing chunks; free() only counts, reset()
  releases everything (the fastest way to make many short-lived blocks).
- :class:`SlabAllocator`: size classes with free lists; requests above the largest class go to
  a large-region cache. Also the pool-style API get()/put()/class_for().
- :class:`LargeRegionCache`: page-granular regions from mmap, kept in a cache for reuse.
- :class:`SystemAllocator`: glibc malloc, mimalloc, jemalloc, tcmalloc (process-wide), and the
  resettable ``mimalloc-heap`` (thread-bound) and ``jemalloc-arena``.

Option values are checked in Python (TypeError/InvalidOptionError) and again by the C
constructors, whose message is passed on.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from allocffi import errors
from allocffi._native import ffi as _ffi
from allocffi._native import lib as _lib
from allocffi.errors import AllocatorUnavailableError, InvalidOptionError, UnknownAllocatorError
from allocffi.footprint import library_footprint
from allocffi.interface import Allocator, Block, _checked_size, _message

__all__ = [
    "ALLOCATOR_NAMES",
    "SYSTEM_NAMES",
    "BumpArena",
    "LargeRegionCache",
    "SlabAllocator",
    "SystemAllocator",
    "available",
    "open",
]


def _registry(*kinds: int) -> tuple[str, ...]:
    """The names of the C registry (registry.c, the one list of them) of the given kinds, in order."""
    count = _lib.af_registry_count()
    return tuple(
        _ffi.string(_lib.af_registry_name(i)).decode()
        for i in range(count)
        if _lib.af_registry_kind(i) in kinds
    )


#: allocators loaded from shared libraries at run time (af_system_new)
SYSTEM_NAMES: tuple[str, ...] = _registry(_lib.AF_KIND_SYSTEM)
#: every allocator the safe layer offers, in a stable order
ALLOCATOR_NAMES: tuple[str, ...] = _registry(_lib.AF_KIND_OURS, _lib.AF_KIND_SYSTEM)

_UINT64_MAX = 2**64 - 1
_SIZE_MAX = 2**64 - 1


def _byte_count(name: str, value: object, *, allow_none: bool = True) -> int:
    """An option that is a byte count: a positive int (None: the C default, passed as 0)."""
    if value is None and allow_none:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"option {name} must be an int number of bytes, not {type(value).__name__}")
    if not 0 < value <= _SIZE_MAX:
        raise InvalidOptionError(f"option {name} must be a positive number of bytes, got {value}")
    return value


def _purge_delay_ns(value: object) -> int:
    """purge_delay in seconds -> ns for C (None: default; math.inf: never purge)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"option purge_delay must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise InvalidOptionError(f"option purge_delay must be >= 0 seconds (or math.inf: never), got {value}")
    if math.isinf(value):
        return _UINT64_MAX
    return min(max(int(value * 1e9), 1), _UINT64_MAX - 1)  # 0 means "default" in C: use 1 ns


def _constructed(inner: Any, err: Any, what: str) -> Any:
    if inner == _ffi.NULL:
        raise errors.error_for_status(err.code, what, _message(err))
    return inner


def _fill_large_options(opts: Any, max_cached_bytes: int | None, purge_delay: float | None) -> None:
    opts.max_cached_bytes = _byte_count("max_cached_bytes", max_cached_bytes)
    opts.purge_delay_ns = _purge_delay_ns(purge_delay)


class BumpArena(Allocator):
    """A bump arena: alloc is a pointer increment; free() only counts; reset() frees everything.

    Options: ``first_chunk_size`` (default 64 KiB; later chunks double up to ``max_chunk_size``,
    default 64 MiB), ``byte_limit`` (cap on chunk bytes; None: no cap).
    """

    OPTIONS: ClassVar[tuple[str, ...]] = ("first_chunk_size", "max_chunk_size", "byte_limit")

    def __init__(
        self,
        *,
        first_chunk_size: int | None = None,
        max_chunk_size: int | None = None,
        byte_limit: int | None = None,
    ) -> None:
        opts = _ffi.new("af_bump_options *")
        opts.first_chunk_size = _byte_count("first_chunk_size", first_chunk_size)
        opts.max_chunk_size = _byte_count("max_chunk_size", max_chunk_size)
        opts.byte_limit = _byte_count("byte_limit", byte_limit)
        err = _ffi.new("af_error *")
        self._adopt(_constructed(_lib.af_bump_new(opts, err), err, "bump"))

    def _extra_stats(self, handle: Any, result: dict[str, Any]) -> None:
        pass  # chunks, capacity_bytes and resets are af_stats fields


class LargeRegionCache(Allocator):
    """Page-granular regions from mmap with a cache of freed regions for reuse.

    Options: ``max_cached_bytes`` (default: adaptive, the larger of 256 MiB and the recent peak of
    live bytes; a number is a fixed bound), ``purge_delay`` (seconds a cached region may
    stay idle before its pages are given back with madvise; default 0.25; math.inf: never),
    ``byte_limit`` (cap on bytes mapped, live + cached; None: no cap).
    """

    OPTIONS: ClassVar[tuple[str, ...]] = ("max_cached_bytes", "purge_delay", "byte_limit")

    def __init__(
        self,
        *,
        max_cached_bytes: int | None = None,
        purge_delay: float | None = None,
        byte_limit: int | None = None,
    ) -> None:
        opts = _ffi.new("af_large_options *")
        _fill_large_options(opts, max_cached_bytes, purge_delay)
        opts.byte_limit = _byte_count("byte_limit", byte_limit)
        err = _ffi.new("af_error *")
        self._adopt(_constructed(_lib.af_large_new(opts, err), err, "large"))


class SlabAllocator(Allocator):
    """Size classes carved from slabs, with free lists; oversize requests use a large-region cache.

    Options: ``class_sizes`` (ascending multiples of 16; default: classes up to 1 MiB),
    ``zero_on_alloc`` (every block comes back zeroed), ``byte_limit`` (cap on slab + oversize
    bytes), ``max_cached_bytes`` and ``purge_delay`` (of the oversize cache, as for
    LargeRegionCache).

    Pool API: ``get(size) -> (Block, class_size)`` hands out a whole class slot (the Block's size is
    the class size; for oversize requests it is ``size`` itself), ``put(block)`` gives it back,
    ``class_for(size)`` names the class that serves ``size`` (None: oversize).
    """

    OPTIONS: ClassVar[tuple[str, ...]] = (
        "class_sizes",
        "zero_on_alloc",
        "byte_limit",
        "max_cached_bytes",
        "purge_delay",
    )

    def __init__(
        self,
        *,
        class_sizes: Sequence[int] | None = None,
        zero_on_alloc: bool = False,
        byte_limit: int | None = None,
        max_cached_bytes: int | None = None,
        purge_delay: float | None = None,
    ) -> None:
        opts = _ffi.new("af_slab_options *")
        classes = None
        if class_sizes is not None:
            sizes = [_byte_count("class_sizes[]", s, allow_none=False) for s in class_sizes]
            if not sizes:
                raise InvalidOptionError("option class_sizes must not be empty (None: the default classes)")
            if any(s % 16 for s in sizes) or any(a >= b for a, b in itertools.pairwise(sizes)):
                raise InvalidOptionError(
                    f"option class_sizes must be strictly ascending multiples of 16, got {sizes}"
                )
            classes = _ffi.new("size_t[]", sizes)
            opts.class_sizes = classes
            opts.class_count = len(sizes)
        if not isinstance(zero_on_alloc, bool):
            raise TypeError(f"option zero_on_alloc must be a bool, not {type(zero_on_alloc).__name__}")
        opts.zero_on_alloc = int(zero_on_alloc)
        opts.byte_limit = _byte_count("byte_limit", byte_limit)
        _fill_large_options(opts.large, max_cached_bytes, purge_delay)
        err = _ffi.new("af_error *")
        self._adopt(_constructed(_lib.af_slab_new(opts, err), err, "slab"), keepalive=classes)

    def class_for(self, size: int) -> int | None:
        """The class size that serves a request of ``size`` bytes, or None when it is oversize."""
        size = _checked_size(size, "class_for")
        with self._lock:
            handle = _ffi.cast("af_allocator *", self._require_open("class_for"))
            class_size = _lib.af_slab_class_for(handle, size)
        return int(class_size) or None

    def get(self, size: int) -> tuple[Block, int]:
        """A block spanning the whole class slot that serves ``size``: (block, class_size)."""
        class_size = self.class_for(size) or size
        return self.alloc(class_size), class_size

    def put(self, block: Block) -> None:
        """Give a block from get() back to its class (free() under the name put)."""
        self._free_as(block, "put")

    def _extra_stats(self, handle: Any, result: dict[str, Any]) -> None:
        classes = []
        one = _ffi.new("af_class_stats *")
        for index in range(_lib.af_slab_class_count(handle)):
            if _lib.af_slab_class_stats(handle, index, one) != _lib.AF_OK:
                continue
            classes.append({field: getattr(one, field) for field, _ in _ffi.typeof("af_class_stats").fields})
        result["classes"] = classes
        result["oversize"] = result["oversize_allocs"]


class SystemAllocator(Allocator):
    """A system allocator loaded at run time: ``libc``, ``mimalloc``, ``jemalloc``, ``tcmalloc``
    (process-wide: close() frees the blocks this object handed out), ``mimalloc-heap`` (a private
    mimalloc heap, resettable, thread-bound: alloc/realloc/reset only on the creating thread) and
    ``jemalloc-arena`` (a private jemalloc arena, resettable).

    Raises AllocatorUnavailableError when the library cannot be used here (the message says why,
    e.g. which Debian package to install, or that jemalloc needs the process started with
    GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384).
    """

    OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str) -> None:
        if name not in SYSTEM_NAMES:
            raise UnknownAllocatorError(
                f"unknown system allocator {name!r}; choose one of {', '.join(SYSTEM_NAMES)}"
            )
        err = _ffi.new("af_error *")
        inner = _lib.af_system_new(name.encode(), err)
        if inner == _ffi.NULL:
            if err.code in (_lib.AF_ERR_UNAVAILABLE, _lib.AF_OK):
                raise AllocatorUnavailableError(f"{name}: {_message(err) or 'unavailable'}")
            raise errors.error_for_status(err.code, name, _message(err))
        self._adopt(inner)

    def _extra_stats(self, handle: Any, result: dict[str, Any]) -> None:
        # A library's pages are its own business: allocffi cannot count them (None, not 0); the
        # library's own figures are under "footprint" (allocffi/footprint.py).
        result["os_bytes"] = None
        result["footprint"] = library_footprint(handle)


_CLASSES: dict[str, type[Allocator]] = {"bump": BumpArena, "slab": SlabAllocator, "large": LargeRegionCache}


def open(name: str, **options: Any) -> Allocator:
    """An allocator by name (see ALLOCATOR_NAMES) with keyword options.

    ``bump``: first_chunk_size, max_chunk_size, byte_limit. ``slab``: class_sizes, zero_on_alloc,
    byte_limit, max_cached_bytes, purge_delay. ``large``: max_cached_bytes, purge_delay,
    byte_limit. System allocators take no options. Unknown name -> UnknownAllocatorError (a
    ValueError); unknown option ->
    TypeError naming the valid ones; unusable here -> AllocatorUnavailableError.
    """
    if not isinstance(name, str):
        raise TypeError(f"allocator name must be a str, not {type(name).__name__}")
    cls = _CLASSES.get(name)
    valid = cls.OPTIONS if cls is not None else ()
    if cls is None and name not in SYSTEM_NAMES:
        raise UnknownAllocatorError(f"unknown allocator {name!r}; choose one of {', '.join(ALLOCATOR_NAMES)}")
    unknown = sorted(set(options) - set(valid))
    if unknown:
        accepted = ", ".join(valid) if valid else "none"
        raise TypeError(f"{name} got unknown option(s) {', '.join(unknown)}; valid options: {accepted}")
    if cls is None:
        return SystemAllocator(name)
    return cls(**options)


def available() -> dict[str, str | None]:
    """Every allocator name -> None when it can be opened in this process, else the reason."""
    result: dict[str, str | None] = {}
    err = _ffi.new("af_error *")
    for name in ALLOCATOR_NAMES:
        err.code = 0
        err.message = b""
        status = _lib.af_available(name.encode(), err)
        result[name] = (
            None
            if status == _lib.AF_OK
            else (_message(err) or str(_ffi.string(_lib.af_status_text(status)).decode()))
        )
    return result
