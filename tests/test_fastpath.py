"""The C fast paths of alloc/calloc/free (csrc/python/allocstate.c) and their fallback.

The fast path takes the allocator's lock without waiting; when the lock is busy, or anything is
unusual, it declines and the Python slow path waits and checks. These tests force each branch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

import allocffi
from allocffi import _blockbuffer, errors
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
    lock = _blockbuffer.StateLock()
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
        _blockbuffer.bind_entry_points(1, 2, 3, 4)
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
