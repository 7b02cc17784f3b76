"""Names the harness knows and how big a default run of each workload is.

Invariants:
- ``ALLOCATORS`` are the competitors, in report column order; libc is the
  baseline every speedup is measured against (as in mimalloc-bench).
- ``mmap`` (a fresh mapping per request) is a baseline that only makes sense
  for workloads of large blocks: the harness runs it for ``MMAP_WORKLOADS``
  only. ``null`` measures the engine's own cost and is never a competitor.
- Every allocator of one workload runs the same number of ops, so their
  checksums must be equal.
"""

from __future__ import annotations

from collections.abc import Mapping

from allocffi.allocators import ALLOCATOR_NAMES

# Competitors, in column order: ours first, then the system allocators.
ALLOCATORS: tuple[str, ...] = ALLOCATOR_NAMES
BASELINE = "libc"
MMAP = "mmap"
NULL = "null"
SELECTABLE: tuple[str, ...] = (*ALLOCATORS, MMAP)

# The process-wide system allocators, for "fastest system allocator" targets.
SYSTEM_ALLOCATORS: tuple[str, ...] = ("libc", "mimalloc", "jemalloc", "tcmalloc")

# Workloads of large blocks, where one mmap per request is a meaningful floor.
MMAP_WORKLOADS: frozenset[str] = frozenset({"large-cycle", "large", "oversize"})

# Default ops per workload, measured on a 2-core machine so that a full
# default run (every allocator, --repeat 5) takes about three minutes, of which
# process start-up (~100 ms a run, ~1000 runs) is more than half. Fast
# allocators run for 5-100 ms. The large-block workloads are shorter for them
# because mmap (and bump, a chunk per large block) pay ~10-20 us per op there.
# A workload missing here is calibrated: see DEFAULT_CALIBRATION_BUDGET_S.
DEFAULT_OPS: Mapping[str, int] = {
    "fixed-48": 4_000_000,
    "fixed-256": 2_000_000,
    "fixed-4096": 1_000_000,
    "copy-48": 2_000_000,
    "copy-256": 2_000_000,
    "copy-4096": 600_000,
    "pool-64": 2_000_000,
    "pool-1024": 800_000,
    "batch-100": 1_000_000,
    "mixed": 300_000,
    "small": 2_000_000,
    "large": 50_000,
    "exact": 300_000,
    "inexact": 500_000,
    "oversize": 50_000,
    "high-frequency": 2_000_000,
    "memory-pressure": 600_000,
    "large-cycle": 50_000,
    "stress": 200_000,
    "threads-2": 200_000,
    "threads-4": 200_000,
}

# The scale suite (`allocffi bench --scale`, `make bench-scale`): live sets of
# N blocks freed in a random order or in allocation order, named
# live-<sizes>-<N>-<order>. They hold up to 1e6 blocks (hundreds of MiB), so
# the default run leaves them out. Ops are whole phases (multiples of N) and
# give each run at least three phases, the first of which pays the page faults.
SCALE_PREFIX = "live-"
SCALE_OPS: Mapping[str, int] = {
    "live-64-1e3-random": 3_000_000,
    "live-64-1e4-random": 3_000_000,
    "live-64-1e5-random": 3_000_000,
    "live-64-1e6-random": 4_000_000,
    "live-64-1e3-inorder": 3_000_000,
    "live-64-1e4-inorder": 3_000_000,
    "live-64-1e5-inorder": 3_000_000,
    "live-64-1e6-inorder": 4_000_000,
    "live-mixed-1e6-random": 3_000_000,
    "live-mixed-1e6-inorder": 3_000_000,
    "live-large-1e2-random": 100_000,
    "live-large-1e3-random": 100_000,
    "live-large-1e3-inorder": 100_000,
}
DEFAULT_OPS = {**DEFAULT_OPS, **SCALE_OPS}  # every workload's default ops, one lookup


def is_scale_workload(workload: str) -> bool:
    """Whether ``workload`` belongs to the scale suite rather than the default run."""
    return workload.startswith(SCALE_PREFIX)


# A workload without a DEFAULT_OPS entry gets the ops its slowest allocator
# completes in this many seconds.
DEFAULT_CALIBRATION_BUDGET_S = 0.05


def runs_on(allocator: str, workload: str) -> bool:
    """Whether the harness runs ``allocator`` on ``workload`` at all.

    The large-region cache maps whole pages per block: on the live sets of
    small blocks it would hold up to a million mappings (past the kernel's
    vm.max_map_count), so of the scale suite it runs the large-block sets only.
    """
    if allocator == MMAP:
        return workload in MMAP_WORKLOADS
    if allocator == "large" and is_scale_workload(workload):
        return workload.startswith(SCALE_PREFIX + "large-")
    return True
