"""Exceptions raised by allocffi.

Every exception derives from :class:`AllocffiError` *and* from the builtin a
caller would naturally catch (PyNaCl style): ``except MemoryError`` catches an
allocator's out-of-memory, ``except ValueError`` catches a double free, and
``except AllocffiError`` catches everything allocffi raises.

Hierarchy::

    AllocffiError(Exception)
    ├── InvalidSizeError(ValueError)         size negative or > AF_MAX_ALLOC_SIZE
    ├── InvalidAlignmentError(ValueError)    align not a power of two or > 4096
    ├── InvalidOptionError(ValueError)       an option value the allocator rejects
    ├── DoubleFreeError(ValueError)          free() of a block already freed
    ├── ForeignBlockError(ValueError)        a Block owned by another allocator
    ├── StaleBlockError(ValueError)          a freed/moved block, or one from before reset()
    ├── ClosedAllocatorError(ValueError)     any use of a closed allocator
    ├── UnsupportedOperationError(io.UnsupportedOperation)  e.g. reset() of glibc malloc
    ├── OutOfMemoryError(MemoryError)        the OS / system allocator refused memory
    │   └── ByteLimitError                   the allocator's byte_limit is reached
    ├── UnknownAllocatorError(ValueError)    a name that is not an allocator's
    ├── AllocatorUnavailableError(OSError)   library missing or not loadable here
    ├── ThreadAffinityError(RuntimeError)    thread-bound allocator used from another thread
    ├── HandlerOrderError(RuntimeError)      allocffi.numpy handlers uninstalled out of order
    └── ViewsOutstandingError(BufferError)   memoryviews/arrays still point into the memory

``DoubleFreeError`` is a ``StaleBlockError``: freeing a freed block is one way
of using a stale one. ``io.UnsupportedOperation`` itself derives from
``OSError`` and ``ValueError``.

Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

import io

__all__ = [
    "AllocatorUnavailableError",
    "AllocffiError",
    "ByteLimitError",
    "ClosedAllocatorError",
    "DoubleFreeError",
    "ForeignBlockError",
    "HandlerOrderError",
    "InvalidAlignmentError",
    "InvalidOptionError",
    "InvalidSizeError",
    "OutOfMemoryError",
    "StaleBlockError",
    "ThreadAffinityError",
    "UnknownAllocatorError",
    "UnsupportedOperationError",
    "ViewsOutstandingError",
    "error_for",
    "error_for_status",
]


class AllocffiError(Exception):
    """Base class of every exception allocffi raises."""


class InvalidSizeError(AllocffiError, ValueError):
    """A size is negative, not an int, or larger than AF_MAX_ALLOC_SIZE."""


class InvalidAlignmentError(AllocffiError, ValueError):
    """An alignment is not a power of two, or is larger than AF_MAX_ALIGN (4096)."""


class InvalidOptionError(AllocffiError, ValueError):
    """An allocator option has a value the allocator rejects."""


class StaleBlockError(AllocffiError, ValueError):
    """A Block whose memory is gone: freed, replaced by realloc(), or from before reset()/close()."""


class DoubleFreeError(StaleBlockError):
    """free() (or free_many()) of a Block that was already freed."""


class ForeignBlockError(AllocffiError, ValueError):
    """A Block handed to an allocator that did not allocate it."""


class ClosedAllocatorError(AllocffiError, ValueError):
    """Any operation on an allocator after close() (like io's 'I/O operation on closed file')."""


class UnsupportedOperationError(AllocffiError, io.UnsupportedOperation):
    """The allocator does not offer this operation; see ``Allocator.capabilities``."""


class OutOfMemoryError(AllocffiError, MemoryError):
    """The OS or the system allocator refused memory."""


class ByteLimitError(OutOfMemoryError):
    """The allocator's configured ``byte_limit`` is reached."""


class UnknownAllocatorError(AllocffiError, ValueError):
    """A name that is not one of allocffi's allocators (see ``allocffi.ALLOCATOR_NAMES``)."""


class AllocatorUnavailableError(AllocffiError, OSError):
    """The allocator cannot be used in this process (library missing, loader constraint...)."""


class ThreadAffinityError(AllocffiError, RuntimeError):
    """A thread-bound allocator was asked to allocate or reset from a thread other than its creator."""


class HandlerOrderError(AllocffiError, RuntimeError):
    """allocffi.numpy: uninstall() or the end of a use() block that is not the innermost install."""


class ViewsOutstandingError(AllocffiError, BufferError):
    """free/realloc/reset/close refused: memoryviews or arrays still point into the memory."""


# ---------------------------------------------------------------------------------------------------
# The error table: every refusal, by code, to its exception class and message. The codes are the
# af_status values of csrc/include/allocffi.h (1-99) and the safe layer's reasons of
# csrc/python/safe.h (100 and up); tests/test_errors.py checks both lists against the C side, so
# they cannot drift. The C safe layer raises through error_for() below and nothing else.
# Message fields: {name} the allocator, {op} the call the user made, {block} the Block's repr,
# {what}/{value}/{type} a bad argument, {count}/{bytes} what is still outstanding.
# ---------------------------------------------------------------------------------------------------

# af_status (allocffi.h). Named here so that this module imports without the compiled extension.
AF_ERR_NOMEM = 1
AF_ERR_LIMIT = 2
AF_ERR_SIZE = 3
AF_ERR_ALIGN = 4
AF_ERR_UNSUPPORTED = 5
AF_ERR_NOT_OWNED = 6
AF_ERR_UNAVAILABLE = 7
AF_ERR_INVALID = 8
AF_ERR_THREAD = 9

# Reasons of the safe layer (safe.h).
REASON_NOT_AN_INT = 100
REASON_SIZE_NEGATIVE = 101
REASON_SIZE_TOO_LARGE = 102
REASON_BAD_ALIGN = 103
REASON_NOT_A_BLOCK = 104
REASON_FOREIGN = 105
REASON_DOUBLE_FREE = 106
REASON_LISTED_TWICE = 107
REASON_CLOSED = 108
REASON_VIEWS = 109
REASON_FOREIGN_OWNERS = 110
REASON_WRONG_THREAD = 111
REASON_NO_RESET = 112
REASON_REENTERED = 113
REASON_STALE = 120  # + the Block's state: FREED 1, RESET 2, CLOSED 3, MOVED 4

_MAX_ALLOC_SIZE = 1 << 40
_MAX_ALIGN = 4096

#: Why a Block is dead, by its state (csrc/python/safe.h BLOCK_*): also the StaleBlockError texts.
STATE_TEXTS: tuple[str, ...] = (
    "block is alive",
    "block was freed; allocate a new one",
    "block is from before the allocator's reset(); allocate a new one",
    "block's allocator was closed; open a new allocator",
    "block was replaced by the Block realloc() returned; use that one",
)

_TABLE: dict[int, tuple[type[Exception], str]] = {
    # af_status: "{name}: {op}: " is put in front of each
    AF_ERR_NOMEM: (OutOfMemoryError, "out of memory; free blocks or trim() and retry"),
    AF_ERR_LIMIT: (
        ByteLimitError,
        "byte limit reached; free blocks, reset(), or open with a larger byte_limit",
    ),
    AF_ERR_SIZE: (InvalidSizeError, "size too large"),
    AF_ERR_ALIGN: (InvalidAlignmentError, "alignment must be a power of two no larger than 4096"),
    AF_ERR_UNSUPPORTED: (UnsupportedOperationError, "operation not supported by this allocator"),
    AF_ERR_NOT_OWNED: (ForeignBlockError, "memory not owned by this allocator"),
    AF_ERR_UNAVAILABLE: (AllocatorUnavailableError, "allocator unavailable"),
    AF_ERR_INVALID: (InvalidOptionError, "invalid argument"),
    AF_ERR_THREAD: (
        ThreadAffinityError,
        "this allocator is bound to the thread that created it; allocate and reset only from that thread",
    ),
    # the safe layer's reasons: complete messages
    REASON_NOT_AN_INT: (TypeError, "{op}: {what} must be an int, not {type}"),
    REASON_SIZE_NEGATIVE: (InvalidSizeError, "{op}: {what} must be >= 0, got {value}"),
    REASON_SIZE_TOO_LARGE: (
        InvalidSizeError,
        f"{{op}}: {{what}} {{value}} is larger than the maximum {_MAX_ALLOC_SIZE} (1 TiB)",
    ),
    REASON_BAD_ALIGN: (
        InvalidAlignmentError,
        f"{{op}}: align must be a power of two between 1 and {_MAX_ALIGN}, got {{value}}",
    ),
    REASON_NOT_A_BLOCK: (TypeError, "{op}() expects an allocffi.Block, not {type}"),
    REASON_FOREIGN: (
        ForeignBlockError,
        "{op}: {block} belongs to another allocator; give it back to block.allocator instead",
    ),
    REASON_DOUBLE_FREE: (DoubleFreeError, "{op}: double free of {block}; each block is freed once"),
    REASON_LISTED_TWICE: (
        DoubleFreeError,
        "{op}: {block} appears twice in the list; free each block once",
    ),
    REASON_CLOSED: (ClosedAllocatorError, "{op}: operation on a closed allocator ({name}); open a new one"),
    REASON_VIEWS: (
        ViewsOutstandingError,
        "{name}: {op}: {count} memoryview/ndarray export(s) still point into this memory; release them "
        "(view.release(), del the array) and try again",
    ),
    REASON_FOREIGN_OWNERS: (
        ViewsOutstandingError,
        "{name}: {op}: {count} NumPy array(s) holding {bytes} bytes still use this allocator's memory; "
        "delete them (or let them die) and try again",
    ),
    REASON_WRONG_THREAD: (
        ThreadAffinityError,
        "{name}: {op}() from a thread other than the one that created the allocator; allocate and reset "
        "on the creating thread (frees may come from any thread)",
    ),
    REASON_NO_RESET: (
        UnsupportedOperationError,
        "{name} cannot reset(): free blocks one by one, or use an allocator whose capabilities include "
        "RESET (bump, mimalloc-heap, jemalloc-arena)",
    ),
    REASON_REENTERED: (
        RuntimeError,
        "allocffi: this allocator is in the middle of an operation on this thread (a call from a "
        "__del__ or a signal handler re-entered it); make the call outside that context",
    ),
    **{
        REASON_STALE + state: (StaleBlockError, "{op}: " + text + " ({block})")
        for state, text in enumerate(STATE_TEXTS)
        if state > 0
    },
}


def error_for_status(status: int, context: str, detail: str | None = None) -> AllocffiError:
    """The exception for an af_status code.

    ``context`` names the failed call (e.g. ``"slab: alloc(4096)"``); ``detail``
    replaces the default explanation (e.g. the message of an ``af_error``).
    """
    cls, default = _TABLE.get(status, (AllocffiError, f"failed with status {status}"))
    if not issubclass(cls, AllocffiError) or status >= REASON_NOT_AN_INT:
        cls, default = AllocffiError, f"failed with status {status}"
    return cls(f"{context}: {detail or default}")


def error_for(code: int, op: str | None, allocator: object, subject: object) -> Exception:
    """The exception for a refusal of the C safe layer (csrc/python/refuse.c calls this).

    ``op`` is the call the user made; ``subject`` what the refusal is about: a Block, a
    ``(what, value)`` argument, a ``(count, bytes)`` of outstanding views or arrays, or the
    requested size when an allocator refused memory.
    """
    name = getattr(allocator, "name", None) or "allocator"
    if code < REASON_NOT_AN_INT:  # the allocator itself refused: an af_status
        detail = _out_of_memory_advice(subject) if code == AF_ERR_NOMEM else None
        return error_for_status(code, f"{name}: {op}", detail)
    cls, template = _TABLE.get(code, (AllocffiError, "{op}: refused (reason " + str(code) + ")"))
    fields: dict[str, object] = {"name": name, "op": op or "use"}
    if isinstance(subject, tuple) and len(subject) == 2 and isinstance(subject[0], str):
        fields.update(what=subject[0], value=subject[1], type=type(subject[1]).__name__)
    elif isinstance(subject, tuple) and len(subject) == 2:
        fields.update(count=subject[0], bytes=subject[1])
    else:
        fields.update(block=repr(subject), type=type(subject).__name__)
    message = template.format(**fields)
    if op is None and code >= REASON_STALE:  # a view or export of a dead Block: no call to name
        message = STATE_TEXTS[code - REASON_STALE]
    return cls(message)


def _out_of_memory_advice(requested: object) -> str:
    """What to do about an out-of-memory refusal, given the request's size in bytes."""
    generic = "out of memory; free blocks or trim() and retry"
    if not isinstance(requested, int):
        return generic
    limit = _address_space_limit()
    if limit is not None and requested > limit:
        return (
            f"out of memory: the request of {requested} bytes is larger than this process's address-space "
            f"limit (RLIMIT_AS = {limit} bytes); raise the limit (ulimit -v) or ask for less"
        )
    physical = _physical_memory()
    if physical is not None and requested > physical:
        return (
            f"out of memory: the request of {requested} bytes is larger than this machine's memory "
            f"({physical} bytes); ask for less"
        )
    return generic


def _address_space_limit() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def _physical_memory() -> int | None:
    try:
        import os

        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
