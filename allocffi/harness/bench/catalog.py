"""Names the harness knows and how big a default run of each workload is.

Invariants:
- ``ALLOCATORS`` are the competitors, in report column order; libc is the
  baseline every speedup is measured against (as in mimalloc-bench).
- ``mmap`` (a fresh mapping per request) is a baseline that only makes sense
  for workloads of large blocks: the harness runs it for ``MMAP_WORKLOADS``
  only. ``null`` measures the engine's own cost and is never a competitor.
- Every allocator of one workload runs the same number of ops, so their
  checksums must be equal.
- ``threads-N`` and ``shared-threads-N`` exist for every 1 <= N <= MAX_THREADS
  (the engine parses them too); ``thread_count`` is the one parser here.
- A competitor is an allocator in one run mode. An allocator that can both
  free single blocks and reset (its capabilities say FREE and RESET:
  mimalloc-heap, jemalloc-arena) is two competitors: its plain name frees
  every block, ``NAME+reset`` skips the frees and resets once per phase
  (arena mode). One that can only reset (bump) runs in arena mode under its
  plain name. The list is derived from the capabilities the worker reports,
  never written out by hand.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from allocffi.harness.core.errors import UsageError

# Competitors, in column order: ours first, then the system allocators. The names of the C
# registry (csrc/registry.c, allocffi.ALLOCATOR_NAMES), written out so that a harness process
# knows them without loading the library; tests/test_harness.py checks the two agree.
ALLOCATORS: tuple[str, ...] = (
    "bump",
    "slab",
    "large",
    "libc",
    "mimalloc",
    "jemalloc",
    "tcmalloc",
    "mimalloc-heap",
    "jemalloc-arena",
)
# The AF_CAP_* bits of allocffi.h that decide the run modes (checked by the same test).
CAP_FREE = 1
CAP_RESET = 2
BASELINE = "libc"
MMAP = "mmap"
NULL = "null"
SELECTABLE: tuple[str, ...] = (*ALLOCATORS, MMAP)

# The process-wide system allocators, for "fastest system allocator" targets.
SYSTEM_ALLOCATORS: tuple[str, ...] = ("libc", "mimalloc", "jemalloc", "tcmalloc")

# Workloads of large blocks, where one mmap per request is a meaningful floor.
MMAP_WORKLOADS: frozenset[str] = frozenset(
    {"large-cycle", "large", "oversize", "large-cycle-pages", "large-pages", "oversize-pages"}
)

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
    "shared-threads-2": 200_000,
    "shared-threads-4": 200_000,
    # one write per 4 KiB page: mmap faults every page in (~0.4 ms an op on large-pages,
    # ~2.5 ms on large-cycle-pages at load 6), the others recycle memory (1-20 us an op)
    "large-pages": 2_000,
    "oversize-pages": 2_000,
    "large-cycle-pages": 600,
}
# Any other threads-N or shared-threads-N: ops summed over the threads.
DEFAULT_THREADS_OPS = 200_000

# The engine's touch policies (allocffi.h AF_TOUCH_*), in enum order.
TOUCH_POLICIES: tuple[str, ...] = ("ends", "pages", "all")

# What the "sharing" field of a result says (af_bench_result.shared, threads).
SHARED_INSTANCE = "one shared instance"
PER_THREAD_INSTANCES = "per-thread instances"
ONE_THREAD = "one thread"

MAX_THREADS = 256
_THREADS = re.compile(r"(shared-)?threads-(\d+)")

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


# The suffix of an allocator's arena-mode competitor, and the two run modes
# every report row names.
RESET_SUFFIX = "+reset"
MODE_FREE = "free"
MODE_ARENA = "arena"


def thread_count(workload: str) -> int | None:
    """N of a threads-N / shared-threads-N name (any N, even out of range); None for other names."""
    match = _THREADS.fullmatch(workload)
    return int(match.group(2)) if match else None


def is_shared(workload: str) -> bool:
    """Whether the workload's threads share one allocator instance."""
    return workload.startswith("shared-threads-")


