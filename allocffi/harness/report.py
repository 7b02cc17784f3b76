"""``allocffi report RUN.json``: the tables and files of a saved run of any command, nothing run.

A bench run gets bench's own report (its matrix, heatmap, targets); any other record gets one row
per (cell, metric) with its verdict against the baseline allocator (core/render.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from allocffi.harness.bench import console, results, targets
from allocffi.harness.bench.heatmap import write_plot
from allocffi.harness.core import outputs, record, render
from allocffi.harness.core.errors import EXIT_OK, UsageError


@dataclass
class ReportOptions:
    """The ``allocffi report`` command line, parsed."""

    path: str
    markdown_path: str | None = None
    csv_path: str | None = None
    plot_path: str | None = None
    json_path: str | None = None
    targets: bool = False
    baseline_allocator: str | None = None


def run_report(opts: ReportOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``allocffi report RUN.json``: the tables and files of a saved run, without running it."""
    err = err or sys.stderr
    paths = {"--markdown": opts.markdown_path, "--csv": opts.csv_path, "--json": opts.json_path}
    outputs.check_outputs(paths, opts.plot_path)
    saved = results.read_record(opts.path, "run")
    if saved.command != results.BENCH:
        return _report_any(saved, opts, out or sys.stdout)
    try:
        run = results.from_record(saved, opts.path, opts.baseline_allocator)
    except UsageError as exc:
        raise UsageError(f"run {opts.path}: {exc}") from exc
    run.targets = targets.check_all(run.results, run.overhead) if opts.targets else []
    if not any(paths.values()) and opts.plot_path is None:
        console.print_report(run, out or sys.stdout)
    if opts.markdown_path:
        results.write_markdown(run, opts.markdown_path)
    if opts.csv_path:
        results.write_csv(run, opts.csv_path)
    if opts.json_path:
        results.write_json(run, opts.json_path)
    if opts.plot_path:
        write_plot(run, opts.plot_path)
    return EXIT_OK


def _report_any(saved: record.Record, opts: ReportOptions, out: TextIO) -> int:
    """The report of a command other than bench: one row per (cell, metric), verdicts recomputed."""
    if opts.targets:
        raise UsageError(
            f"--targets checks bench results; {opts.path} holds `allocffi {saved.command}` results"
        )
    if opts.baseline_allocator is not None and opts.baseline_allocator not in saved.allocators:
        raise UsageError(
            f"--baseline-allocator {opts.baseline_allocator}: {opts.path} has no results for it "
            f"(it has {', '.join(saved.allocators)})"
        )
    record.judge(saved, opts.baseline_allocator)
    if not any((opts.markdown_path, opts.csv_path, opts.json_path, opts.plot_path)):
        out.write(render.text(saved))
    if opts.markdown_path:
        outputs.write_atomically(opts.markdown_path, render.markdown(saved), "--markdown")
    if opts.csv_path:
        outputs.write_atomically(opts.csv_path, render.to_csv(saved), "--csv")
    if opts.json_path:
        record.write(saved, opts.json_path)
    if opts.plot_path:
        render.write_plot(saved, opts.plot_path)
    return EXIT_OK


__all__ = ["ReportOptions", "run_report"]
