"""NumPy arrays whose data comes from an allocffi allocator (NEP 49 data handlers, NumPy >= 1.22).

    import numpy as np
    import allocffi, allocffi.numpy

    with allocffi.open("slab") as slab:
        with allocffi.numpy.use(slab):
            a = np.arange(1000.0)           # a's data is a slab block
        print(allocffi.numpy.handler_of(a))  # the slab
        del a                                # its block goes back to the slab

- :func:`use` (a context manager) and :func:`install` / :func:`uninstall` set the handler NumPy
  takes every new array's data from, in the current context; :func:`handler_of` names the
  allocator behind an array's data.
- The handler is C (csrc/python/numpy_handler.c): NumPy's malloc/calloc/realloc/free call the
  allocator's vtable directly, through its thread-safe wrapper, with no Python and no GIL needed.
- Lifetime: every array holds the handler, the handler holds the allocator, so the allocator's
  memory outlives every array whatever the caller drops. ``close()``, ``reset()`` and ``trim()`` of
  an allocator that still serves arrays raise ``ViewsOutstandingError`` (a ``BufferError``) saying
  how many arrays and bytes are live, and change nothing. ``stats()`` counts the arrays' blocks
  (each ``align`` bytes larger than the data: a header before the data keeps its size).
- Context semantics (NumPy's handler is a :mod:`contextvars` variable): a new thread starts with
  NumPy's default handler, an asyncio task inherits the handler of the code that created it. To run
  a function in a thread with the current handler, use :class:`Thread`.
- An allocation the allocator refuses (byte limit, out of memory, a thread-bound allocator on
  another thread) is a ``MemoryError`` from NumPy; the allocator stays usable.

NumPy is an optional extra: without it, every function here raises ``ModuleNotFoundError`` naming
``allocffi[numpy]``.
"""

from __future__ import annotations

import contextvars
import importlib
import itertools
import threading
import weakref
from typing import Any

from allocffi import _safe, errors
from allocffi.errors import HandlerOrderError
from allocffi.interface import DEFAULT_ALIGN, MAX_ALIGN, Allocator, Capability

__all__ = ["HandlerOrderError", "Thread", "handler_of", "install", "installed", "uninstall", "use"]

# What this context installed, innermost last: (our capsule, the handler it replaced).
_installed: contextvars.ContextVar[tuple[tuple[Any, Any], ...]] = contextvars.ContextVar(
    "allocffi_numpy_installed", default=()
)
_serial = itertools.count(1)


def _numpy_api() -> Any:
    """NumPy's C-API capsule (the table PyDataMem_SetHandler is read from)."""
    try:
        import numpy
    except ModuleNotFoundError as missing:
        raise ModuleNotFoundError(
            "allocffi.numpy needs NumPy: pip install 'allocffi[numpy]'", name=missing.name
        ) from missing
    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")  # NumPy 2
    except ImportError:
        umath = importlib.import_module("numpy.core._multiarray_umath")  # NumPy 1.x
    del numpy
    return umath._ARRAY_API


def _checked_align(align: object) -> int:
    if isinstance(align, bool) or not isinstance(align, int):
        raise TypeError(f"align must be an int, not {type(align).__name__}")
    if align <= 0 or align & (align - 1) or align > MAX_ALIGN:
        raise errors.InvalidAlignmentError(
            f"align must be a power of two between 1 and {MAX_ALIGN}, got {align}"
        )
    return max(align, DEFAULT_ALIGN)  # the header before the data needs 16 bytes


def _handler(allocator: Allocator, align: object, operation: str) -> Any:
    """A new handler capsule over ``allocator``, after the checks that can be made now."""
    if not isinstance(allocator, Allocator):
        raise TypeError(f"{operation}() expects an allocffi.Allocator, not {type(allocator).__name__}")
    room = _checked_align(align)
    if allocator.closed:
        raise errors.ClosedAllocatorError(
            f"numpy.{operation}: operation on a closed allocator ({allocator.name}); open a new one"
        )
    if Capability.THREAD_BOUND in allocator.capabilities and threading.get_ident() != allocator._creator:
        raise errors.ThreadAffinityError(
            f"numpy.{operation}: {allocator.name} allocates only on the thread that created it; "
            "install it there"
        )
    name = f"allocffi:{allocator.name}#{next(_serial)}"
    capsule = _safe.numpy_handler(allocator, room, name)
    _by_name[name] = allocator
    return capsule


# Handler name -> allocator, for handler_of (weak: the capsules hold the allocators).
_by_name: weakref.WeakValueDictionary[str, Allocator] = weakref.WeakValueDictionary()


