"""Behaviour particular to one allocator: slab classes, bump chunks, the large-region cache, limits."""

from __future__ import annotations

import math
import time

import pytest
from support import check, fill

import allocffi

CLASSES = [1024, 4096, 16384, 65536]


# --- slab ------------------------------------------------------------------------------------------


def test_slab_class_choice() -> None:
    with allocffi.SlabAllocator(class_sizes=CLASSES) as slab:
        assert slab.class_for(0) == 1024
        assert slab.class_for(1) == 1024
        assert slab.class_for(1024) == 1024
        assert slab.class_for(1025) == 4096
        assert slab.class_for(2048) == 4096
        assert slab.class_for(16384) == 16384
        assert slab.class_for(65536) == 65536
        assert slab.class_for(65537) is None
        block, class_size = slab.get(2048)
        assert class_size == 4096 and block.size == 4096 and len(block.view()) == 4096
        classes = {c["class_size"]: c for c in slab.stats()["classes"]}
        assert sorted(classes) == CLASSES
        assert classes[4096]["in_use"] == 1 and classes[1024]["in_use"] == 0
        for entry in classes.values():
            assert set(entry) >= {"class_size", "in_use", "free", "hits", "misses", "slabs"}
        slab.put(block)
        assert not block.alive
        again, _ = slab.get(3000)
        assert again.address == block.address  # the free list hands the slot back
        classes = {c["class_size"]: c for c in slab.stats()["classes"]}
        assert classes[4096]["hits"] >= 1 and classes[4096]["misses"] >= 1
        slab.put(again)
        with pytest.raises(allocffi.InvalidSizeError):
            slab.class_for(-1)


def test_slab_oversize_path() -> None:
    with allocffi.SlabAllocator(class_sizes=CLASSES) as slab:
        before = slab.stats()
        block, class_size = slab.get(100_000)
        assert class_size == 100_000 and block.size == 100_000
        data = fill(block, 1)
        stats = slab.stats()
        assert stats["oversize"] == before["oversize"] + 1
        assert stats["oversize_in_use"] == 1
        assert stats["os_maps"] > before["os_maps"]
        check(block, data)
        slab.put(block)
        assert slab.stats()["oversize_in_use"] == 0


def test_slab_zero_on_alloc() -> None:
    with allocffi.SlabAllocator(class_sizes=CLASSES, zero_on_alloc=True) as slab:
        block = slab.alloc(3000)
        fill(block, 2)
        address = block.address
        slab.free(block)
        again = slab.alloc(3000)
        assert again.address == address and bytes(again) == bytes(3000)
        slab.free(again)


def test_slab_rejects_bad_classes() -> None:
    for classes in ([], [100], [64, 32], [64, 64], [0]):
        with pytest.raises(allocffi.InvalidOptionError):
            allocffi.SlabAllocator(class_sizes=classes)
    with pytest.raises(allocffi.InvalidOptionError, match="slab"):  # the C constructor's message
        allocffi.SlabAllocator(class_sizes=[16, 1 << 40])
    with pytest.raises(TypeError):
        allocffi.SlabAllocator(zero_on_alloc=1)  # type: ignore[arg-type]


def test_slab_default_classes() -> None:
    with allocffi.open("slab") as slab:
        classes = [c["class_size"] for c in slab.stats()["classes"]]
        assert classes == sorted(classes) and classes[-1] == 1 << 20
        assert slab.class_for(48) == min(c for c in classes if c >= 48)


# --- bump ------------------------------------------------------------------------------------------


def test_bump_chunks_and_reset() -> None:
    with allocffi.BumpArena(first_chunk_size=64 * 1024, max_chunk_size=1 << 20) as bump:
        blocks = [bump.alloc(1000) for _ in range(300)]  # ~300 KB: several chunks
        stats = bump.stats()
        assert stats["chunks"] >= 2
        assert stats["capacity_bytes"] >= 300 * 1000
        bump.free(blocks[0])  # counted only
        assert bump.stats()["frees"] == 1
        bump.reset()
        stats = bump.stats()
        assert stats["resets"] == 1 and stats["bytes_in_use"] == 0 and stats["blocks_in_use"] == 0
        assert stats["chunks"] >= 1
        fresh = bump.alloc(10)
        data = fill(fresh, 3)
        check(fresh, data)


def test_bump_blocks_are_contiguous_in_a_chunk() -> None:
    with allocffi.BumpArena() as bump:
        a, b = bump.alloc(48), bump.alloc(48)
        assert b.address - a.address == 48
        c = bump.alloc(1, 4096)
        assert c.address % 4096 == 0


# --- large -----------------------------------------------------------------------------------------


