"""From runs to results: medians over repeats, speedups, checksum agreement.

One ``Result`` per (allocator, workload) summarises its repeats: the median
ns/op (robust to one noisy repeat) with min and max, and medians of the
memory figures. ``speedup`` is the baseline allocator's median divided by
this median (> 1: faster than the baseline; libc unless the user chose
another), None when the baseline did not run on the workload. Whether that
speedup is more than noise is ``speedup_verdict``: significance.compare_samples
on the two allocators' repeats, the same rule as a comparison of two runs.

Invariant: all runs of a workload used the same ops and seed, so every
correct allocator computed the same checksum; ``checksum_mismatches`` lists
the workloads where they disagree.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from allocffi.harness.bench.catalog import BASELINE
from allocffi.harness.core import significance
from allocffi.harness.core.children import RunRecord


@dataclass
class Result:
    """One (allocator, workload) over all its repeats."""

    allocator: str
    workload: str
    ns_per_op: float  # median over repeats
    ns_per_op_min: float
    ns_per_op_max: float
    repeats: int
    ops: int  # per run, equal for every allocator of the workload
    checksum: int  # the first repeat's; all repeats agree or the run failed
    samples: list[float] = field(default_factory=list)  # ns/op of each repeat, in run order
    speedup: float | None = None  # speedup_vs's median / this median; None: speedup_vs did not run here
    speedup_vs: str | None = None  # the baseline allocator of the speedup
    speedup_low: float | None = None  # confidence interval of speedup (bootstrap, see significance)
    speedup_high: float | None = None
    speedup_verdict: str | None = None  # significance label: faster / slower than speedup_vs, or not
    peak_rss_bytes: int = 0  # median over repeats of the child's own peak RSS (VmHWM; see _peak_rss)
    rss_growth_bytes: int = 0  # median of rss_after - rss_before (may be negative)
    bytes_per_op: float = 0.0  # requested bytes per op (the workload's, not the allocator's)
    minor_faults: int = 0  # median over repeats
    major_faults: int = 0
    threads: int = 1
    user_ns_per_op: float = 0.0  # median CPU time per op in user mode
    sys_ns_per_op: float = 0.0  # median CPU time per op in the kernel
    mode: str = "free"  # "free": every block freed; "arena": no frees, one reset per phase
    peak_live_bytes: int = 0  # the allocator's peak of live requested bytes (equal in every repeat)
    rss_per_live_byte: float | None = None  # median of (peak RSS - RSS before) / peak_live_bytes
    touch: str = "ends"  # the workload's touch policy: ends, pages or all
    sharing: str = "one thread"  # one thread, per-thread instances or one shared instance

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def spread(self) -> float:
        """(max - min) / median of the repeats."""
        return significance.spread(self.samples or [self.ns_per_op])

    @property
    def significantly_slower(self) -> bool:
        return self.speedup_verdict == significance.SLOWER

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _median_int(values: Sequence[int]) -> int:
    return int(statistics.median(values))


def _peak_rss(run: RunRecord) -> int:
    """The child's own peak RSS: the worker's VmHWM reading when it has one.

    The engine's peak_rss_bytes is ru_maxrss, which Linux carries over
    fork+exec: a child of a big parent would report the parent's size.
    """
    own = run.result.get("process_peak_rss_bytes")
    return int(own) if own else int(run.result["peak_rss_bytes"])


def summarize(allocator: str, workload: str, runs: Sequence[RunRecord]) -> Result:
    """Aggregate the repeats of one (allocator, workload)."""
    if not runs:
        raise ValueError(f"no runs for {allocator} on {workload}")
    samples = [r.ns_per_op for r in runs]
    ops = runs[0].ops
    first = runs[0].result
    return Result(
        allocator=allocator,
        workload=workload,
        ns_per_op=statistics.median(samples),
        ns_per_op_min=min(samples),
        ns_per_op_max=max(samples),
        repeats=len(runs),
        ops=ops,
        checksum=runs[0].checksum,
        samples=samples,
        peak_rss_bytes=_median_int([_peak_rss(r) for r in runs]),
        rss_growth_bytes=_median_int(
            [int(r.result["rss_after_bytes"]) - int(r.result["rss_before_bytes"]) for r in runs]
        ),
        bytes_per_op=int(first["bytes_requested"]) / ops if ops else 0.0,
        minor_faults=_median_int([int(r.result["minor_faults"]) for r in runs]),
        major_faults=_median_int([int(r.result["major_faults"]) for r in runs]),
        threads=int(first.get("threads", 1) or 1),
        user_ns_per_op=statistics.median([int(r.result["user_ns"]) / max(r.ops, 1) for r in runs]),
        sys_ns_per_op=statistics.median([int(r.result["sys_ns"]) / max(r.ops, 1) for r in runs]),
        mode=str(first.get("mode", "free")),
        peak_live_bytes=int(first.get("stats", {}).get("peak_bytes_in_use", 0)),
        rss_per_live_byte=_median_or_none([r.result.get("rss_per_live_byte") for r in runs]),
        touch=str(first.get("touch", "ends")),
        sharing=str(first.get("sharing", "one thread")),
    )


def _median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def aggregate(runs: Iterable[RunRecord], baseline: str = BASELINE) -> list[Result]:
    """One Result per (allocator, workload), in first-run order, with speedups filled in."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for run in runs:
        groups[(run.spec.allocator, run.spec.workload)].append(run)
    results = [summarize(a, w, rs) for (a, w), rs in groups.items()]
    fill_speedups(results, baseline)
    return results