def install(allocator: Allocator, *, align: int = DEFAULT_ALIGN) -> None:
    """Make NumPy take every new array's data from ``allocator`` in the current context.

    ``align``: the alignment of every array's data (a power of two up to 4096; 64 for cache
    lines, 4096 for page-aligned arrays). Undo with :func:`uninstall`. Raises
    ClosedAllocatorError, ThreadAffinityError (a thread-bound allocator from another thread),
    InvalidAlignmentError, ModuleNotFoundError (no NumPy).
    """
    _install(allocator, align, "install")


def _install(allocator: Allocator, align: object, operation: str) -> Any:
    api = _numpy_api()
    capsule = _handler(allocator, align, operation)
    previous = _safe.numpy_set_handler(api, capsule)
    _installed.set((*_installed.get(), (capsule, previous)))
    return capsule


def uninstall() -> None:
    """Undo the innermost :func:`install` of this context: NumPy's previous handler is back.

    Raises HandlerOrderError when nothing is installed here, or when NumPy's current handler is
    not the one installed last (someone else set one since): nothing is changed then.
    """
    _uninstall(None, "uninstall()")


def _uninstall(expected: Any, operation: str) -> None:
    """Undo the innermost install, which must be ``expected`` when given."""
    api = _numpy_api()
    stack = _installed.get()
    if not stack:
        raise HandlerOrderError(f"numpy.{operation}: nothing installed in this context")
    capsule, previous = stack[-1]
    if expected is not None and capsule is not expected:
        raise HandlerOrderError(
            f"numpy.{operation}: another handler was installed inside this use() block and is still "
            "installed; end nested blocks (and uninstall() what you install()) innermost first"
        )
    if _safe.numpy_get_handler(api) is not capsule:
        raise HandlerOrderError(
            f"numpy.{operation}: NumPy's current handler is not the one installed last; "
            "end nested use() blocks innermost first"
        )
    _safe.numpy_set_handler(api, previous)
    _installed.set(stack[:-1])


class use:
    """``with use(allocator):`` arrays created inside take their data from ``allocator``.

    The arrays may outlive the block (and the allocator object: they keep it alive). Blocks nest;
    ending them out of order raises HandlerOrderError and changes nothing. ``align`` as for
    :func:`install`.
    """

    def __init__(self, allocator: Allocator, *, align: int = DEFAULT_ALIGN) -> None:
        self._allocator = allocator
        self._align = align
        self._capsule: Any = None

    def __enter__(self) -> Allocator:
        self._capsule = _install(self._allocator, self._align, "use")
        return self._allocator

    def __exit__(self, *exc_info: object) -> None:
        _uninstall(self._capsule, "use() exit")


def installed() -> Allocator | None:
    """The allocator NumPy takes new arrays' data from in this context, or None (not ours)."""
    owner: Allocator | None = _safe.numpy_handler_owner(_safe.numpy_get_handler(_numpy_api()))
    return owner


def handler_of(array: Any) -> Allocator | None:
    """The allocator that owns ``array``'s data (following ``.base`` to the owner), or None when
    NumPy's default handler (or another library's) allocated it or the array does not own data."""
    _numpy_api()  # (ModuleNotFoundError naming the extra)
    import numpy

    try:
        multiarray = importlib.import_module("numpy._core.multiarray")  # NumPy 2
    except ImportError:
        multiarray = importlib.import_module("numpy.core.multiarray")  # NumPy 1.x
    if not isinstance(array, numpy.ndarray):
        raise TypeError(f"handler_of() expects a numpy.ndarray, not {type(array).__name__}")
    owner = array
    while isinstance(owner.base, numpy.ndarray):
        owner = owner.base
    if owner.base is not None:  # the data belongs to another object (a buffer export, ...)
        return None
    name = multiarray.get_handler_name(owner)
    return _by_name.get(name) if name else None


class Thread(threading.Thread):
    """A :class:`threading.Thread` that runs in a copy of the creating thread's context, so the
    NumPy handler installed there is installed in the thread too (a plain thread starts with
    NumPy's default). Use it like ``threading.Thread(target=..., args=...)``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = installed()
        if owner is not None and Capability.THREAD_BOUND in owner.capabilities:
            raise errors.ThreadAffinityError(
                f"numpy.Thread: the installed allocator {owner.name} allocates only on the thread that "
                "created it; a new thread cannot use it"
            )
        self._context = contextvars.copy_context()

    def run(self) -> None:
        self._context.run(super().run)
