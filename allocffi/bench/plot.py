"""``--plot``: a bar chart of each allocator's speedup over glibc per workload.

matplotlib is optional (the ``bench`` extra): ``require_matplotlib`` is
called before the benchmark starts, so a missing package is reported at once
instead of after the run. The y axis is logarithmic: speedups range from
0.01x to 1000x and 2x faster must look as far from 1 as 2x slower.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allocffi.bench.catalog import BASELINE
from allocffi.bench.errors import UsageError
from allocffi.bench.report import BenchReport


def require_matplotlib() -> Any:
    """The pyplot module with a file-only backend; UsageError when missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError(
            "--plot needs matplotlib: pip install 'allocffi[bench]' (or pip install matplotlib)"
        ) from exc
    return plt


def write_plot(report: BenchReport, path: str | Path) -> None:
    plt = require_matplotlib()
    allocators = [a for a in report.allocators if a != BASELINE]
    workloads = report.workloads
    cells = report.cell()
    width = 0.8 / max(len(allocators), 1)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.07 * len(workloads) * max(len(allocators), 1) + 3), 6))
    cmap = plt.get_cmap("tab10")
    for i, allocator in enumerate(allocators):
        xs, ys = [], []
        for x, workload in enumerate(workloads):
            r = cells.get((workload, allocator))
            if r is not None and r.speedup_vs_libc is not None and r.speedup_vs_libc > 0:
                xs.append(x - 0.4 + width * (i + 0.5))
                ys.append(r.speedup_vs_libc)
        # Bars start at 1 (equal to glibc): faster grows up, slower grows down.
        ax.bar(xs, [y - 1.0 for y in ys], width=width, label=allocator, color=cmap(i % 10), bottom=1.0)
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads, rotation=45, ha="right")
    ax.set_ylabel(f"speedup vs {BASELINE} (median, log scale; > 1 is faster)")
    ax.set_title(f"allocffi bench, {report.date}")
    ax.legend(ncol=min(len(allocators), 5), fontsize="small")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path), dpi=120)
    plt.close(fig)
