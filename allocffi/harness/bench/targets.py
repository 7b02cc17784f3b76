"""The project's performance targets (BRIEF), checked against one run.

Each target is a ratio inside one run, so machine speed cancels out: the
subject allocator's speedup over a reference (the fastest of a set of
allocators) on one workload must reach a minimum. The engine-overhead target
is an absolute bound on the null allocator's ns/op.

A target whose allocators or workload did not run is "n/a", never "met".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from allocffi.harness.bench.catalog import SYSTEM_ALLOCATORS
from allocffi.harness.core.stats import Result

MET = "met"
MISSED = "missed"
NOT_RUN = "n/a"


@dataclass(frozen=True)
class SpeedupTarget:
    """subject must be >= min_speedup times faster than the fastest reference on workload."""

    subject: str
    workload: str
    references: tuple[str, ...]
    min_speedup: float

    @property
    def label(self) -> str:
        if len(self.references) == 1:
            versus = self.references[0]
        else:
            versus = "fastest of " + "/".join(self.references)
        if self.min_speedup < 1.0:
            return f"{self.subject} {self.workload}: no slower than {1.0 / self.min_speedup:.3g}x {versus}"
        return f"{self.subject} {self.workload}: >= {self.min_speedup:g}x faster than {versus}"


@dataclass(frozen=True)
class OverheadTarget:
    """The null allocator's ns/op on workload must stay below max_ns."""

    workload: str
    max_ns: float

    @property
    def label(self) -> str:
        return f"engine overhead (null allocator, {self.workload}) < {self.max_ns:g} ns/op"


@dataclass(frozen=True)
class Outcome:
    label: str
    status: str  # MET, MISSED or NOT_RUN
    measured: str  # e.g. "2.41x (vs tcmalloc)", "1.3 ns/op", or why it did not run


_FAST_SYSTEM = ("mimalloc", "jemalloc", "tcmalloc")

SPEEDUP_TARGETS: tuple[SpeedupTarget, ...] = (
    SpeedupTarget("bump", "fixed-48", _FAST_SYSTEM, 2.0),
    SpeedupTarget("bump", "fixed-48", ("libc",), 4.0),
    SpeedupTarget("bump", "fixed-256", _FAST_SYSTEM, 2.0),
    SpeedupTarget("bump", "fixed-256", ("libc",), 4.0),
    SpeedupTarget("slab", "pool-64", SYSTEM_ALLOCATORS, 1.5),
    SpeedupTarget("slab", "mixed", SYSTEM_ALLOCATORS, 1.2),
    SpeedupTarget("large", "large-cycle", ("mmap",), 200.0),
    SpeedupTarget("large", "large-cycle", ("mimalloc",), 5.0),
    SpeedupTarget("large", "large-cycle", ("jemalloc",), 5.0),
    SpeedupTarget("large", "large-cycle", ("libc",), 1.0 / 1.5),
    # The scale suite (allocffi bench --scale): n/a in the default run.
    SpeedupTarget("slab", "live-64-1e5-random", SYSTEM_ALLOCATORS, 1.0 / 1.2),
    SpeedupTarget("slab", "live-64-1e6-random", SYSTEM_ALLOCATORS, 1.0 / 1.2),
    SpeedupTarget("large", "live-large-1e3-random", ("slab", *SYSTEM_ALLOCATORS), 1.0 / 2.0),
)

OVERHEAD_TARGET = OverheadTarget("fixed-48", 2.0)

# Targets measured by the pytest-benchmark suite, not by ``allocffi bench``.
PYTHON_TARGETS: tuple[str, ...] = (
    "Python raw path alloc+free <= 1.3x two bare cffi calls (pytest bench/test_python_cost.py)",
    "Python batch path <= 25 ns per block (pytest bench/test_python_cost.py)",
)


def check_speedup(target: SpeedupTarget, results: Mapping[tuple[str, str], Result]) -> Outcome:
    names = (target.subject, *target.references)
    missing = [n for n in names if (n, target.workload) not in results]
    if missing:
        return Outcome(target.label, NOT_RUN, f"{'/'.join(missing)} did not run on {target.workload}")
    subject = results[(target.subject, target.workload)]
    fastest = min((results[(r, target.workload)] for r in target.references), key=lambda r: r.ns_per_op)
    speedup = fastest.ns_per_op / subject.ns_per_op if subject.ns_per_op > 0 else float("inf")
    status = MET if speedup >= target.min_speedup else MISSED
    return Outcome(target.label, status, f"{speedup:.2f}x vs {fastest.allocator}")


def check_overhead(target: OverheadTarget, overhead: Mapping[str, float]) -> Outcome:
    ns = overhead.get(target.workload)
    if ns is None:
        return Outcome(target.label, NOT_RUN, f"{target.workload} did not run")
    return Outcome(target.label, MET if ns < target.max_ns else MISSED, f"{ns:.2f} ns/op")


def check_all(results: Sequence[Result], overhead: Mapping[str, float]) -> list[Outcome]:
    """Every target, in BRIEF order: speedups first, then the engine overhead."""
    by_key = {(r.allocator, r.workload): r for r in results}
    outcomes = [check_speedup(t, by_key) for t in SPEEDUP_TARGETS]
    outcomes.append(check_overhead(OVERHEAD_TARGET, overhead))
    return outcomes
