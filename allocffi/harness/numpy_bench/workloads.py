"""NumPy workloads, run from Python, for comparing allocators behind NumPy's data handler.

Each workload is a loop of whole NumPy operations (not single allocator calls), the same under
every allocator and under NumPy's own default handler (the baseline: it keeps a small-block
cache and asks for huge pages from 4 MiB). ``run(name, iterations)`` returns the loop's elapsed
nanoseconds; one iteration is one "op".

Resettable arenas (bump, mimalloc-heap, jemalloc-arena) cannot free one array: they are reset
every PHASE iterations, when no array is alive, as the engine's arena policy does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PHASE = 64


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    iterations: int  # default ops per run
    body: Callable[[Any, int], float]  # (numpy, iteration) -> a value that depends on the data


def _temporaries(np: Any, i: int) -> float:
    n = 1 + i % 100
    a = np.arange(n, dtype=np.float64)
    b = a * 2.0 + 1.0
    c = b * b - a
    return float(c[-1])


def _medium(np: Any, i: int) -> float:
    n = (1024 + (i * 7919) % (63 * 1024)) // 8  # 1-64 KiB of float64
    a = np.empty(n)
    a.fill(float(i & 7))
    b = a + a
    return float(b[-1])


_LARGE_SIZES = [1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20]


def _large(np: Any, i: int) -> float:
    n = _LARGE_SIZES[i % len(_LARGE_SIZES)] // 8
    a = np.zeros(n)
    a[:] = 1.0  # a full write: every page is touched
    b = np.empty(n)
    b[:] = a
    return float(b[-1])


def _create_1(np: Any, i: int) -> float:
    np.empty(1)  # created and dropped at once: the handler's own cost is most of it
    return 1.0


def _large_16m(np: Any, i: int) -> float:
    a = np.empty((16 << 20) // 8)
    a.fill(1.0)
    return float(a[-1])


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "temporaries",
            "element-wise expression on 1-100 element arrays (3 temporaries)",
            20_000,
            _temporaries,
        ),
        Workload("medium", "1-64 KiB arrays: empty, fill, add", 10_000, _medium),
        Workload("large", "1-64 MiB arrays: zeros + full write, empty + full copy", 28, _large),
        Workload(
            "create-1", "create and drop a 1-element array (the handler's own cost)", 100_000, _create_1
        ),
        Workload("large-16m", "create, fill and drop a 16 MiB array", 100, _large_16m),
    )
}


def run(np: Any, workload: Workload, iterations: int, reset: Callable[[], None] | None) -> tuple[int, float]:
    """Run ``iterations`` of ``workload`` (``reset`` every PHASE when given): (elapsed ns, checksum)."""
    body = workload.body
    checksum = 0.0
    start = time.perf_counter_ns()
    for i in range(iterations):
        checksum += body(np, i)
        if reset is not None and i % PHASE == PHASE - 1:
            reset()
    elapsed = time.perf_counter_ns() - start
    return elapsed, checksum
