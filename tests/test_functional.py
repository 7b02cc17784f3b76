"""Every allocator through the same interface: contents, alignment, stats, reset, close."""

from __future__ import annotations

import io
import itertools
import random

import pytest
from conftest import RESETTABLE
from support import check, fill

import allocffi
from allocffi import Capability

ALIGNMENTS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]


def random_size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.6:
        return rng.randrange(0, 512)
    if roll < 0.9:
        return rng.randrange(512, 70_000)
    return rng.randrange(70_000, 1_500_000)


def test_random_sizes_alignments_and_contents(allocator: allocffi.Allocator) -> None:
    rng = random.Random(1234)
    live: list[tuple[allocffi.Block, bytes]] = []
    for i in range(400):
        if live and rng.random() < 0.4:
            block, data = live.pop(rng.randrange(len(live)))
            check(block, data)
            allocator.free(block)
            assert not block.alive and block.freed
            continue
        size, align = random_size(rng), rng.choice(ALIGNMENTS)
        block = allocator.alloc(size, align)
        assert block.size == size and block.align == align
        assert block.address % align == 0, f"{block!r} misaligned"
        assert block.alive and not block.freed
        assert block.allocator is allocator
        if i % 7 == 0:
            assert block.usable_size >= size
        live.append((block, fill(block, i)))
    for block, data in live:
        check(block, data)
    allocator.free_many(b for b, _ in live)


def test_alignment_edge_cases(allocator: allocffi.Allocator) -> None:
    # Sizes around each alignment: allocators with size-class fast paths get these wrong first.
    blocks = []
    for align in ALIGNMENTS:
        for size in {0, 1, align - 1, align, align + 1, 2 * align, 3 * align, 4 * align}:
            for call in (allocator.alloc, allocator.calloc):
                block = call(size, align)
                assert block.address % align == 0, f"{call.__name__}({size}, {align}) -> {block!r}"
                blocks.append(block)
        grown = allocator.realloc(allocator.alloc(align, align), 4 * align)
        assert grown.address % align == 0, f"realloc -> {grown!r}"
        blocks.append(grown)
        blocks += allocator.alloc_many(3, align, align)
        assert all(b.address % align == 0 for b in blocks[-3:]), blocks[-3:]
    allocator.free_many(blocks)


def test_blocks_do_not_overlap(allocator: allocffi.Allocator) -> None:
    blocks = [allocator.alloc(size, 16) for size in [1, 16, 48, 100, 4096, 5000, 70_000, 300_000] * 5]
    spans = sorted((b.address, b.address + max(b.size, 1)) for b in blocks)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    allocator.free_many(blocks)


def test_stats_balance(allocator: allocffi.Allocator) -> None:
    before = allocator.stats()
    for key in (
        "allocs",
        "frees",
        "bytes_in_use",
        "peak_bytes_in_use",
        "blocks_in_use",
        "reallocs",
        "failures",
    ):
        assert isinstance(before[key], int)
    sizes = [10, 100, 1000, 10_000, 100_000]
    blocks = [allocator.alloc(s) for s in sizes]
    during = allocator.stats()
    assert during["allocs"] - before["allocs"] == len(sizes)
    assert during["bytes_in_use"] - before["bytes_in_use"] == sum(sizes)
    assert during["blocks_in_use"] - before["blocks_in_use"] == len(sizes)
    assert during["peak_bytes_in_use"] >= during["bytes_in_use"]
    assert during["live_blocks"] == len(sizes)
    for b in blocks:
        allocator.free(b)
    after = allocator.stats()
    assert after["frees"] - before["frees"] == len(sizes)
    assert after["bytes_in_use"] == before["bytes_in_use"]
    assert after["blocks_in_use"] == before["blocks_in_use"]
    assert after["peak_bytes_in_use"] >= sum(sizes)
    assert after["name"] == allocator.name
    assert after["live_blocks"] == 0


def test_zero_size_blocks_are_distinct_and_empty(allocator: allocffi.Allocator) -> None:
    blocks = [allocator.alloc(0) for _ in range(5)]
    assert len({b.address for b in blocks}) == 5
    for b in blocks:
        assert bytes(b) == b""
        assert len(b.view()) == 0
    allocator.free_many(blocks)


