"""The C operations alloc/calloc/free/alloc_many/free_many (csrc/python/allocator.c, batch.c).

Each takes the allocator's state lock at once when it is free and otherwise waits for it with the
GIL released (the lock held by Python code, `with a._lock:`, in another thread); either way it
makes every check itself. These tests force both branches and each refusal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

import allocffi
from allocffi import _safe, errors
from allocffi._startup import child_environment


def _run_while_locked(a: allocffi.Allocator, action: object) -> list[object]:
    """Run ``action()`` in a thread while this thread holds a's lock; it must wait for the lock."""
    results: list[object] = []
    started = threading.Event()

    def worker() -> None:
        started.set()
        results.append(action())  # type: ignore[operator]

    with a._lock:
        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        t.join(0.2)
        assert t.is_alive(), "the operation did not wait for the held lock"
        assert results == []
    t.join()
    return results


def _run_here_while_locked_elsewhere(a: allocffi.Allocator, action: object) -> object:
    """Run ``action()`` in this thread while another thread holds a's lock; it must wait for it.

    For a thread-bound allocator (mimalloc-heap), whose allocations must stay on this thread.
    """
    held, finished = threading.Event(), threading.Event()
    waited: list[bool] = []

    def holder() -> None:
        with a._lock:
            held.set()
            finished.wait(0.2)
            waited.append(not finished.is_set())

    t = threading.Thread(target=holder)
    t.start()
    held.wait()
    result = action()  # type: ignore[operator]
    finished.set()
    t.join()
    assert waited == [True], "the operation did not wait for the held lock"
    return result


def test_busy_lock_sends_alloc_and_free_to_the_waiting_slow_path(allocator: allocffi.Allocator) -> None:
    if allocffi.Capability.THREAD_BOUND in allocator.capabilities:
        block = _run_here_while_locked_elsewhere(allocator, lambda: allocator.alloc(48))
    else:
        (block,) = _run_while_locked(allocator, lambda: allocator.alloc(48))
    assert isinstance(block, allocffi.Block) and block.alive
    assert allocator.blocks() == [block]
    _run_while_locked(allocator, lambda: allocator.free(block))
    assert not block.alive and allocator.blocks() == []
    with pytest.raises(errors.DoubleFreeError):
        allocator.free(block)


def test_slow_path_still_refuses_views_and_foreign_blocks(allocator_name: str) -> None:
    with allocffi.open(allocator_name) as a, allocffi.open("bump") as other:
        block = a.alloc(32)
        view = memoryview(block)

        def free_and_catch() -> BaseException | None:
            try:
                a.free(block)
            except BaseException as error:
                return error
            return None

        (error,) = _run_while_locked(a, free_and_catch)  # the slow path, after waiting
        assert isinstance(error, errors.ViewsOutstandingError) and block.alive
        view.release()
        with pytest.raises(errors.ForeignBlockError):
            other.free(block)
        a.free(block)


def test_fast_failure_is_counted_once_and_maps_to_byte_limit() -> None:
    with allocffi.open("slab", byte_limit=1 << 20) as a:
        before = a.stats()["failures"]
        with pytest.raises(errors.ByteLimitError, match=r"slab: alloc\(4194304, align=16\)"):
            a.alloc(4 << 20)
        with pytest.raises(errors.ByteLimitError, match="calloc"):
            a.calloc(4 << 20)
        assert a.stats()["failures"] == before + 2  # not retried by the slow path
        assert a.blocks() == []
        a.free(a.alloc(64))  # still usable


