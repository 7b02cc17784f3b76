"""allocffi.numpy: NumPy arrays whose data comes from an allocffi allocator (NEP 49 handler)."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
from typing import Any

import pytest
from conftest import ensure_available, require_numpy

import allocffi
from allocffi import _safe, errors

np: Any = require_numpy()
import allocffi.numpy as anp  # noqa: E402  (needs numpy, checked above)


def test_values_computed_on_arrays_from_every_allocator(allocator: allocffi.Allocator) -> None:
    before = allocator.stats()["blocks_in_use"]
    with anp.use(allocator):
        x = np.arange(10_000, dtype=np.float64)
        y = np.sqrt(x * 2.0 + 1.0)
        m = (np.arange(64 * 64, dtype=np.int64).reshape(64, 64) @ np.eye(64, dtype=np.int64))[::2]
    assert anp.handler_of(x) is allocator and anp.handler_of(y) is allocator
    assert anp.handler_of(m) is allocator  # a view: followed to its owner
    assert y[12] == pytest.approx(5.0) and y.sum() == pytest.approx(
        np.sqrt(np.arange(10_000) * 2.0 + 1).sum()
    )
    assert m[1, 3] == 2 * 64 + 3 and m.shape == (32, 64)
    assert allocator.stats()["blocks_in_use"] >= before + 3  # stats() counts NumPy's blocks
    del x, y, m
    gc.collect()
    assert allocator.stats()["blocks_in_use"] == before and allocator._foreign == (0, 0)


def test_the_capsule_is_a_mem_handler_and_default_is_restored() -> None:
    api = anp._numpy_api()
    default = _safe.numpy_get_handler(api)
    with allocffi.open("slab") as slab:
        with anp.use(slab):
            capsule = _safe.numpy_get_handler(api)
            assert 'capsule object "mem_handler"' in repr(capsule) and anp.installed() is slab
        assert _safe.numpy_get_handler(api) is default and anp.installed() is None
        assert anp.handler_of(np.ones(4)) is None  # NumPy's default handler


def test_zero_size_shapes_and_resize_keep_sizes() -> None:
    with allocffi.open("slab") as slab:
        with anp.use(slab):
            empty = np.empty((2, 0, 2))
            grown = np.arange(10, dtype=np.int32)
            grown.resize(100_000, refcheck=False)  # NumPy's realloc: no old size given
            shrunk = np.arange(5000, dtype=np.int64)
            shrunk.resize(3, refcheck=False)
        assert empty.size == 0 and anp.handler_of(empty) is slab
        assert list(grown[:10]) == list(range(10)) and not grown[10:].any()
        assert list(shrunk) == [0, 1, 2]
        live, live_bytes = slab._foreign
        assert live == 3 and live_bytes == 100_000 * 4 + 3 * 8 + empty.nbytes + (
            1 if empty.nbytes == 0 else 0
        )
        del empty, grown, shrunk
        assert slab._foreign == (0, 0) and slab.stats()["blocks_in_use"] == 0


@pytest.mark.parametrize("align", [64, 4096])
def test_alignment(align: int) -> None:
    with allocffi.open("large") as large:
        with anp.use(large, align=align):
            arrays = [np.zeros(n) for n in (1, 7, 1000, 100_000)]
        assert all(a.ctypes.data % align == 0 for a in arrays)
        del arrays


@pytest.mark.parametrize("operation", ["close", "reset", "trim"])
def test_release_is_refused_while_arrays_live(operation: str) -> None:
    with allocffi.open("bump") as arena:
        kept = arena.alloc(64)
        with anp.use(arena):
            arrays = [np.full(1000, 7.0), np.arange(10)]
        stats = arena.stats()
        with pytest.raises(BufferError) as info:
            getattr(arena, operation)()
        assert isinstance(info.value, errors.ViewsOutstandingError)
        assert "2 NumPy array(s) holding 8080 bytes" in str(info.value)
        assert arena.stats() == stats and kept.alive and not arena.closed  # nothing changed
        assert arrays[0].sum() == 7000.0
        del arrays  # "freed" into the arena: counted, reclaimed at reset
        getattr(arena, operation)()
        if operation != "close":
            assert arena.stats()["bytes_in_use"] == 0 or operation == "trim"


def test_bump_arena_serves_arrays_until_reset() -> None:
    with allocffi.open("bump") as arena:
        with anp.use(arena):
            for _ in range(100):
                t = np.ones(100) * 3  # temporaries die at once
            assert t.sum() == 300.0
        with pytest.raises(errors.ViewsOutstandingError, match="1 NumPy array"):
            arena.reset()
        del t
        arena.reset()
        assert arena.stats()["resets"] == 1


def test_dropped_allocator_lives_while_its_arrays_do() -> None:
    gc.collect()
    handles = _safe.open_handles()
    slab = allocffi.open("slab")
    with anp.use(slab):
        array = np.arange(1000)
    del slab
    gc.collect()
    assert _safe.open_handles() == handles + 1  # the array's handler holds the allocator
    assert array.sum() == 499_500 and anp.handler_of(array).name == "slab"
    del array
    gc.collect()
    assert _safe.open_handles() == handles  # last array gone: the allocator was closed


def test_allocation_failure_is_memory_error_and_the_allocator_stays_usable() -> None:
    with allocffi.open("slab", byte_limit=1 << 20) as slab:
        with anp.use(slab):
            small = np.ones(100)
            with pytest.raises(MemoryError):
                np.empty(4 << 20)
            with pytest.raises(MemoryError):
                small.resize(10 << 20, refcheck=False)
            assert small.sum() == 100.0
            more = np.arange(1000)
        assert more.sum() == 499_500 and slab.stats()["failures"] >= 2
        del small, more


def test_a_plain_thread_uses_numpy_default_and_allocffi_thread_inherits() -> None:
    with allocffi.open("slab") as slab, anp.use(slab):
        seen: dict[str, object] = {}

        def record(key: str) -> None:
            seen[key] = anp.handler_of(np.zeros(10))

        plain = threading.Thread(target=record, args=("plain",))
        inheriting = anp.Thread(target=record, args=("inheriting",))
        for t in (plain, inheriting):
            t.start()
            t.join(60)
        assert seen == {"plain": None, "inheriting": slab}


def test_threads_allocate_and_free_arrays_concurrently() -> None:
    with allocffi.open("slab") as slab:
        failures: list[BaseException] = []
        handoff: list[Any] = []

        def work(index: int) -> None:
            try:
                for i in range(200):
                    a = np.full(100 + i, float(index))
                    assert a.sum() == float(index) * (100 + i)
                    handoff.append(a)  # freed later, maybe by another thread
                    if len(handoff) > 20:
                        handoff.pop(0)
            except BaseException as error:
                failures.append(error)

        with anp.use(slab):
            threads = [anp.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failures, failures[0]
        handoff.clear()
        assert slab._foreign == (0, 0) and slab.stats()["blocks_in_use"] == 0


def test_asyncio_tasks_inherit_the_handler() -> None:
    async def make() -> object:
        return anp.handler_of(np.zeros(10))

    async def main() -> tuple[object, object]:
        inside = await asyncio.create_task(make())
        return inside, anp.installed()

    with allocffi.open("slab") as slab:
        with anp.use(slab):
            inside, installed = asyncio.run(main())
        assert inside is slab and installed is slab
        assert asyncio.run(make()) is None  # outside the block: NumPy's default


def test_bad_input_is_an_exception_and_changes_nothing() -> None:
    api = anp._numpy_api()
    default = _safe.numpy_get_handler(api)
    closed = allocffi.open("slab")
    closed.close()
    with pytest.raises(errors.ClosedAllocatorError):
        anp.install(closed)
    with allocffi.open("slab") as slab:
        for align in (3, 0, 8192):
            with pytest.raises(errors.InvalidAlignmentError):
                anp.install(slab, align=align)
        with pytest.raises(TypeError):
            anp.install("slab")  # type: ignore[arg-type]
        with pytest.raises(anp.HandlerOrderError):
            anp.uninstall()
    assert _safe.numpy_get_handler(api) is default


def test_nested_use_blocks_exited_out_of_order() -> None:
    with allocffi.open("slab") as a, allocffi.open("large") as b:
        first = anp.use(a)
        first.__enter__()
        anp.install(b)  # someone else installs inside the block
        with pytest.raises(anp.HandlerOrderError):
            first.__exit__(None, None, None)
        assert anp.installed() is b  # nothing changed
        anp.uninstall()
        assert anp.installed() is a
        anp.uninstall()
        assert anp.installed() is None


def test_thread_bound_allocator_from_another_thread() -> None:
    ensure_available("mimalloc-heap")
    with allocffi.open("mimalloc-heap") as heap:
        caught: list[BaseException] = []

        def elsewhere() -> None:
            try:
                anp.install(heap)
            except BaseException as error:
                caught.append(error)

        t = threading.Thread(target=elsewhere)
        t.start()
        t.join(60)
        assert len(caught) == 1 and isinstance(caught[0], errors.ThreadAffinityError)
        with anp.use(heap):
            with pytest.raises(errors.ThreadAffinityError):
                anp.Thread(target=print)
            array = np.arange(100)
        assert anp.handler_of(array) is heap
        del array


def test_without_numpy_the_error_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None\n"
        "import allocffi, allocffi.numpy\n"
        "try:\n"
        "    allocffi.numpy.install(allocffi.open('slab'))\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pip install 'allocffi[numpy]'" in result.stdout


def test_closing_an_installed_allocator_without_arrays_makes_new_arrays_fail_cleanly() -> None:
    slab = allocffi.open("slab")
    with anp.use(slab):
        slab.close()  # allowed: no array holds its memory
        with pytest.raises(MemoryError):
            np.empty(10)
    assert anp.handler_of(np.empty(10)) is None  # NumPy's default is back