def test_calloc_is_zeroed(allocator: allocffi.Allocator) -> None:
    # Dirty memory first so that a recycled block would show garbage.
    for size in (64, 4096, 200_000):
        dirty = allocator.alloc(size)
        fill(dirty, size)
        allocator.free(dirty)
        block = allocator.calloc(size, 64)
        assert block.address % 64 == 0
        assert bytes(block) == bytes(size)
        allocator.free(block)


def test_realloc_keeps_contents(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(100, 64)
    data = fill(block, 1)
    for new_size in (50, 5000, 300_000, 10, 0, 77):
        new = allocator.realloc(block, new_size)
        assert not block.alive
        with pytest.raises(allocffi.StaleBlockError):
            block.view()
        assert new.size == new_size and new.align == 64 and new.address % 64 == 0
        keep = min(len(data), new_size)
        assert bytes(new)[:keep] == data[:keep]
        data = fill(new, new_size)
        block = new
    block.free()
    assert allocator.stats()["live_blocks"] == 0


def test_alloc_many_and_free_many(allocator: allocffi.Allocator) -> None:
    before = allocator.stats()
    blocks = allocator.alloc_many(100, 48, 32)
    assert len(blocks) == 100 and len({b.address for b in blocks}) == 100
    assert all(b.address % 32 == 0 and b.size == 48 for b in blocks)
    contents = [fill(b, i) for i, b in enumerate(blocks)]
    mixed = blocks + allocator.alloc_many(10, 1000)
    for b, data in zip(blocks, contents, strict=True):
        check(b, data)
    allocator.free_many(mixed)
    assert all(not b.alive for b in mixed)
    after = allocator.stats()
    assert after["allocs"] - before["allocs"] == 110
    assert after["frees"] - before["frees"] == 110
    assert allocator.alloc_many(0, 10) == []
    allocator.free_many([])


def test_reset_semantics(allocator: allocffi.Allocator) -> None:
    blocks = [allocator.alloc(s) for s in (10, 1000, 100_000)]
    kept = [fill(b, i) for i, b in enumerate(blocks)]
    if allocator.name not in RESETTABLE:
        assert Capability.RESET not in allocator.capabilities
        with pytest.raises(allocffi.UnsupportedOperationError) as info:
            allocator.reset()
        assert isinstance(info.value, io.UnsupportedOperation)
        assert allocator.name in str(info.value)
        for b, data in zip(blocks, kept, strict=True):  # nothing changed
            check(b, data)
        allocator.free_many(blocks)
        return
    assert Capability.RESET in allocator.capabilities
    generation = allocator.generation
    allocator.reset()
    assert allocator.generation == generation + 1
    for b in blocks:
        assert not b.alive
        assert b.generation == generation
        with pytest.raises(allocffi.StaleBlockError, match="reset"):
            b.view()
        with pytest.raises(allocffi.StaleBlockError):
            allocator.free(b)
    stats = allocator.stats()
    assert stats["resets"] >= 1 and stats["live_blocks"] == 0 and stats["blocks_in_use"] == 0
    fresh = allocator.alloc(64)
    assert fresh.generation == generation + 1
    data = fill(fresh, 9)
    check(fresh, data)
    allocator.reset()
    assert not fresh.alive


def test_capabilities(allocator: allocffi.Allocator) -> None:
    caps = allocator.capabilities
    assert isinstance(caps, Capability)
    assert Capability.THREAD_SAFE in caps  # every instance is wrapped by af_locked_new
    assert (Capability.THREAD_BOUND in caps) == (allocator.name == "mimalloc-heap")
    system = allocator.name not in ("bump", "slab", "large")
    assert (Capability.SYSTEM in caps) == system


def test_trim_keeps_live_blocks(allocator: allocffi.Allocator) -> None:
    live = allocator.alloc(300_000)
    data = fill(live, 5)
    for _ in range(3):
        allocator.free(allocator.alloc(2_000_000))
    allocator.trim()
    check(live, data)
    allocator.free(live)


def test_close_is_idempotent_and_final(allocator_name: str) -> None:
    a = allocffi.open(allocator_name)
    blocks = [a.alloc(100), a.alloc(100_000)]
    assert repr(a).startswith("<")
    a.close()
    assert a.closed
    a.close()
    for b in blocks:
        assert not b.alive
        with pytest.raises(allocffi.StaleBlockError, match="closed"):
            memoryview(b)
    for call in (
        lambda: a.alloc(1),
        lambda: a.calloc(1),
        lambda: a.alloc_many(2, 1),
        lambda: a.free(blocks[0]),
        lambda: a.free_many(blocks),
        lambda: a.realloc(blocks[0], 5),
        lambda: a.reset(),
        lambda: a.trim(),
        lambda: a.stats(),
        lambda: a.blocks(),
        lambda: a.usable_size(blocks[0]),
    ):
        with pytest.raises(allocffi.ClosedAllocatorError, match="closed allocator") as info:
            call()
        assert isinstance(info.value, ValueError)
    with pytest.raises(allocffi.ClosedAllocatorError), a:
        pass
    assert "closed" in repr(a)


def test_context_managers(allocator_name: str) -> None:
    with allocffi.open(allocator_name) as a:
        with a.alloc(32) as block:
            fill(block, 3)
        assert not block.alive
        kept = a.alloc(64)
    assert a.closed and not kept.alive


def test_blocks_lists_live_blocks(allocator: allocffi.Allocator) -> None:
    a_block, b_block = allocator.alloc(8), allocator.alloc(9)
    assert set(map(id, allocator.blocks())) == {id(a_block), id(b_block)}
    address = a_block.address
    del a_block  # dropping a handle does not free the memory
    (recovered,) = [b for b in allocator.blocks() if b.address == address]
    allocator.free(recovered)
    assert allocator.blocks() == [b_block]


def test_block_repr_and_attributes(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(24, 8)
    text = repr(block)
    assert allocator.name in text and "size=24" in text and "alive" in text and hex(block.address) in text
    assert block.exports == 0
    with block.view() as v:
        assert block.exports == 1
        assert v.nbytes == 24 and v.format == "B" and not v.readonly
    assert block.exports == 0
    allocator.free(block)
    assert "freed" in repr(block)


def test_available_lists_every_allocator() -> None:
    result = allocffi.available()
    assert list(result) == list(allocffi.ALLOCATOR_NAMES)
    assert len(result) == 9
    for name, reason in result.items():
        assert reason is None or (isinstance(reason, str) and reason), name


def test_open_rejects_unknown_names_and_options() -> None:
    with pytest.raises(ValueError, match="unknown allocator 'nope'"):
        allocffi.open("nope")
    with pytest.raises(TypeError, match="first_chunk_size, max_chunk_size, byte_limit"):
        allocffi.open("bump", chunk=5)
    with pytest.raises(TypeError, match="valid options: none"):
        allocffi.open("libc", byte_limit=5)
    with pytest.raises(TypeError):
        allocffi.open(5)  # type: ignore[arg-type]
    with pytest.raises(allocffi.InvalidOptionError):
        allocffi.open("bump", byte_limit=-1)
    with pytest.raises(TypeError):
        allocffi.open("large", purge_delay="soon")
    with pytest.raises(ValueError, match="unknown system allocator"):
        allocffi.SystemAllocator("bump")


def test_concrete_classes() -> None:
    with allocffi.open("bump", first_chunk_size=4096, max_chunk_size=1 << 20, byte_limit=1 << 24) as a:
        assert isinstance(a, allocffi.BumpArena) and a.name == "bump"
    with allocffi.open("slab", class_sizes=[64, 128], zero_on_alloc=True, purge_delay=0.5) as s:
        assert isinstance(s, allocffi.SlabAllocator)
    with allocffi.open("large", max_cached_bytes=1 << 22, purge_delay=float("inf")) as g:
        assert isinstance(g, allocffi.LargeRegionCache)
    with allocffi.open("libc") as c:
        assert isinstance(c, allocffi.SystemAllocator) and c.name == "libc"