def test_calloc_fast_path_zeroes_reused_memory(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(48)
    memoryview(block)[:] = b"\xff" * 48
    allocator.free(block)
    for _ in range(4):
        again = allocator.calloc(48)
        assert bytes(again) == bytes(48)
        allocator.free(again)


def test_fast_paths_decline_odd_arguments_to_precise_errors(allocator: allocffi.Allocator) -> None:
    with pytest.raises(errors.InvalidSizeError):
        allocator.alloc(-1)
    with pytest.raises(errors.InvalidSizeError):
        allocator.calloc(1 << 64)
    with pytest.raises(errors.InvalidAlignmentError):
        allocator.alloc(8, 24)
    with pytest.raises(TypeError):
        allocator.alloc(8, True)
    with pytest.raises(TypeError):
        allocator.free(object())  # type: ignore[arg-type]
    allocator.close()
    with pytest.raises(errors.ClosedAllocatorError):
        allocator.alloc(8)


def test_state_lock_behaves_like_threading_lock() -> None:
    lock = _safe.StateLock()
    assert lock.acquire() and lock.locked()
    assert lock.acquire(False) is False
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_internals_cannot_be_rebound() -> None:
    with pytest.raises(RuntimeError):
        _safe.bind({"af_alloc": 1}, errors.error_for)
    with allocffi.open("slab") as a, pytest.raises(RuntimeError):
        a._attach(12345)


def test_reentrant_call_on_the_busy_thread_raises_instead_of_hanging() -> None:
    """A __del__ that frees while its thread is inside the same allocator must not deadlock."""
    code = """
import allocffi
a = allocffi.open("slab")
block = a.alloc(16)
with a._lock:  # stands for an operation in progress on this thread
    for call in (lambda: a.alloc(8), lambda: a.free(block)):
        try:
            call()
        except RuntimeError as error:
            assert "re-entered it" in str(error), error
        else:
            raise AssertionError("no error")
assert block.alive
a.free(block)
print("ok")
"""
    env = child_environment()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# ---------------------------------------------------------------------------------------------------
# alloc_many / free_many
# ---------------------------------------------------------------------------------------------------


def _snapshot(a: allocffi.Allocator) -> tuple[set[int], int, int, int]:
    """What a refused batch must leave unchanged: the live set and the C allocator's counters."""
    stats = a.stats()
    return {id(b) for b in a.blocks()}, stats["blocks_in_use"], stats["allocs"], stats["frees"]


def test_busy_lock_sends_batches_to_the_waiting_slow_path(allocator: allocffi.Allocator) -> None:
    def alloc_batch() -> list[allocffi.Block]:
        return allocator.alloc_many(50, 48)

    if allocffi.Capability.THREAD_BOUND in allocator.capabilities:
        blocks = _run_here_while_locked_elsewhere(allocator, alloc_batch)
    else:
        (blocks,) = _run_while_locked(allocator, alloc_batch)
    assert isinstance(blocks, list) and len(blocks) == 50
    assert all(b.alive and b.size == 48 and b.allocator is allocator for b in blocks)
    assert {id(b) for b in allocator.blocks()} == {id(b) for b in blocks}
    view = memoryview(blocks[3])

    def free_batch_and_catch() -> BaseException | None:
        try:
            allocator.free_many(blocks)
        except BaseException as error:
            return error
        return None

    (error,) = _run_while_locked(allocator, free_batch_and_catch)
    assert isinstance(error, errors.ViewsOutstandingError) and all(b.alive for b in blocks)
    view.release()
    (error,) = _run_while_locked(allocator, free_batch_and_catch)
    assert error is None and not any(b.alive for b in blocks) and allocator.blocks() == []


def test_one_bad_block_refuses_the_whole_batch(allocator: allocffi.Allocator) -> None:
    with allocffi.open("bump") as other:
        good = allocator.alloc_many(20, 48) + allocator.alloc_many(5, 1000)
        freed = allocator.alloc(48)
        allocator.free(freed)
        moved = allocator.alloc(48)
        moved_to = allocator.realloc(moved, 64)
        foreign = other.alloc(48)
        bad_cases: list[tuple[object, type[BaseException]]] = [
            (foreign, errors.ForeignBlockError),
            (freed, errors.DoubleFreeError),
            (moved, errors.StaleBlockError),
            (good[11], errors.DoubleFreeError),  # listed twice
            (object(), TypeError),
        ]
        for locked in (False, True):
            for bad, error_type in bad_cases:
                batch = [*good[:15], bad, *good[15:]]
                before = _snapshot(allocator)

                def free_and_catch(batch: list[object] = batch) -> BaseException | None:
                    try:
                        allocator.free_many(batch)  # type: ignore[arg-type]
                    except BaseException as caught:
                        return caught
                    return None

                if locked:  # the slow path, after waiting for the lock
                    (error,) = _run_while_locked(allocator, free_and_catch)
                else:
                    error = free_and_catch()
                assert isinstance(error, error_type), (bad, error)
                assert all(b.alive for b in good) and moved_to.alive
                assert _snapshot(allocator) == before
        allocator.free_many(iter([*good, moved_to]))  # any iterable
        assert allocator.blocks() == [] and not any(b.alive for b in good)
        other.free(foreign)


def test_views_refuse_the_whole_batch_before_duplicates(allocator: allocffi.Allocator) -> None:
    blocks = allocator.alloc_many(10, 32)
    view = memoryview(blocks[9])
    before = _snapshot(allocator)
    with pytest.raises(errors.ViewsOutstandingError):
        allocator.free_many([*blocks, blocks[0]])
    assert _snapshot(allocator) == before and all(b.alive for b in blocks)
    view.release()
    with pytest.raises(errors.DoubleFreeError, match="twice"):
        allocator.free_many([*blocks, blocks[0]])
    assert _snapshot(allocator) == before and all(b.alive for b in blocks)
    allocator.free_many(tuple(blocks))
    assert allocator.blocks() == []


def test_batch_of_an_older_generation_is_stale() -> None:
    with allocffi.open("bump") as a:
        old = a.alloc_many(5, 16)
        a.reset()
        fresh = a.alloc_many(5, 16)
        before = _snapshot(a)
        with pytest.raises(errors.StaleBlockError, match="reset"):
            a.free_many([*fresh, old[2]])
        assert _snapshot(a) == before and all(b.alive for b in fresh)
        a.free_many(fresh)
        assert a.blocks() == []


@pytest.mark.parametrize("n", [3000, 70_000])  # the fast path, and beyond its size limit (slow path)
def test_out_of_memory_mid_batch_allocates_nothing(n: int) -> None:
    with allocffi.open("slab", byte_limit=1 << 20) as a:
        kept = a.alloc_many(10, 48)
        before = _snapshot(a)
        failures = a.stats()["failures"]
        with pytest.raises(errors.ByteLimitError, match=rf"alloc_many\({n}, 1024, align=16\)"):
            a.alloc_many(n, 1024)  # the limit is met after ~1000 of them
        after = _snapshot(a)
        assert after[:2] == before[:2]  # (the refused batch's allocs were undone: counted as frees)
        assert after[2] - after[3] == before[2] - before[3]
        assert a.stats()["failures"] == failures + 1  # counted once: the slow path did not retry
        assert all(b.alive for b in kept)
        many = a.alloc_many(500, 1024)  # the memory of the refused batch was given back
        a.free_many(many + kept)
        assert a.blocks() == []


def test_large_batches_take_the_slow_path_and_work() -> None:
    with allocffi.open("slab") as a:
        blocks = a.alloc_many(70_000, 8)
        assert len(blocks) == 70_000 and len({b.address for b in blocks}) == 70_000
        assert a.stats()["live_blocks"] == 70_000
        a.free_many(blocks)
        assert a.blocks() == [] and a.stats()["blocks_in_use"] == 0


def test_batch_arguments_decline_to_precise_errors(allocator: allocffi.Allocator) -> None:
    with pytest.raises(errors.InvalidSizeError):
        allocator.alloc_many(-1, 8)
    with pytest.raises(TypeError):
        allocator.alloc_many(2.0, 8)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidAlignmentError):
        allocator.alloc_many(2, 8, 3)
    with pytest.raises(TypeError):
        allocator.free_many(None)  # type: ignore[arg-type]
    assert allocator.alloc_many(0, 8) == [] and allocator.blocks() == []
    allocator.free_many([])
    allocator.close()
    with pytest.raises(errors.ClosedAllocatorError):
        allocator.alloc_many(0, 8)
    with pytest.raises(errors.ClosedAllocatorError):
        allocator.free_many([])
