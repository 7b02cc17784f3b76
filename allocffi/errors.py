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
    ├── AllocatorUnavailableError(OSError)   library missing or not loadable here
    ├── ThreadAffinityError(RuntimeError)    thread-bound allocator used from another thread
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
    "InvalidAlignmentError",
    "InvalidOptionError",
    "InvalidSizeError",
    "OutOfMemoryError",
    "StaleBlockError",
    "ThreadAffinityError",
    "UnsupportedOperationError",
    "ViewsOutstandingError",
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


class AllocatorUnavailableError(AllocffiError, OSError):
    """The allocator cannot be used in this process (library missing, loader constraint...)."""


class ThreadAffinityError(AllocffiError, RuntimeError):
    """A thread-bound allocator was asked to allocate or reset from a thread other than its creator."""


class ViewsOutstandingError(AllocffiError, BufferError):
    """free/realloc/reset/close refused: memoryviews or arrays still point into the memory."""


# af_status codes (csrc/include/allocffi.h), duplicated here so this module
# imports without the compiled extension.
_AF_ERR_NOMEM = 1
_AF_ERR_LIMIT = 2
_AF_ERR_SIZE = 3
_AF_ERR_ALIGN = 4
_AF_ERR_UNSUPPORTED = 5
_AF_ERR_NOT_OWNED = 6
_AF_ERR_UNAVAILABLE = 7
_AF_ERR_INVALID = 8
_AF_ERR_THREAD = 9

_STATUS_ERRORS: dict[int, tuple[type[AllocffiError], str]] = {
    _AF_ERR_NOMEM: (OutOfMemoryError, "out of memory; free blocks or trim() and retry"),
    _AF_ERR_LIMIT: (
        ByteLimitError,
        "byte limit reached; free blocks, reset(), or open with a larger byte_limit",
    ),
    _AF_ERR_SIZE: (InvalidSizeError, "size too large"),
    _AF_ERR_ALIGN: (InvalidAlignmentError, "alignment must be a power of two no larger than 4096"),
    _AF_ERR_UNSUPPORTED: (UnsupportedOperationError, "operation not supported by this allocator"),
    _AF_ERR_NOT_OWNED: (ForeignBlockError, "memory not owned by this allocator"),
    _AF_ERR_UNAVAILABLE: (AllocatorUnavailableError, "allocator unavailable"),
    _AF_ERR_INVALID: (InvalidOptionError, "invalid argument"),
    _AF_ERR_THREAD: (
        ThreadAffinityError,
        "this allocator is bound to the thread that created it; allocate and reset only from that thread",
    ),
}


def error_for_status(status: int, context: str, detail: str | None = None) -> AllocffiError:
    """The exception for an af_status code.

    ``context`` names the failed call (e.g. ``"slab: alloc(4096)"``); ``detail``
    replaces the default explanation (e.g. the message of an ``af_error``).
    """
    cls, default = _STATUS_ERRORS.get(status, (AllocffiError, f"failed with status {status}"))
    return cls(f"{context}: {detail or default}")
