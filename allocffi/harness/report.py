"""``allocffi report RUN.json``: the tables and files of a saved ``allocffi bench`` run, nothing run."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from allocffi.harness.bench import console, results, targets
from allocffi.harness.bench.heatmap import write_plot
from allocffi.harness.core import outputs
from allocffi.harness.core.errors import EXIT_OK


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
    run = results.read_json(opts.path, "run", opts.baseline_allocator)
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


__all__ = ["ReportOptions", "run_report"]
