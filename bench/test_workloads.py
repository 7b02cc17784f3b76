"""Every engine workload as a pytest-benchmark group, every allocator a member.

Each round is one ``af_bench_run`` call in this process (allocator created,
workload run, allocator destroyed), so pytest-benchmark's time is per run and
``extra_info`` carries what the engine measured inside the loop: ns_per_op
(median over rounds), checksum and ops. Every allocator of a workload must
compute the same checksum. Unlike ``allocffi bench`` the runs share one
process, so a system allocator's heap outlives its rounds: use this suite to
track one allocator over time (``--benchmark-compare``), the CLI to compare
allocators.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import pytest

from allocffi.harness._engine import ffi, lib
from allocffi.harness.bench.catalog import ALLOCATORS, DEFAULT_OPS, MMAP, is_scale_workload, runs_on

# A quarter of the CLI's default ops: each run takes a few milliseconds for a
# fast allocator, and the suite stays within a couple of minutes.
SUITE_SCALE = 0.25
FALLBACK_OPS = 100_000
ROUNDS = 7
SEED = 1

# The scale suite (live-*, up to 1e6 live blocks) runs in `make bench-scale` only.
ENGINE_WORKLOADS = [
    ffi.string(lib.af_bench_workload_name(i)).decode() for i in range(lib.af_bench_workload_count())
]
WORKLOADS = [name for name in ENGINE_WORKLOADS if not is_scale_workload(name)]


def refused(workload: str, allocator: str) -> bool:
    """Pairs the engine can never run (e.g. bump on shared-threads-N); unavailable ones skip instead."""
    names = (ffi.new("char[]", workload.encode()), ffi.new("char[]", allocator.encode()))
    config = ffi.new("af_bench_config *", {"workload": names[0], "allocator": names[1]})
    return bool(lib.af_bench_check(config, ffi.new("af_error *")) == lib.AF_ERR_UNSUPPORTED)


CASES = [(w, a) for w in WORKLOADS for a in (*ALLOCATORS, MMAP) if runs_on(a, w) and not refused(w, a)]

# The first checksum seen per (workload, ops): every later allocator must match it.
_checksums: dict[tuple[str, int], tuple[str, int]] = {}


def suite_ops(workload: str) -> int:
    return max(1000, int(DEFAULT_OPS.get(workload, FALLBACK_OPS) * SUITE_SCALE))


@pytest.mark.parametrize(("workload", "allocator"), CASES, ids=[f"{w}-{a}" for w, a in CASES])
def test_workload(
    benchmark: Any, require_available: Callable[[str], None], workload: str, allocator: str
) -> None:
    require_available(allocator)
    benchmark.group = workload
    ops = suite_ops(workload)
    names = (ffi.new("char[]", workload.encode()), ffi.new("char[]", allocator.encode()))
    config = ffi.new(
        "af_bench_config *", {"workload": names[0], "allocator": names[1], "ops": ops, "seed": SEED}
    )
    out = ffi.new("af_bench_result *")
    err = ffi.new("af_error *")
    per_op: list[float] = []
    checksums: set[int] = set()

    def run() -> None:
        status = lib.af_bench_run(config, out, err)
        if status != lib.AF_OK:
            raise AssertionError(f"af_bench_run({workload}, {allocator}): {ffi.string(err.message).decode()}")
        per_op.append(out.ns_per_op)
        checksums.add(out.checksum)

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert len(checksums) == 1, f"{allocator} computed different checksums across rounds of {workload}"
    checksum = checksums.pop()
    first = _checksums.setdefault((workload, ops), (allocator, checksum))
    assert checksum == first[1], (
        f"{workload}: {allocator} checksum {checksum:#x} != {first[0]}'s {first[1]:#x}"
    )
    benchmark.extra_info.update(
        ns_per_op=statistics.median(per_op[1:] or per_op),  # the warmup round is not a sample
        checksum=f"{checksum:#018x}",
        ops=out.ops,
        threads=out.threads,
        bytes_per_op=out.bytes_requested / out.ops if out.ops else 0.0,
    )
