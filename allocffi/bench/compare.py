"""Comparison with a saved run (``--baseline report.json``), criterion-style.

For each (allocator, workload) in both runs the change is the ratio of the
medians. It counts as noise when the two runs' [min, max] ranges overlap or
when it is smaller than the noise threshold: the larger of a floor
(``DEFAULT_NOISE_THRESHOLD``) and the relative spread, (max - min) / median,
of either run. Anything else is "faster" or "slower" by that ratio.

Invariant: the verdict never depends on the order of the runs in the files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allocffi.bench.errors import UsageError
from allocffi.bench.stats import Result

DEFAULT_NOISE_THRESHOLD = 0.05  # a 5% change is never distinguishable on a shared 2-core machine

NOISE = "noise"
FASTER = "faster"
SLOWER = "slower"


@dataclass(frozen=True)
class Change:
    """How one (allocator, workload) moved since the baseline."""

    allocator: str
    workload: str
    old_ns: float
    new_ns: float
    verdict: str  # NOISE, FASTER or SLOWER
    threshold: float  # relative change below which it is noise
    ops_changed: bool  # the runs used different op counts (compare with care)

    @property
    def ratio(self) -> float:
        """new / old: < 1 is faster."""
        return self.new_ns / self.old_ns if self.old_ns > 0 else float("inf")

    def describe(self) -> str:
        pct = (self.ratio - 1.0) * 100.0
        if self.verdict == NOISE:
            text = f"no change ({pct:+.1f}%, within noise)"
        elif self.verdict == FASTER:
            text = f"faster: {self.old_ns / self.new_ns:.2f}x ({pct:+.1f}%)"
        else:
            text = f"SLOWER: {self.ratio:.2f}x ({pct:+.1f}%)"
        return text + (" [ops differ]" if self.ops_changed else "")


def _spread(median: float, low: float, high: float) -> float:
    return (high - low) / median if median > 0 else 0.0


def classify(old: Result, new: Result, floor: float = DEFAULT_NOISE_THRESHOLD) -> Change:
    """The verdict for one pair of results."""
    threshold = max(
        floor,
        _spread(old.ns_per_op, old.ns_per_op_min, old.ns_per_op_max),
        _spread(new.ns_per_op, new.ns_per_op_min, new.ns_per_op_max),
    )
    overlap = new.ns_per_op_min <= old.ns_per_op_max and old.ns_per_op_min <= new.ns_per_op_max
    relative = abs(new.ns_per_op - old.ns_per_op) / old.ns_per_op if old.ns_per_op > 0 else float("inf")
    if overlap or relative <= threshold:
        verdict = NOISE
    else:
        verdict = FASTER if new.ns_per_op < old.ns_per_op else SLOWER
    return Change(
        new.allocator, new.workload, old.ns_per_op, new.ns_per_op, verdict, threshold, old.ops != new.ops
    )


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
    return [c for c in changes if c.verdict == SLOWER]


_REQUIRED = ("allocator", "workload", "ns_per_op", "ns_per_op_min", "ns_per_op_max")


def results_from_json(data: Mapping[str, Any], source: str) -> list[Result]:
    """The results of a saved report; UsageError when it is not one."""
    records = data.get("results") if isinstance(data, Mapping) else None
    if not isinstance(records, list):
        raise UsageError(f'{source} is not an allocffi bench report (no "results" list)')
    results = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or any(k not in record for k in _REQUIRED):
            raise UsageError(f"{source}: result #{index} lacks one of {', '.join(_REQUIRED)}")
        fields = dict(record)
        fields.setdefault("repeats", len(fields.get("samples") or []) or 1)
        fields.setdefault("ops", 0)
        fields.setdefault("checksum", 0)
        try:
            results.append(Result.from_dict(fields))
        except TypeError as exc:
            raise UsageError(f"{source}: result #{index} is malformed ({exc})") from exc
    return results


def load_baseline(path: str | Path) -> list[Result]:
    """Read a JSON report written by ``allocffi bench --json``."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read baseline {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"baseline {path} is not valid JSON ({exc})") from exc
    return results_from_json(data, str(path))
