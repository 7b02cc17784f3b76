"""Two saved runs of any command, cell by cell and metric by metric: ``allocffi compare``.

Each metric of each cell present in both records gets the verdict of
``significance.compare_samples`` on the two runs' samples: "better" or "worse" (in that
metric's direction) only when the Mann-Whitney U test is significant and the whole interval of
the ratio of medians lies outside the noise floor; otherwise "no significant change" (or "too few
repeats"). Beside the verdicts, a comparison says what makes it doubtful: different machines,
library versions or engine builds, a busy or interrupted run, different seeds or op counts, and
two different commands.

Invariants: the verdict never depends on the order of the cells in the files; two records with
no (cell, metric) in common are a UsageError (exit 2), since such a comparison says nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from allocffi.harness.core import machine, significance
from allocffi.harness.core.errors import UsageError
from allocffi.harness.core.record import (
    BETTER,
    CONFIDENCE,
    HIGHER,
    LABELS,
    LOWER,
    NO_CHANGE,
    TOO_FEW,
    WORSE,
    Cell,
    Metric,
    Record,
    directed_label,
)

SCHEMA = "allocffi-compare/2"
TIME_UNITS = frozenset({"ns/op", "ns/call", "s"})  # where lower reads as "faster"


@dataclass(frozen=True)
class MetricChange:
    """How one metric of one cell moved from the old run to the new."""

    cell: Cell  # the new run's
    metric: str
    unit: str
    better: str  # LOWER or HIGHER
    old_median: float
    new_median: float
    verdict: significance.Verdict  # new against old, on the raw samples
    label: str  # BETTER, WORSE, NO_CHANGE or TOO_FEW: the verdict in the metric's direction
    ops_changed: bool  # the cells ran different op counts (compare with care)

    @property
    def regression(self) -> bool:
        return self.label == WORSE

    def describe(self) -> str:
        """E.g. "2.00x slower [1.95-2.05], p=0.008" (time) or "1.30x higher, worse [...]" (other)."""
        v = self.verdict
        if self.unit in TIME_UNITS and self.better == LOWER:
            text = v.describe()
        elif v.label in (significance.FASTER, significance.SLOWER):
            moved = "lower" if v.label == significance.FASTER else "higher"
            text = f"{v.ratio:.2f}x, {moved}: {self.label} [{v.low:.2f}-{v.high:.2f}], p={v.p_value:.3f}"
        else:
            text = f"{v.label} ({v.ratio:.2f}x [{v.low:.2f}-{v.high:.2f}], p={v.p_value:.3f})"
        return text + (" [ops differ]" if self.ops_changed else "")

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "subject": self.cell.subject,
            "allocator": self.cell.allocator,
            "variant": self.cell.variant,
            "metric": self.metric,
            "unit": self.unit,
            "better": self.better,
            "old_median": self.old_median,
            "new_median": self.new_median,
            "ratio": v.ratio,
            "ratio_low": v.low,
            "ratio_high": v.high,
            "p_value": v.p_value,
            "confidence": v.confidence,
            "verdict": self.label,
            "ops_changed": self.ops_changed,
        }


def _ops(cell: Cell, command: str) -> Any:
    own = cell.details.get(command)
    return own.get("ops") if isinstance(own, dict) else None


def compare(
    old: Record, new: Record, noise_floor: float = significance.DEFAULT_NOISE_FLOOR
) -> list[MetricChange]:
    """A change for every (cell, metric) in both records, in the new record's order."""
    previous = {c.key: c for c in old.cells}
    changes = []
    for cell in new.cells:
        before = previous.get(cell.key)
        if before is None:
            continue
        for name, metric in cell.metrics.items():
            was: Metric | None = before.metrics.get(name)
            if was is None or was.better != metric.better:
                continue
            verdict = significance.compare_samples(
                was.samples, metric.samples, confidence=CONFIDENCE, noise_floor=noise_floor
            )
            ops_old, ops_new = _ops(before, old.command), _ops(cell, new.command)
            changes.append(
                MetricChange(
                    cell,
                    name,
                    metric.unit,
                    metric.better,
                    was.median,
                    metric.median,
                    verdict,
                    directed_label(verdict, metric.better),
                    ops_old is not None and ops_new is not None and ops_old != ops_new,
                )
            )
    return changes


def _pairs(run: Record) -> set[tuple[tuple[str, str, str], str, str]]:
    return {(c.key, name, m.better) for c in run.cells for name, m in c.metrics.items()}


def require_common(old: Record, new: Record, old_name: str, new_name: str) -> None:
    """UsageError when no (cell, metric) is in both runs."""
    if _pairs(old) & _pairs(new):
        return
    raise UsageError(
        f"{old_name} and {new_name} have no (allocator, {_subject_word(new)}) in common: nothing to compare "
        f"({_summary(old)} vs {_summary(new)})"
    )


def _subject_word(run: Record) -> str:
    return {"bench": "workload", "calibrate": "workload", "run": "program", "trace replay": "trace"}.get(
        run.command, "subject"
    )


def _summary(run: Record) -> str:
    if not run.cells:
        return "no results"
    subjects = sorted({c.subject for c in run.cells})
    more = " ..." if len(subjects) > 4 else ""
    return f"{', '.join(sorted(run.allocators))} on {', '.join(subjects[:4])}{more}"


def counts(changes: Sequence[MetricChange]) -> dict[str, int]:
    """How many changes carry each label, every label present (in a fixed order)."""
    tally = dict.fromkeys(LABELS, 0)
    for c in changes:
        tally[c.label] += 1
    return tally


def summary_line(changes: Sequence[MetricChange]) -> str:
    """E.g. "6 comparisons: 1 better, 0 worse, 5 no significant change"."""
    tally = counts(changes)
    parts = [f"{n} {label}" for label, n in tally.items() if n or label in (BETTER, WORSE)]
    return f"{len(changes)} comparisons: " + ", ".join(parts)


class Run(Protocol):
    """What the doubts about a comparison read from a run: a Record or a bench report."""

    machine: dict[str, Any]
    load: dict[str, Any] | None
    partial: bool
    config: dict[str, Any]


def warnings_between(old: Run, new: Run, changed_ops: Sequence[str]) -> list[str]:
    """What makes the comparison of two runs doubtful, one line each; ``changed_ops``: the cells
    whose op counts differ between them."""
    found = [f"runs differ: {d}" for d in machine.differences(old.machine, new.machine)]
    for name, run in (("old", old), ("new", new)):
        reason = machine.busy_reason(run.load)
        if reason:
            found.append(f"{name} run: {reason}")
        if run.partial:
            found.append(f"{name} run was interrupted: only its completed runs are compared")
    if changed_ops:
        found.append(f"different op counts on {len(changed_ops)} cells (e.g. {changed_ops[0]})")
    if old.config.get("seed") != new.config.get("seed"):
        found.append(f"different seeds: {old.config.get('seed')} vs {new.config.get('seed')}")
    return found


def record_warnings(old: Record, new: Record, changes: Sequence[MetricChange]) -> list[str]:
    """warnings_between for two records, and whether they come from different commands."""
    found = [f"different commands: {old.command} vs {new.command}"] if old.command != new.command else []
    return found + warnings_between(old, new, sorted({c.cell.label for c in changes if c.ops_changed}))


__all__ = [
    "HIGHER",
    "LOWER",
    "NO_CHANGE",
    "SCHEMA",
    "TOO_FEW",
    "MetricChange",
    "compare",
    "counts",
    "summary_line",
]
