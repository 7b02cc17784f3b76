"""Comparison of two runs, cell by cell: the verdicts of ``--baseline OLD.json`` and ``allocffi compare``.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from allocffi.harness.core import significance
from allocffi.harness.core.errors import UsageError
from allocffi.harness.core.stats import Result

DEFAULT_NOISE_THRESHOLD = significance.DEFAULT_NOISE_FLOOR
CONFIDENCE = 0.95

FASTER = significance.FASTER
SLOWER = significance.SLOWER
NO_CHANGE = significance.NO_CHANGE
TOO_FEW = significance.TOO_FEW


@dataclass(frozen=True)
class Change:
    """How one (allocator, workload) moved since the old run."""

    allocator: str
    workload: str
    old_ns: float  # medians
    new_ns: float
    verdict: significance.Verdict  # new against old, lower is better
    ops_changed: bool  # the runs used different op counts (compare with care)

    @property
    def label(self) -> str:
        return self.verdict.label

    @property
    def significant(self) -> bool:
        return self.verdict.significant

    @property
    def ratio(self) -> float:
        """new / old medians: < 1 is faster."""
        return self.verdict.ratio

    def describe(self) -> str:
        return self.verdict.describe() + (" [ops differ]" if self.ops_changed else "")

    def to_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "allocator": self.allocator,
            "workload": self.workload,
            "old_ns_per_op": self.old_ns,
            "new_ns_per_op": self.new_ns,
            "ratio": v.ratio,
            "ratio_low": v.low,
            "ratio_high": v.high,
            "p_value": v.p_value,
            "confidence": v.confidence,
            "verdict": v.label,
            "ops_changed": self.ops_changed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        verdict = significance.Verdict(
            float(data["ratio"]),
            float(data.get("ratio_low", data["ratio"])),
            float(data.get("ratio_high", data["ratio"])),
            float(data.get("p_value", 1.0)),
            float(data.get("confidence", CONFIDENCE)),
            str(data["verdict"]),
        )
        return cls(
            str(data["allocator"]),
            str(data["workload"]),
            float(data["old_ns_per_op"]),
            float(data["new_ns_per_op"]),
            verdict,
            bool(data.get("ops_changed", False)),
        )


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


def counts(changes: Sequence[Change]) -> dict[str, int]:
    """How many changes carry each label, every label present (in a fixed order)."""
    tally = dict.fromkeys((FASTER, SLOWER, NO_CHANGE, TOO_FEW), 0)
    for c in changes:
        tally[c.label] = tally.get(c.label, 0) + 1
    return tally


def summary_line(changes: Sequence[Change]) -> str:
    """E.g. "21 cells compared: 1 faster, 0 slower, 20 no significant change"."""
    tally = counts(changes)
    parts = [f"{n} {label}" for label, n in tally.items() if n or label in (FASTER, SLOWER)]
    return f"{len(changes)} cells compared: " + ", ".join(parts)


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
