"""Eight threads share one allocator instance; blocks move between threads; contents are checked.

cffi releases the GIL around each C call, so threads really are inside the C allocator at the same
time (serialised by af_locked_new), while the Python-side table of live blocks is guarded by the
allocator's lock. mimalloc-heap is thread-bound: only its creating thread allocates; every thread
frees.
"""

from __future__ import annotations

import queue
import random
import threading
from typing import Any

import pytest
from support import check, fill

import allocffi

THREADS = 8
ROUNDS = 300
# Longest wait for another thread before the test fails instead of hanging.
WAIT_SECONDS = 60.0


def _run_threads(target: Any, count: int = THREADS) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as error:  # collected and re-raised in the main thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_SECONDS)
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "a thread did not finish"


def test_threads_share_one_allocator(allocator: allocffi.Allocator) -> None:
    thread_bound = allocffi.Capability.THREAD_BOUND in allocator.capabilities
    handoff: queue.Queue[tuple[allocffi.Block, bytes] | None] = queue.Queue()
    before = allocator.stats()
    produced = threading.Semaphore(0)

    def make(rng: random.Random, index: int) -> tuple[allocffi.Block, bytes]:
        size = rng.choice([0, 8, 48, 200, 1000, 4096, 30_000, 300_000])
        align = rng.choice([8, 16, 64, 4096])
        block = allocator.alloc(size, align)
        assert block.address % align == 0
        return block, fill(block, index * 1_000_003 + rng.randrange(1 << 30))

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine: list[tuple[allocffi.Block, bytes]] = []
        for i in range(ROUNDS):
            if not thread_bound:
                mine.append(make(rng, index))
                if rng.random() < 0.5:
                    handoff.put(mine.pop(rng.randrange(len(mine))))
            if rng.random() < 0.3 and mine:
                block, data = mine.pop(rng.randrange(len(mine)))
                check(block, data)
                allocator.free(block)
            if i % 3 == 0:
                try:
                    item = handoff.get(timeout=0.001 if not thread_bound else 0.05)
                except queue.Empty:
                    continue
                if item is not None:
                    mine.append(item)  # a block allocated by another thread
        for block, data in mine:
            check(block, data)
            allocator.free(block)

    if thread_bound:
        # The creating thread (this one) allocates; eight others check and free. A consumer that
        # fails records its error and stops; the producer then stops waiting (every wait has a
        # timeout), so a failed assertion fails the test instead of hanging it.
        failures: list[BaseException] = []

        def consumer(index: int) -> None:
            try:
                while True:
                    item = handoff.get(timeout=WAIT_SECONDS)
                    if item is None:
                        return
                    block, data = item
                    check(block, data)
                    with pytest.raises(allocffi.ThreadAffinityError):
                        allocator.alloc(16)
                    allocator.free(block)
                    produced.release()
            except BaseException as error:  # collected and re-raised in the main thread
                failures.append(error)

        consumers = [threading.Thread(target=consumer, args=(i,)) for i in range(THREADS)]
        for t in consumers:
            t.start()
        rng = random.Random(0)
        for i in range(ROUNDS * 2):
            handoff.put(make(rng, i))
        for _ in range(ROUNDS * 2):
            if failures or not produced.acquire(timeout=WAIT_SECONDS):
                break
        for _ in consumers:
            handoff.put(None)
        for t in consumers:
            t.join(WAIT_SECONDS)
        if failures:
            raise failures[0]
        assert not any(t.is_alive() for t in consumers), "a consumer thread did not finish"
    else:
        _run_threads(worker)
        while not handoff.empty():
            item = handoff.get()
            assert item is not None
            check(*item)
            allocator.free(item[0])
    after = allocator.stats()
    assert after["live_blocks"] == 0
    assert after["blocks_in_use"] == before["blocks_in_use"]
    assert after["bytes_in_use"] == before["bytes_in_use"]
    assert after["allocs"] - before["allocs"] == after["frees"] - before["frees"]


def test_threads_batch_and_realloc(allocator: allocffi.Allocator) -> None:
    if allocffi.Capability.THREAD_BOUND in allocator.capabilities:
        # mimalloc heaps allocate only on their own thread: from others, the batch
        # path and realloc must refuse cleanly and leave nothing behind.
        own = allocator.alloc(64)

        def refused(index: int) -> None:
            with pytest.raises(allocffi.ThreadAffinityError):
                allocator.alloc_many(5, 100)
            with pytest.raises(allocffi.ThreadAffinityError):
                allocator.realloc(own, 4096)

        _run_threads(refused)
        assert own.alive and allocator.stats()["live_blocks"] == 1
        allocator.free(own)
        return

    def worker(index: int) -> None:
        rng = random.Random(100 + index)
        for _ in range(40):
            blocks = allocator.alloc_many(rng.randrange(1, 20), rng.choice([16, 100, 5000]))
            contents = [fill(b, index + i) for i, b in enumerate(blocks)]
            grown = allocator.realloc(blocks[0], blocks[0].size * 3)
            assert bytes(grown)[: len(contents[0])] == contents[0]
            for b, data in zip(blocks[1:], contents[1:], strict=True):
                check(b, data)
            allocator.free_many([grown, *blocks[1:]])

    _run_threads(worker)
    assert allocator.stats()["live_blocks"] == 0


def test_misuse_races_are_errors_not_crashes(allocator_name: str) -> None:
    """Many threads double-free, view and free the same blocks: exactly one free wins each."""
    a = allocffi.open(allocator_name)
    blocks = [a.alloc(64) for _ in range(200)]
    wins: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for i, block in enumerate(blocks):
            try:
                if (i + index) % 3 == 0:
                    with block.view() as v:
                        v[0] = index
                else:
                    a.free(block)
                    with lock:
                        wins.append(i)
            except (allocffi.StaleBlockError, allocffi.ViewsOutstandingError):
                pass

    _run_threads(worker)
    assert sorted(wins) == sorted(set(wins))  # never freed twice
    for i, block in enumerate(blocks):
        assert block.alive == (i not in wins)
    a.close()
    assert all(not b.alive for b in blocks)


def test_mimalloc_heap_closed_from_another_thread() -> None:
    from conftest import ensure_available

    ensure_available("mimalloc-heap")
    heap = allocffi.open("mimalloc-heap")
    blocks = [heap.alloc(100) for _ in range(50)]
    contents = [fill(b, i) for i, b in enumerate(blocks)]

    def other(_: int) -> None:
        for b, data in zip(blocks, contents, strict=True):
            check(b, data)
        with pytest.raises(allocffi.ThreadAffinityError):
            heap.reset()
        with pytest.raises(allocffi.ThreadAffinityError):
            heap.realloc(blocks[0], 10)
        assert blocks[0].alive
        heap.free(blocks.pop())
        heap.close()

    _run_threads(other, count=1)
    assert heap.closed and all(not b.alive for b in blocks)


def test_mimalloc_heap_collected_on_another_thread() -> None:
    import gc

    from conftest import ensure_available

    ensure_available("mimalloc-heap")
    box: list[Any] = []

    def creator(_: int) -> None:
        heap = allocffi.open("mimalloc-heap")
        box.append([heap.alloc(64) for _ in range(10)])
        # the creating thread exits here; the heap lives on through the blocks

    _run_threads(creator, count=1)
    blocks = box.pop()
    heap = blocks[0].allocator
    with pytest.raises(allocffi.ThreadAffinityError):
        heap.alloc(8)  # its owner thread is gone
    heap.free(blocks.pop())  # frees still work
    del blocks, heap
    gc.collect()  # finalizer on a foreign thread: must not touch the heap
