"""Comparison of two runs: ``--baseline OLD.json`` and ``allocffi compare OLD.json NEW.json``.

Each (allocator, workload) present in both runs gets the verdict of
``significance.compare_samples`` on the two runs' per-repeat ns/op: "faster"
or "slower" only when the Mann-Whitney U test is significant at the
confidence level and the whole interval of the ratio of medians lies outside
the noise floor; otherwise "no significant change" (or "too few repeats").

Beside the verdicts, a comparison says what makes it doubtful: runs from
different machines, library versions or engine builds, a run taken on a busy
machine, cells run with different op counts. Two runs with no cell in common
cannot be compared at all (a UsageError: exit 2).

Invariant: the verdict never depends on the order of the runs in the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from allocffi.harness.bench.results import BenchReport, read_json
from allocffi.harness.core import machine, significance
from allocffi.harness.core.change import (
    CONFIDENCE,
    FASTER,
    NO_CHANGE,
    SLOWER,
    TOO_FEW,
    Change,
    counts,
    summary_line,
)
from allocffi.harness.core.errors import UsageError
from allocffi.harness.core.stats import Result

DEFAULT_NOISE_THRESHOLD = significance.DEFAULT_NOISE_FLOOR


def _samples(result: Result) -> list[float]:
    return list(result.samples) or [result.ns_per_op]


def classify(old: Result, new: Result, floor: float = DEFAULT_NOISE_THRESHOLD, seed: int = 0) -> Change:
    """The verdict for one (allocator, workload) measured in both runs."""
    verdict = significance.compare_samples(
        _samples(old), _samples(new), confidence=CONFIDENCE, noise_floor=floor, seed=seed
    )
    return Change(new.allocator, new.workload, old.ns_per_op, new.ns_per_op, verdict, old.ops != new.ops)


def compare(
    old: Sequence[Result], new: Sequence[Result], floor: float = DEFAULT_NOISE_THRESHOLD
) -> list[Change]:
    """Changes for every (allocator, workload) present in both runs, in the new run's order."""
    previous = {(r.allocator, r.workload): r for r in old}
    return [
        classify(previous[(r.allocator, r.workload)], r, floor)
        for r in new
        if (r.allocator, r.workload) in previous
    ]


def regressions(changes: Sequence[Change]) -> list[Change]:
    return [c for c in changes if c.label == SLOWER]


def cells(results: Sequence[Result]) -> set[tuple[str, str]]:
    return {(r.allocator, r.workload) for r in results}


def require_common(old: Sequence[Result], new: Sequence[Result], old_name: str, new_name: str) -> None:
    """UsageError when no (allocator, workload) is in both: such a comparison says nothing."""
    if cells(old) & cells(new):
        return
    raise UsageError(
        f"{old_name} and {new_name} have no (allocator, workload) in common: nothing to compare "
        f"({_cell_summary(old)} vs {_cell_summary(new)})"
    )


def _cell_summary(results: Sequence[Result]) -> str:
    allocators = sorted({r.allocator for r in results})
    workloads = sorted({r.workload for r in results})
    if not results:
        return "no results"
    return f"{', '.join(allocators)} on {', '.join(workloads[:4])}{' ...' if len(workloads) > 4 else ''}"


def warnings_between(old: BenchReport, new: BenchReport, changes: Sequence[Change]) -> list[str]:
    """What makes the comparison of these two runs doubtful, one line each."""
    found = [f"runs differ: {d}" for d in machine.differences(old.machine, new.machine)]
    for name, run in (("old", old), ("new", new)):
        reason = machine.busy_reason(run.load)
        if reason:
            found.append(f"{name} run: {reason}")
        if run.partial:
            found.append(f"{name} run was interrupted: only its completed runs are compared")
    changed_ops = [f"{c.workload}/{c.allocator}" for c in changes if c.ops_changed]
    if changed_ops:
        found.append(f"different op counts on {len(changed_ops)} cells (e.g. {changed_ops[0]})")
    if old.config.get("seed") != new.config.get("seed"):
        found.append(f"different seeds: {old.config.get('seed')} vs {new.config.get('seed')}")
    return found


def load_baseline(path: str | Path) -> BenchReport:
    """Read a JSON report written by ``allocffi bench --json``, as a baseline."""
    return read_json(path, "baseline", speedups=False)


__all__ = [
    "CONFIDENCE",
    "FASTER",
    "NO_CHANGE",
    "SLOWER",
    "TOO_FEW",
    "Change",
    "classify",
    "compare",
    "counts",
    "load_baseline",
    "regressions",
    "summary_line",
]
