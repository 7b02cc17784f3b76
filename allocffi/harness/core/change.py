"""How one (allocator, workload) moved between two bench runs, and the tally of such moves.

Its own module because both sides need it: the bench report holds the changes of a
``--baseline`` run (and reads them back), and compare.py computes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from allocffi.harness.core import significance

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
