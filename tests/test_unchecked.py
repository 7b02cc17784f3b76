"""The raw fast path: direct cffi bindings, int addresses, batches, and O(1) foreign-pointer refusal."""

from __future__ import annotations

import ctypes

import pytest

import allocffi
from allocffi import unchecked


def test_raw_alloc_free_round_trip(allocator: allocffi.Allocator) -> None:
    h = unchecked.handle(allocator)
    ptr = unchecked.alloc(h, 100, 64)
    assert ptr != unchecked.ffi.NULL
    address = unchecked.address(ptr)
    assert address % 64 == 0
    buf = unchecked.buffer(ptr, 100)
    buf[:] = bytes(range(100))
    assert ctypes.string_at(address, 100) == bytes(range(100))
    assert unchecked.usable_size(h, ptr, 100, 64) >= 100
    bigger = unchecked.realloc(h, ptr, 100, 5000, 64)
    assert ctypes.string_at(unchecked.address(bigger), 100) == bytes(range(100))
    assert unchecked.free(h, bigger, 5000, 64) == unchecked.AF_OK
    zeroed = unchecked.calloc(h, 256, 16)
    assert ctypes.string_at(unchecked.address(zeroed), 256) == bytes(256)
    assert unchecked.free(h, zeroed, 256, 16) == unchecked.AF_OK
    hi = unchecked.handle_address(allocator)
    addr = unchecked.alloc_address(hi, 48)
    assert addr != 0 and unchecked.pointer(addr) == unchecked.ffi.cast("void *", addr)
    assert unchecked.free_address(hi, addr, 48) == unchecked.AF_OK
    assert allocator.stats()["live_blocks"] == 0  # the safe layer never saw these
    assert unchecked.noop() is None


def test_batch_path(allocator: allocffi.Allocator) -> None:
    h = unchecked.handle(allocator)
    n = 1000
    ptrs = unchecked.pointer_array(n)
    assert unchecked.alloc_batch(h, 48, 16, n, ptrs) == n
    addresses = {unchecked.address(ptrs[i]) for i in range(n)}
    assert len(addresses) == n and all(a % 16 == 0 for a in addresses)
    before = allocator.stats()
    assert unchecked.free_batch(h, ptrs, n, 48, 16) == n
    assert allocator.stats()["frees"] - before["frees"] == n
    assert unchecked.alloc_batch(h, 48, 3, n, ptrs) == 0  # invalid alignment: nothing allocated
    assert unchecked.last_error(h) == 4


@pytest.mark.parametrize("name", ["bump", "slab", "large"])
def test_raw_free_refuses_foreign_pointers(name: str) -> None:
    with allocffi.open(name) as a, allocffi.open(name) as b:
        ha, hb = unchecked.handle(a), unchecked.handle(b)
        ptr = unchecked.alloc(ha, 64, 16)
        assert unchecked.free(hb, ptr, 64, 16) == unchecked.AF_ERR_NOT_OWNED
        with pytest.raises(allocffi.ForeignBlockError):
            unchecked.free_checked(hb, ptr, 64)
        ptrs = unchecked.pointer_array(2)
        ptrs[0] = unchecked.alloc(hb, 64, 16)
        ptrs[1] = ptr
        assert unchecked.free_batch(hb, ptrs, 2, 64, 16) == 1  # stops at the foreign one
        unchecked.free_checked(ha, ptr, 64)


def test_handle_of_closed_or_wrong_object() -> None:
    a = allocffi.open("slab")
    a.close()
    with pytest.raises(allocffi.ClosedAllocatorError):
        unchecked.handle(a)
    with pytest.raises(TypeError):
        unchecked.handle(object())  # type: ignore[arg-type]


def test_safe_api_does_not_expose_unchecked_names() -> None:
    public = [n for n in dir(allocffi) if not n.startswith("_")]
    assert "unchecked" not in allocffi.__all__
    for name in public:
        assert name not in ("ffi", "lib", "handle")


def test_int_path_blocks_are_usable_and_aligned(allocator: allocffi.Allocator) -> None:
    hi = unchecked.handle_address(allocator)
    addrs = []
    for i, (size, align) in enumerate([(1, 16), (48, 16), (100, 64), (4096, 4096), (70000, 256)]):
        addr = unchecked.alloc_address(hi, size, align)
        assert addr != 0 and addr % align == 0
        ctypes.memset(addr, i + 1, size)
        addrs.append((addr, size, align, i + 1))
    for addr, size, align, fill in addrs:
        assert ctypes.string_at(addr, size) == bytes([fill]) * size
        assert unchecked.free_address(hi, addr, size, align) == unchecked.AF_OK


def test_int_path_reports_failures_as_values(allocator: allocffi.Allocator) -> None:
    hi = unchecked.handle_address(allocator)
    assert unchecked.alloc_address(hi, 48, 3) == 0  # not a power of two: validated in C
    assert unchecked.last_error(unchecked.handle(allocator)) == unchecked.lib.AF_ERR_ALIGN
    assert unchecked.alloc_address(hi, allocffi.MAX_ALLOC_SIZE + 1) == 0


@pytest.mark.parametrize("name", ["bump", "slab", "large"])
def test_int_path_refuses_foreign_addresses_where_c_can_tell(name: str) -> None:
    with allocffi.open(name) as a, allocffi.open(name) as b:
        ha, hb = unchecked.handle_address(a), unchecked.handle_address(b)
        addr = unchecked.alloc_address(ha, 64)
        assert unchecked.free_address(hb, addr, 64) == unchecked.AF_ERR_NOT_OWNED
        assert unchecked.free_address(ha, addr, 64) == unchecked.AF_OK


def test_int_path_rejects_non_int_arguments(allocator: allocffi.Allocator) -> None:
    hi = unchecked.handle_address(allocator)
    with pytest.raises(TypeError, match="size must be a non-negative int"):
        unchecked.alloc_address(hi, -1)
    with pytest.raises(TypeError, match="takes 2 or 3 arguments"):
        unchecked.alloc_address(hi)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="handle must be"):
        unchecked.alloc_address("h", 8)  # type: ignore[arg-type]