def check_workload_name(name: str, known: Collection[str]) -> None:
    """UsageError unless the engine runs ``name``: a table name or [shared-]threads-N in range."""
    if name in known:
        return
    threads = thread_count(name)
    if threads is not None:
        if 1 <= threads <= MAX_THREADS:
            return
        raise UsageError(f"{name!r}: N of threads-N and shared-threads-N must be in [1, {MAX_THREADS}]")
    plain = [w for w in known if thread_count(w) is None]
    raise UsageError(
        f"unknown workload {name!r}; choose from {', '.join(plain)}, threads-N, shared-threads-N "
        f"(1 <= N <= {MAX_THREADS}), or give your own with --workload-file"
    )


def default_ops(workload: str) -> int | None:
    """The table's ops for a workload, None when it must be calibrated."""
    if workload in DEFAULT_OPS:
        return DEFAULT_OPS[workload]
    return DEFAULT_THREADS_OPS if thread_count(workload) is not None else None


def sharing(shared: bool, threads: int) -> str:
    """The "sharing" field of a row."""
    if shared:
        return SHARED_INSTANCE
    return PER_THREAD_INSTANCES if threads > 1 else ONE_THREAD


def runs_on(allocator: str, workload: str) -> bool:
    """Whether the harness runs ``allocator`` (a competitor name) on ``workload`` at all.

    The large-region cache maps whole pages per block: on the live sets of
    small blocks it would hold up to a million mappings (past the kernel's
    vm.max_map_count), so of the scale suite it runs the large-block sets only.
    """
    if allocator == MMAP:
        return workload in MMAP_WORKLOADS
    if allocator == "large" and is_scale_workload(workload):
        return workload.startswith(SCALE_PREFIX + "large-")
    return True


def modes(caps: int) -> list[str]:
    """The run modes of an allocator with these AF_CAP_* bits, its plain name's first."""
    can_free, can_reset = bool(caps & CAP_FREE), bool(caps & CAP_RESET)
    if can_free:
        return [MODE_FREE, MODE_ARENA] if can_reset else [MODE_FREE]
    return [MODE_ARENA] if can_reset else []


def competitors(allocator: str, caps: int) -> list[str]:
    """The competitor names of one allocator: its plain name, then ``NAME+reset`` when it has both modes."""
    names = [allocator]
    if modes(caps) == [MODE_FREE, MODE_ARENA]:
        names.append(allocator + RESET_SUFFIX)
    return names


# The engine's run modes (allocffi.h AF_BENCH_MODE_*), in enum order: auto frees where the
# allocator can.
ENGINE_MODES: tuple[str, ...] = ("auto", MODE_FREE, MODE_ARENA)


def engine_run(competitor: str, workload: str) -> tuple[str, str]:
    """The allocator and engine mode (one of ENGINE_MODES) a competitor runs ``workload`` with.

    Arena mode for NAME+reset, and for the null allocator: the engine-overhead figure is the
    engine's floor with no free call, as it was before allocators had two modes (except on a
    shared instance, which only frees). Everything else runs in the automatic mode.
    """
    allocator, mode = split_competitor(competitor)
    if mode == MODE_ARENA or (allocator == NULL and not is_shared(workload)):
        return allocator, MODE_ARENA
    return allocator, "auto"


def split_competitor(name: str) -> tuple[str, str | None]:
    """``("jemalloc-arena", "arena")`` for ``jemalloc-arena+reset``; ``(name, None)`` (the
    allocator's own mode) for a plain name."""
    if name.endswith(RESET_SUFFIX):
        return name[: -len(RESET_SUFFIX)], MODE_ARENA
    return name, None


def base_selectable(name: str) -> bool:
    """Whether a competitor name can be valid before the worker says which allocators have both modes."""
    base, mode = split_competitor(name)
    return base in SELECTABLE and (mode is None or base in ALLOCATORS)
