"""``--plot``: a heatmap of workloads x allocators, coloured by speedup over the baseline.

One glance answers "who is fastest where": blue is faster than the baseline
allocator, red slower, on a logarithmic scale (2x faster is as blue as 2x
slower is red). Each cell prints its speedup (the median over repeats) and
the spread of its repeats, (max - min) / median; a speedup in parentheses is
not significantly different from the baseline (see significance.py).
Reference baselines (``mmap``, a fresh mapping per request, often 1000x
slower) are drawn grey and kept out of the colour scale, so they do not wash
out every other cell.

matplotlib is optional (the ``bench`` extra): see core/outputs.py.
"""

from __future__ import annotations

import math
from pathlib import Path

from allocffi.harness.bench.catalog import MMAP
from allocffi.harness.bench.results import BenchReport
from allocffi.harness.core import significance, units
from allocffi.harness.core.outputs import require_matplotlib, save_figure

REFERENCES: frozenset[str] = frozenset({MMAP})  # drawn, but outside the colour scale
REFERENCE_GREY = "#d9d9d9"


def _cell_text(speedup: float, spread: float, verdict: str | None, is_baseline: bool) -> str:
    figure = units.speedup(speedup)
    if not is_baseline and verdict not in (significance.FASTER, significance.SLOWER):
        figure = f"({figure})"
    return f"{figure}\n{spread:.0%}"


def log_speedups(report: BenchReport) -> list[list[float]]:
    """log2 of each cell's speedup, workloads x allocators; NaN where there is none."""
    cells = report.cell()
    rows = []
    for w in report.workloads:
        row = []
        for a in report.allocators:
            r = cells.get((w, a))
            row.append(math.log2(r.speedup) if r is not None and r.speedup else math.nan)
        rows.append(row)
    return rows


def colour_limit(report: BenchReport) -> float:
    """The largest |log2 speedup| of a competitor (references excluded): the symmetric colour scale."""
    values = [
        abs(v)
        for row in log_speedups(report)
        for a, v in zip(report.allocators, row, strict=True)
        if a not in REFERENCES and not math.isnan(v)
    ]
    return max([*values, math.log2(1.25)])  # a run where all is within 25% still shows a scale


def write_plot(report: BenchReport, path: str | Path) -> None:
    plt = require_matplotlib()
    from matplotlib.colors import Normalize

    allocators = report.allocators
    workloads = report.workloads
    cells = report.cell()
    baseline = report.baseline_allocator
    logs = log_speedups(report)
    scale = colour_limit(report)

    cmap = plt.get_cmap("RdBu").with_extremes(bad=REFERENCE_GREY)  # references and missing cells
    masked = [
        [math.nan if a in REFERENCES else v for a, v in zip(allocators, row, strict=True)] for row in logs
    ]
    fig, ax = plt.subplots(figsize=(max(8.0, 1.25 * len(allocators) + 3.5), 0.5 * len(workloads) + 2.6))
    image = ax.imshow(masked, cmap=cmap, norm=Normalize(-scale, scale), aspect="auto")
    for i, w in enumerate(workloads):
        for j, a in enumerate(allocators):
            r = cells.get((w, a))
            if r is None or r.speedup is None:
                ax.text(j, i, "-", ha="center", va="center", fontsize=7, color="#555555")
                continue
            dark = a not in REFERENCES and abs(logs[i][j]) > 0.6 * scale
            ax.text(
                j,
                i,
                _cell_text(r.speedup, r.spread, r.speedup_verdict, a == baseline),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(allocators)))
    ax.set_xticklabels(
        [f"{a}\n(reference)" if a in REFERENCES else a for a in allocators], rotation=30, ha="right"
    )
    ax.set_yticks(range(len(workloads)))
    ax.set_yticklabels(workloads)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    ticks = [t for t in (-6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6) if abs(t) <= scale]
    colorbar.set_ticks(ticks)
    colorbar.set_ticklabels([f"{2.0**t:g}x" for t in ticks])
    colorbar.set_label(f"speedup vs {baseline} (log scale)")
    partial = " (PARTIAL: interrupted run)" if report.partial else ""
    ax.set_title(
        f"allocffi bench, {report.date}{partial}\n"
        f"median speedup vs {baseline} (blue: faster), below it the spread of the repeats, "
        "(max - min) / median;\nin parentheses: not significantly different from "
        f"{baseline}; grey: reference, outside the colour scale",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
