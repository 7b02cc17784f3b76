"""Misuse of the safe layer: each mistake is an exception, and nothing held is lost."""

from __future__ import annotations

import copy
import gc
import io
import pickle
import weakref
from typing import Any

import pytest
from conftest import RESETTABLE, require_numpy
from support import check, fill

import allocffi
from allocffi import _safe, errors


def test_exception_hierarchy() -> None:
    pairs = {
        errors.InvalidSizeError: ValueError,
        errors.InvalidAlignmentError: ValueError,
        errors.InvalidOptionError: ValueError,
        errors.DoubleFreeError: ValueError,
        errors.ForeignBlockError: ValueError,
        errors.StaleBlockError: ValueError,
        errors.ClosedAllocatorError: ValueError,
        errors.UnsupportedOperationError: io.UnsupportedOperation,
        errors.OutOfMemoryError: MemoryError,
        errors.ByteLimitError: MemoryError,
        errors.AllocatorUnavailableError: OSError,
        errors.ThreadAffinityError: RuntimeError,
        errors.ViewsOutstandingError: BufferError,
    }
    for cls, builtin in pairs.items():
        assert issubclass(cls, errors.AllocffiError) and issubclass(cls, builtin), cls
    assert issubclass(errors.ByteLimitError, errors.OutOfMemoryError)
    assert issubclass(errors.DoubleFreeError, errors.StaleBlockError)


def test_status_mapping() -> None:
    expected = {
        1: errors.OutOfMemoryError,
        2: errors.ByteLimitError,
        3: errors.InvalidSizeError,
        4: errors.InvalidAlignmentError,
        5: errors.UnsupportedOperationError,
        6: errors.ForeignBlockError,
        7: errors.AllocatorUnavailableError,
        8: errors.InvalidOptionError,
        9: errors.ThreadAffinityError,
    }
    for status, cls in expected.items():
        error = errors.error_for_status(status, "ctx")
        assert type(error) is cls and str(error).startswith("ctx: ")
    assert str(errors.error_for_status(2, "x", "detail")) == "x: detail"
    assert type(errors.error_for_status(99, "x")) is errors.AllocffiError


@pytest.mark.parametrize("size", [-1, -(2**70), allocffi.MAX_ALLOC_SIZE + 1, 2**64])
def test_bad_sizes(allocator: allocffi.Allocator, size: int) -> None:
    for call in (allocator.alloc, allocator.calloc):
        with pytest.raises(allocffi.InvalidSizeError):
            call(size)
    block = allocator.alloc(8)
    with pytest.raises(allocffi.InvalidSizeError):
        allocator.realloc(block, size)
    with pytest.raises(allocffi.InvalidSizeError):
        allocator.alloc_many(2, size)
    assert block.alive
    allocator.free(block)
    assert allocator.stats()["failures"] == 0  # rejected before any C call