def _samples(result: Result) -> list[float]:
    return list(result.samples) or [result.ns_per_op]  # a file without samples: its median alone


def fill_speedups(results: Sequence[Result], baseline: str = BASELINE) -> None:
    """Speedup of each result over ``baseline`` on the same workload, with its interval and verdict."""
    base = {r.workload: r for r in results if r.allocator == baseline}
    for r in results:
        ref = base.get(r.workload)
        r.speedup_vs = baseline if ref is not None else None
        r.speedup = r.speedup_low = r.speedup_high = r.speedup_verdict = None
        if ref is None or r.ns_per_op <= 0:
            continue
        r.speedup = ref.ns_per_op / r.ns_per_op
        if r is ref:
            r.speedup_low = r.speedup_high = 1.0
            continue
        verdict = significance.compare_samples(_samples(ref), _samples(r))
        r.speedup_low = 1 / verdict.high if verdict.high > 0 else None
        r.speedup_high = 1 / verdict.low if verdict.low > 0 else None
        r.speedup_verdict = verdict.label


@dataclass(frozen=True)
class ChecksumMismatch:
    """A workload whose runs did not all compute the same checksum."""

    workload: str
    checksums: Mapping[str, list[int]]  # allocator -> checksum of each repeat

    def describe(self) -> str:
        """Which allocators computed which checksums, e.g. "w: 0x55: libc, bump; 0x66: slab"."""
        groups: dict[tuple[int, ...], list[str]] = {}
        for allocator, sums in self.checksums.items():
            groups.setdefault(tuple(sorted(set(sums))), []).append(allocator)
        if len(groups) == 1:
            (seen,) = groups
            return (
                f"{self.workload}: every allocator agrees within a repeat but the checksum changed between "
                f"repeats ({', '.join(f'{s:#x}' for s in seen)}): was the library rebuilt during the run?"
            )
        parts = ["/".join(f"{s:#x}" for s in key) + ": " + ", ".join(names) for key, names in groups.items()]
        return f"{self.workload}: " + "; ".join(parts)


def checksum_mismatches(runs: Iterable[RunRecord]) -> list[ChecksumMismatch]:
    """Workloads where not every run agrees on the checksum."""
    by_workload: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_workload[run.spec.workload][run.spec.allocator].append(run.checksum)
    mismatches = []
    for workload, per_allocator in by_workload.items():
        distinct = {s for sums in per_allocator.values() for s in sums}
        if len(distinct) > 1:
            mismatches.append(ChecksumMismatch(workload, {a: list(s) for a, s in per_allocator.items()}))
    return mismatches
