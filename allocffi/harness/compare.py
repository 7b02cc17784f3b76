"""``allocffi compare OLD.json NEW.json``: the verdict of every (cell, metric) in both runs, nothing run.

The runs may come from any command (two ``run`` results of one program before and after a
change, two bench runs, ...): the verdicts are ``core.comparison``'s, on the records' samples.
``allocffi bench --baseline OLD.json`` reads its baseline here too (``load_baseline``), and its
per-cell verdicts are ``bench.comparison``'s.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from allocffi.harness.bench import comparison, console
from allocffi.harness.bench.comparison import Change
from allocffi.harness.bench.results import BenchReport, read_json, read_record
from allocffi.harness.core import arguments, machine, outputs, render
from allocffi.harness.core import comparison as records
from allocffi.harness.core.errors import EXIT_OK, EXIT_REGRESSION


def warnings_between(old: BenchReport, new: BenchReport, changes: Sequence[Change]) -> list[str]:
    """What makes the comparison of these two bench runs doubtful, one line each."""
    return records.warnings_between(
        old, new, [f"{c.workload}/{c.allocator}" for c in changes if c.ops_changed]
    )


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
    """``allocffi compare OLD.json NEW.json``: verdicts for every (cell, metric) in both, nothing run."""
    err = err or sys.stderr
    out = err if json_path == outputs.STDOUT else (out or sys.stdout)
    arguments.NOISE_THRESHOLD.check("--noise-threshold", noise_floor)
    outputs.check_outputs({"--json": json_path})
    old = read_record(old_path, "run")
    new = read_record(new_path, "run")
    records.require_common(old, new, old_path, new_path)
    changes = records.compare(old, new, noise_floor)
    warnings = records.record_warnings(old, new, changes)
    only_old = sorted({c.key for c in old.cells} - {c.key for c in new.cells})
    only_new = sorted({c.key for c in new.cells} - {c.key for c in old.cells})

    for name, path, run in (("old", old_path, old), ("new", new_path, new)):
        print(f"{name}: {path} ({run.command}, {run.date}; {machine.load_line(run.load)})", file=out)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    rows = [
        [
            c.cell.subject,
            c.cell.allocator + (f" [{c.cell.variant}]" if c.cell.variant else ""),
            c.metric,
            render.value(c.old_median, c.unit),
            render.value(c.new_median, c.unit),
            c.describe(),
        ]
        for c in changes
    ]
    print("", file=out)
    header = ["subject", "allocator", "metric", "old", "new", "new vs old"]
    print(console.plain_table(header, rows, left=3, text_last=True), file=out)
    print("", file=out)
    print(records.summary_line(changes) + f" (noise floor {noise_floor:.0%}, confidence 95%)", file=out)
    if only_old or only_new:
        print(
            f"not compared: {len(only_old)} cells only in the old run, {len(only_new)} only in the new",
            file=out,
        )

    if json_path is not None:
        saved = {
            "schema": records.SCHEMA,
            "old": {"path": old_path, "date": old.date, "command": old.command},
            "new": {"path": new_path, "date": new.date, "command": new.command},
            "noise_floor": noise_floor,
            "confidence": records.CONFIDENCE,
            "warnings": warnings,
            "counts": records.counts(changes),
            "comparison": [c.to_json() for c in changes],
            "only_in_old": [list(c) for c in only_old],
            "only_in_new": [list(c) for c in only_new],
        }
        outputs.write_atomically(json_path, json.dumps(saved, indent=2) + "\n", "--json")
    worse = [c for c in changes if c.regression]
    if fail_on_regression and worse:
        for c in worse:
            print(f"allocffi compare: regression: {c.cell.label} {c.metric}: {c.describe()}", file=err)
        return EXIT_REGRESSION
    return EXIT_OK


__all__ = ["load_baseline", "run_compare", "warnings_between"]
