"""What a call from Python costs (group "python-cost"), beside its floor.

Every benchmark runs LOOP operations per round, so pytest-benchmark's own
per-round overhead is spread thin; ``extra_info["ns_per_op"]`` is the median
round divided by LOOP (ns_per_block for the batch paths). The floor is a bare
cffi call that does nothing (``af_noop``).

The BRIEF's targets are ratios measured inside one test, interleaving the
two loops so machine noise hits both alike: the raw path's alloc+free against
two bare calls (``ratio_vs_two_noops``, target <= 1.3) and the batch path's
ns per block (target <= 25).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import allocffi
from allocffi import unchecked

GROUP = "python-cost"
LOOP = 1000
BATCH = 1000
SIZE = 48
ALIGN = 16


def ns_per(benchmark: Any, count: int) -> float:
    """Median round / count in ns; NaN under --benchmark-disable (each body then runs once, untimed)."""
    if benchmark.stats is None:
        return math.nan
    return float(benchmark.stats.stats.median) / count * 1e9


def interleaved_ratio(subject: Callable[[], None], floor: Callable[[], None], rounds: int = 15) -> float:
    """Median over rounds of subject time / floor time, the two run back to back."""
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        subject()
        t1 = time.perf_counter_ns()
        floor()
        t2 = time.perf_counter_ns()
        ratios.append((t1 - t0) / max(t2 - t1, 1))
    return statistics.median(ratios)


@pytest.fixture(params=["slab", "libc"])
def allocator(
    request: pytest.FixtureRequest, require_available: Callable[[str], None]
) -> Iterator[allocffi.Allocator]:
    require_available(request.param)
    a = allocffi.open(request.param)
    yield a
    a.close()


def noop_loop() -> None:
    noop = unchecked.noop
    for _ in range(LOOP):
        noop()


def two_noops_loop() -> None:
    noop = unchecked.noop
    for _ in range(LOOP):
        noop()
        noop()


def test_floor_noop(benchmark: Any) -> None:
    benchmark.group = GROUP
    benchmark(noop_loop)
    benchmark.extra_info["ns_per_op"] = ns_per(benchmark, LOOP)


def test_floor_two_noops(benchmark: Any) -> None:
    benchmark.group = GROUP
    benchmark(two_noops_loop)
    benchmark.extra_info["ns_per_op"] = ns_per(benchmark, LOOP)


def test_block_api_alloc_free(benchmark: Any, allocator: allocffi.Allocator) -> None:
    """The safe layer: a Block object, the lock, the live-block table."""
    benchmark.group = GROUP

    def loop() -> None:
        alloc, free = allocator.alloc, allocator.free
        for _ in range(LOOP):
            free(alloc(SIZE))

    benchmark(loop)
    benchmark.extra_info["ns_per_op"] = ns_per(benchmark, LOOP)
    benchmark.extra_info["ratio_vs_two_noops"] = interleaved_ratio(loop, two_noops_loop)
    assert allocator.stats()["blocks_in_use"] == 0


def _raw_pair_loop(allocator: allocffi.Allocator, path: str) -> Callable[[], None]:
    """LOOP alloc+free pairs through one of the unchecked paths."""
    if path == "int":  # int handle and addresses through allocffi's vectorcall helper
        h: Any = unchecked.handle_address(allocator)
        alloc, free = unchecked.alloc_address, unchecked.free_address
    else:  # cffi's own bindings: void* cdata, the GIL released around each call
        h = unchecked.handle(allocator)
        alloc, free = unchecked.alloc, unchecked.free

    def loop() -> None:
        for _ in range(LOOP):
            free(h, alloc(h, SIZE, ALIGN), SIZE, ALIGN)

    return loop


@pytest.mark.parametrize("path", ["int", "cffi"])
def test_unchecked_alloc_free(benchmark: Any, allocator: allocffi.Allocator, path: str) -> None:
    """The raw path ("int", the fast one) and cffi's bindings of the same entry points."""
    benchmark.group = GROUP
    loop = _raw_pair_loop(allocator, path)
    benchmark(loop)
    benchmark.extra_info["ns_per_op"] = ns_per(benchmark, LOOP)
    benchmark.extra_info["ratio_vs_two_noops"] = interleaved_ratio(loop, two_noops_loop)
    assert allocator.stats()["blocks_in_use"] == 0


def test_unchecked_batch_alloc_free(benchmark: Any, allocator: allocffi.Allocator) -> None:
    """BATCH blocks per call pair: the per-block cost once the call is amortised."""
    benchmark.group = GROUP
    h = unchecked.handle(allocator)
    ptrs = unchecked.pointer_array(BATCH)

    def batch() -> None:
        if unchecked.alloc_batch(h, SIZE, ALIGN, BATCH, ptrs) != BATCH:
            raise AssertionError("alloc_batch failed")
        if unchecked.free_batch(h, ptrs, BATCH, SIZE, ALIGN) != BATCH:
            raise AssertionError("free_batch refused a block")

    benchmark(batch)
    benchmark.extra_info["ns_per_block"] = ns_per(benchmark, BATCH)
    assert allocator.stats()["blocks_in_use"] == 0


def test_block_api_batch_alloc_free(benchmark: Any, allocator: allocffi.Allocator) -> None:
    """alloc_many/free_many: one C call each, plus a Block per block."""
    benchmark.group = GROUP

    def batch() -> None:
        allocator.free_many(allocator.alloc_many(BATCH, SIZE))

    benchmark(batch)
    benchmark.extra_info["ns_per_block"] = ns_per(benchmark, BATCH)
    assert allocator.stats()["blocks_in_use"] == 0