@pytest.mark.parametrize("value", [1.5, "8", None, b"1", True])
def test_non_int_sizes_and_alignments(allocator: allocffi.Allocator, value: object) -> None:
    with pytest.raises(TypeError):
        allocator.alloc(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        allocator.alloc(8, value)  # type: ignore[arg-type]


def test_index_like_ints_are_accepted(allocator: allocffi.Allocator) -> None:
    np: Any = require_numpy()
    block = allocator.alloc(np.int64(40), np.uint16(64))
    assert block.size == 40 and block.align == 64 and type(block.size) is int
    allocator.free(block)


@pytest.mark.parametrize("align", [0, -16, 3, 24, 8192, 1 << 40])
def test_bad_alignments(allocator: allocffi.Allocator, align: int) -> None:
    with pytest.raises(allocffi.InvalidAlignmentError):
        allocator.alloc(8, align)
    with pytest.raises(allocffi.InvalidAlignmentError):
        allocator.calloc(8, align)
    with pytest.raises(allocffi.InvalidAlignmentError):
        allocator.alloc_many(2, 8, align)


def test_double_free(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(64)
    allocator.free(block)
    with pytest.raises(allocffi.DoubleFreeError, match="double free"):
        allocator.free(block)
    with pytest.raises(allocffi.DoubleFreeError):
        block.free()
    with pytest.raises(allocffi.DoubleFreeError):
        allocator.free_many([block])
    other = allocator.alloc(64)
    with pytest.raises(allocffi.DoubleFreeError, match="twice"):
        allocator.free_many([other, other])
    assert other.alive  # the refused batch freed nothing
    allocator.free(other)


def test_every_use_of_a_freed_block_raises(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(64)
    allocator.free(block)
    for call in (
        block.view,
        lambda: memoryview(block),
        lambda: bytes(block),
        lambda: allocator.realloc(block, 10),
        lambda: block.realloc(10),
        lambda: allocator.usable_size(block),
        lambda: block.usable_size,
    ):
        with pytest.raises(allocffi.StaleBlockError, match="freed"):
            call()
    assert allocator.stats()["live_blocks"] == 0


def test_stale_after_realloc(allocator: allocffi.Allocator) -> None:
    old = allocator.alloc(32)
    new = allocator.realloc(old, 64)
    with pytest.raises(allocffi.StaleBlockError, match="realloc"):
        allocator.free(old)
    with pytest.raises(allocffi.StaleBlockError):
        allocator.realloc(old, 8)
    allocator.free(new)


def test_foreign_blocks(allocator: allocffi.Allocator) -> None:
    with allocffi.open("bump") as other, allocffi.open(allocator.name) as twin:
        for source in (other, twin):
            foreign = source.alloc(64)
            data = fill(foreign, 4)
            for call in (
                lambda: allocator.free(foreign),  # noqa: B023 - called right away
                lambda: allocator.realloc(foreign, 8),  # noqa: B023
                lambda: allocator.free_many([foreign]),  # noqa: B023
                lambda: allocator.usable_size(foreign),  # noqa: B023
            ):
                with pytest.raises(allocffi.ForeignBlockError, match="another allocator"):
                    call()
            check(foreign, data)
            source.free(foreign)
        mine = allocator.alloc(8)
        with pytest.raises(allocffi.ForeignBlockError):
            allocator.free_many([mine, other.alloc(8)])
        assert mine.alive
        allocator.free(mine)


@pytest.mark.parametrize("thing", [None, 0, 12345, b"abc", bytearray(8), memoryview(b"x")])
def test_non_block_arguments(allocator: allocffi.Allocator, thing: object) -> None:
    for call in (allocator.free, lambda t: allocator.realloc(t, 8), allocator.usable_size):
        with pytest.raises(TypeError, match=r"allocffi\.Block"):
            call(thing)
    with pytest.raises(TypeError):
        allocator.free_many([thing])  # type: ignore[list-item]


def test_blocks_cannot_be_forged_or_copied(allocator: allocffi.Allocator) -> None:
    with pytest.raises(TypeError, match="created by Allocator"):
        allocffi.Block()
    with pytest.raises(TypeError):
        allocffi.Block(0x1000, 8, 16, 0, allocator)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _safe.BlockBase()
    with pytest.raises(TypeError, match=r"allocffi\.open"):
        allocffi.Allocator(None)
    assert not hasattr(allocffi.interface, "lib") and not hasattr(allocffi.allocators, "ffi")
    with pytest.raises(RuntimeError):
        _safe.set_block_type(allocffi.Block)
    block = allocator.alloc(8)
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError):
            duplicate(block)
    with pytest.raises(AttributeError):
        block.size = 1 << 30  # type: ignore[misc]
    with pytest.raises(AttributeError):
        block.address = 0  # type: ignore[misc]
    allocator.free(block)


@pytest.mark.parametrize("operation", ["free", "free_many", "realloc", "reset", "close"])
def test_views_block_free_realloc_reset_close(allocator_name: str, operation: str) -> None:
    a = allocffi.open(allocator_name)
    block = a.alloc(256)
    data = fill(block, 7)
    view = block.view()
    if operation == "reset" and allocator_name not in RESETTABLE:
        with pytest.raises(allocffi.UnsupportedOperationError):  # what it says with or without views
            a.reset()
        view.release()
        with pytest.raises(allocffi.UnsupportedOperationError):
            a.reset()
        check(block, data)
        a.close()
        return

    def attempt() -> object:
        if operation == "free":
            return a.free(block)
        if operation == "free_many":
            return a.free_many([a.alloc(8), block])
        if operation == "realloc":
            return a.realloc(block, 1024)
        if operation == "reset":
            return a.reset()
        return a.close()

    with pytest.raises(allocffi.ViewsOutstandingError, match="release them") as info:
        attempt()
    assert isinstance(info.value, BufferError)
    # Nothing changed: the block is alive, its contents intact, the view usable.
    assert block.alive and not a.closed
    check(block, data)
    view[0] = data[0] ^ 0xFF
    assert bytes(block)[0] == data[0] ^ 0xFF
    sub = view[10:20]  # a slice shares the same export
    view.release()
    with pytest.raises(allocffi.ViewsOutstandingError):
        attempt()
    sub.release()
    attempt()  # the same call now succeeds
    a.close()


def test_view_keeps_its_block_alive(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(64)
    data = fill(block, 11)
    ref = weakref.ref(block)
    view = block.view()
    address = block.address
    del block
    gc.collect()
    assert ref() is not None  # the export holds the Block
    assert bytes(view) == data
    (again,) = [b for b in allocator.blocks() if b.address == address]
    with pytest.raises(allocffi.ViewsOutstandingError):
        allocator.free(again)
    view.release()
    allocator.free(again)


def test_dropped_allocator_with_views_is_not_freed_under_them(allocator_name: str) -> None:
    a = allocffi.open(allocator_name)
    view = a.alloc(128).view()
    view[:] = bytes(range(128))
    del a
    gc.collect()
    assert bytes(view) == bytes(range(128))  # block -> allocator kept alive by the view
    view.release()
    gc.collect()


def test_unreferenced_allocator_is_closed_by_gc(allocator_name: str) -> None:
    gc.collect()
    handles = _safe.open_handles()
    a = allocffi.open(allocator_name)
    blocks = [a.alloc(64) for _ in range(10)]
    assert _safe.open_handles() == handles + 1
    ref = weakref.ref(a)
    del a, blocks
    gc.collect()
    assert ref() is None
    assert _safe.open_handles() == handles  # the C allocator was destroyed, not leaked


@pytest.mark.parametrize("name", ["bump", "slab", "large"])
def test_failed_alloc_keeps_everything(name: str) -> None:
    # System allocators cannot be made to fail here (1 TiB of address space is granted lazily);
    # test_oom.py runs them under RLIMIT_AS instead.
    a = allocffi.open(name, byte_limit=1 << 20)
    kept = [(b, fill(b, i)) for i, b in enumerate(a.alloc(1000) for _ in range(20))]
    with pytest.raises(allocffi.ByteLimitError, match="byte limit"):
        a.alloc(2 << 20)
    with pytest.raises(allocffi.ByteLimitError, match="byte limit"):
        a.alloc_many(4, 512 << 10)
    big = kept[0][0]
    with pytest.raises(allocffi.ByteLimitError, match="byte limit"):
        a.realloc(big, 4 << 20)
    for b, data in kept:
        assert b.alive
        check(b, data)
    a.free_many(b for b, _ in kept)
    assert a.stats()["live_blocks"] == 0
    assert a.stats()["failures"] >= 3
    a.close()
