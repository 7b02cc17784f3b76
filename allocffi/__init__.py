"""allocffi: native memory allocators side by side behind one safe Python interface.

    import allocffi
    with allocffi.open("slab") as slab:
        block = slab.alloc(4096)
        block.view()[:5] = b"hello"
        slab.free(block)

``available()`` says which allocators work here; ``open(name, **options)`` returns an
:class:`Allocator`; exceptions live in :mod:`allocffi.errors`. The raw, unchecked fast path is
:mod:`allocffi.unchecked` (import it explicitly). This module only re-exports.
"""

from allocffi.allocators import (
    ALLOCATOR_NAMES,
    SYSTEM_NAMES,
    BumpArena,
    LargeRegionCache,
    SlabAllocator,
    SystemAllocator,
    available,
    open,
)
from allocffi.errors import (
    AllocatorUnavailableError,
    AllocffiError,
    ByteLimitError,
    ClosedAllocatorError,
    DoubleFreeError,
    ForeignBlockError,
    InvalidAlignmentError,
    InvalidOptionError,
    InvalidSizeError,
    OutOfMemoryError,
    StaleBlockError,
    ThreadAffinityError,
    UnsupportedOperationError,
    ViewsOutstandingError,
)
from allocffi.interface import DEFAULT_ALIGN, MAX_ALIGN, MAX_ALLOC_SIZE, Allocator, Block, Capability

__version__ = "0.1.0"

__all__ = [
    "ALLOCATOR_NAMES",
    "DEFAULT_ALIGN",
    "MAX_ALIGN",
    "MAX_ALLOC_SIZE",
    "SYSTEM_NAMES",
    "Allocator",
    "AllocatorUnavailableError",
    "AllocffiError",
    "Block",
    "BumpArena",
    "ByteLimitError",
    "Capability",
    "ClosedAllocatorError",
    "DoubleFreeError",
    "ForeignBlockError",
    "InvalidAlignmentError",
    "InvalidOptionError",
    "InvalidSizeError",
    "LargeRegionCache",
    "OutOfMemoryError",
    "SlabAllocator",
    "StaleBlockError",
    "SystemAllocator",
    "ThreadAffinityError",
    "UnsupportedOperationError",
    "ViewsOutstandingError",
    "__version__",
    "available",
    "open",
]
