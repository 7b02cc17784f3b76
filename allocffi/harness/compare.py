"""``allocffi compare OLD.json NEW.json``: the verdict of every cell in both runs, nothing run.

The verdicts are ``bench.comparison``'s; this module reads the two runs, says what makes their
comparison doubtful (``warnings_between``) and prints or writes the result. ``allocffi bench
--baseline OLD.json`` reads its baseline here too (``load_baseline``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from allocffi.harness.bench import comparison, console
from allocffi.harness.bench.comparison import Change
from allocffi.harness.bench.results import BenchReport, read_json
from allocffi.harness.core import arguments, machine, outputs, units
from allocffi.harness.core.errors import EXIT_OK, EXIT_REGRESSION


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


def run_compare(
    old_path: str,
    new_path: str,
    json_path: str | None = None,
    noise_floor: float = comparison.DEFAULT_NOISE_THRESHOLD,
    fail_on_regression: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``allocffi compare OLD.json NEW.json``: verdicts for every cell in both, nothing run."""
    err = err or sys.stderr
    out = err if json_path == outputs.STDOUT else (out or sys.stdout)
    arguments.NOISE_THRESHOLD.check("--noise-threshold", noise_floor)
    outputs.check_outputs({"--json": json_path})
    old = read_json(old_path, "run", speedups=False)
    new = read_json(new_path, "run", speedups=False)
    comparison.require_common(old.results, new.results, old_path, new_path)
    changes = comparison.compare(old.results, new.results, noise_floor)
    warnings = warnings_between(old, new, changes)
    only_old = sorted(comparison.cells(old.results) - comparison.cells(new.results))
    only_new = sorted(comparison.cells(new.results) - comparison.cells(old.results))

    for name, path, run in (("old", old_path, old), ("new", new_path, new)):
        print(f"{name}: {path} ({run.date}; {machine.load_line(run.load)})", file=out)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    rows = [[c.workload, c.allocator, units.ns(c.old_ns), units.ns(c.new_ns), c.describe()] for c in changes]
    print("", file=out)
    header = ["workload", "allocator", "old ns/op", "new ns/op", "new vs old"]
    print(console.plain_table(header, rows, text_last=True), file=out)
    print("", file=out)
    print(comparison.summary_line(changes) + f" (noise floor {noise_floor:.0%}, confidence 95%)", file=out)
    if only_old or only_new:
        print(
            f"not compared: {len(only_old)} cells only in the old run, {len(only_new)} only in the new",
            file=out,
        )

    if json_path is not None:
        record = {
            "schema": "allocffi-compare/1",
            "old": {"path": old_path, "date": old.date, "command": old.command},
            "new": {"path": new_path, "date": new.date, "command": new.command},
            "noise_floor": noise_floor,
            "confidence": comparison.CONFIDENCE,
            "warnings": warnings,
            "counts": comparison.counts(changes),
            "comparison": [c.to_dict() for c in changes],
            "only_in_old": [list(c) for c in only_old],
            "only_in_new": [list(c) for c in only_new],
        }
        outputs.write_atomically(json_path, json.dumps(record, indent=2) + "\n", "--json")
    slower = comparison.regressions(changes)
    if fail_on_regression and slower:
        for c in slower:
            print(f"allocffi compare: regression: {c.workload} {c.allocator}: {c.describe()}", file=err)
        return EXIT_REGRESSION
    return EXIT_OK


__all__ = ["load_baseline", "run_compare", "warnings_between"]