def test_large_cache_reuse_in_a_steady_cycle() -> None:
    with allocffi.LargeRegionCache(purge_delay=float("inf")) as large:
        sizes = [256 << 10, 1 << 20, 4 << 20]
        for size in sizes:  # warm-up: one mapping per size
            large.free(large.alloc(size))
        warm = large.stats()
        for i in range(200):
            block = large.alloc(sizes[i % 3])
            block.view()[-1] = 1
            large.free(block)
        stats = large.stats()
        assert stats["os_maps"] == warm["os_maps"]  # no growth: every request was a cache hit
        assert stats["cache_hits"] - warm["cache_hits"] == 200
        assert stats["cache_misses"] == warm["cache_misses"]
        assert stats["cached_bytes"] > 0
        large.trim()
        stats = large.stats()
        assert stats["cached_bytes"] == 0 and stats["os_unmaps"] >= 3


def test_large_purges_idle_regions() -> None:
    with allocffi.LargeRegionCache(purge_delay=0.001) as large:
        large.free(large.alloc(1 << 20))
        deadline = time.monotonic() + 5
        while large.stats()["purged_bytes"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
            large.free(large.alloc(64 << 10))  # purging happens on calls: keep calling
        assert large.stats()["purged_bytes"] > 0


def test_large_is_page_granular() -> None:
    with allocffi.LargeRegionCache() as large:
        block = large.alloc(100)
        assert block.address % 4096 == 0 and block.usable_size >= 4096
        large.free(block)


# --- byte limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bump", "slab", "large"])
def test_byte_limit_then_still_working(name: str) -> None:
    a = allocffi.open(name, byte_limit=4 << 20)
    held = []
    with pytest.raises(allocffi.ByteLimitError) as info:
        for i in range(10_000):
            block = a.alloc(256 << 10)
            held.append((block, fill(block, i)))
    assert isinstance(info.value, MemoryError) and "byte limit" in str(info.value)
    assert 0 < len(held) <= 16
    for block, data in held:
        check(block, data)
    if name == "bump":
        a.reset()
        held = []
    else:
        for block, _ in held[: len(held) // 2]:
            a.free(block)
        held = held[len(held) // 2 :]
    block = a.alloc(256 << 10)  # room again
    held.append((block, fill(block, -1)))
    for block, data in held:
        check(block, data)
    a.close()


# --- options: each one changes what the allocator does ------------------------------------------


def test_bump_first_chunk_size_sets_the_first_chunk() -> None:
    with allocffi.BumpArena(first_chunk_size=4096) as small, allocffi.BumpArena() as default:
        small.alloc(16)
        default.alloc(16)
        assert small.stats()["capacity_bytes"] == 4096
        assert default.stats()["capacity_bytes"] == 64 * 1024


def test_bump_max_chunk_size_caps_the_doubling() -> None:
    with allocffi.BumpArena(first_chunk_size=4096, max_chunk_size=8192) as capped:
        for _ in range(100):
            capped.alloc(1000)  # ~100 KB: chunks of 4, 8, 8, 8, ... KiB
        stats = capped.stats()
        assert stats["chunks"] >= 12
        assert stats["capacity_bytes"] <= 4096 + 8192 * (stats["chunks"] - 1)
    with allocffi.BumpArena(first_chunk_size=4096) as doubling:
        for _ in range(100):
            doubling.alloc(1000)
        assert doubling.stats()["chunks"] <= 6  # 4 + 8 + 16 + 32 + 64 KiB hold 100 KB


@pytest.mark.parametrize("name", ["large", "slab"])
def test_max_cached_bytes_bounds_the_cache(name: str) -> None:
    size = 2 << 20  # above the slab's largest class: its oversize cache
    with allocffi.open(name, max_cached_bytes=size, purge_delay=math.inf) as bounded:
        blocks = [bounded.alloc(size) for _ in range(4)]
        bounded.free_many(blocks)
        assert bounded.stats()["cached_bytes"] == size
    with allocffi.open(name, purge_delay=math.inf) as default:
        blocks = [default.alloc(size) for _ in range(4)]
        default.free_many(blocks)
        assert default.stats()["cached_bytes"] == 4 * size


@pytest.mark.parametrize("name", ["large", "slab"])
def test_purge_delay_never_and_soon(name: str) -> None:
    size = 2 << 20
    with allocffi.open(name, purge_delay=math.inf) as never, allocffi.open(name, purge_delay=1e-6) as soon:
        for a in (never, soon):
            a.free(a.alloc(size))
        time.sleep(0.4)  # longer than the default delay (0.25 s)
        for _ in range(2048):  # purging is checked every few calls: keep calling
            for a in (never, soon):
                a.free(a.alloc(3 << 20))  # another size: the idle region stays cached
            if soon.stats()["purged_bytes"] > 0:
                break
        assert soon.stats()["purged_bytes"] > 0
        assert never.stats()["purged_bytes"] == 0
