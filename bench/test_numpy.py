"""NumPy workloads as pytest-benchmark groups ("numpy-<workload>"): NumPy's default handler and
allocators behind allocffi.numpy side by side.

Each round runs the workload's loop (allocffi/harness/numpy_bench/workloads.py) at a fraction of the CLI's
iterations. ``extra_info["ns_per_op"]`` is the median round per iteration; the two targets of the
handler are also measured as interleaved ratios inside one test, so machine noise hits both sides
alike: ``ratio_vs_numpy`` (the handler's cost per 1-element array under the slab, target <= 1.10;
a 16 MiB create/write/drop loop under the large-region cache, target <= 0.5). Timings are recorded,
never asserted. ``allocffi numpy-bench`` is the process-isolated comparison with peak RSS.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import allocffi
from allocffi.harness.numpy_bench.workloads import WORKLOADS, run

try:
    import numpy as np
except ModuleNotFoundError:  # an optional extra: skipped without it, except in CI mode
    if (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        or os.environ.get("ALLOCFFI_REQUIRE_ALL") == "1"
    ):
        raise
    pytest.skip("numpy is not installed (pip install 'allocffi[numpy]')", allow_module_level=True)
import allocffi.numpy as anp

SCALE = 0.1
HANDLERS = ["numpy", "slab", "large"]
CASES = [(w, h) for w in WORKLOADS for h in HANDLERS]


@pytest.fixture
def handler(request: pytest.FixtureRequest) -> Iterator[allocffi.Allocator | None]:
    name: str = request.param
    if name == "numpy":
        yield None
        return
    with allocffi.open(name) as allocator, anp.use(allocator):
        yield allocator


def _loop(workload: str, allocator: allocffi.Allocator | None) -> Callable[[], None]:
    spec = WORKLOADS[workload]
    iterations = max(1, int(spec.iterations * SCALE))
    reset = (
        allocator.reset
        if allocator is not None and allocffi.Capability.RESET in allocator.capabilities
        else None
    )

    def body() -> None:
        run(np, spec, iterations, reset)

    return body


@pytest.mark.parametrize(("workload", "handler"), CASES, indirect=["handler"])
def test_numpy_workload(benchmark: Any, workload: str, handler: allocffi.Allocator | None) -> None:
    benchmark.group = f"numpy-{workload}"
    body = _loop(workload, handler)
    benchmark.pedantic(body, rounds=5, warmup_rounds=1)
    iterations = max(1, int(WORKLOADS[workload].iterations * SCALE))
    median = benchmark.stats.stats.median if benchmark.stats is not None else math.nan
    benchmark.extra_info["ns_per_op"] = median / iterations * 1e9
    if handler is not None:
        assert handler._foreign == (0, 0)  # every array of the loop died


def _interleaved_ratio(subject: Callable[[], None], baseline: Callable[[], None], rounds: int) -> float:
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        subject()
        t1 = time.perf_counter_ns()
        baseline()
        t2 = time.perf_counter_ns()
        ratios.append((t1 - t0) / max(t2 - t1, 1))
    return statistics.median(ratios)


@pytest.mark.parametrize(("workload", "allocator_name"), [("create-1", "slab"), ("large-16m", "large")])
def test_numpy_handler_targets(benchmark: Any, workload: str, allocator_name: str) -> None:
    """The two targets as ratios against NumPy's default handler, interleaved in one test."""
    benchmark.group = "numpy-targets"
    default = _loop(workload, None)
    with allocffi.open(allocator_name) as allocator:
        ours = _loop(workload, allocator)

        def under_handler() -> None:
            with anp.use(allocator):
                ours()

        benchmark.pedantic(under_handler, rounds=3, warmup_rounds=1)
        rounds = 1 if benchmark.disabled else 9
        benchmark.extra_info["ratio_vs_numpy"] = _interleaved_ratio(under_handler, default, rounds)
