"""The scale suite's curves: ns/op over the live-set size N, one line per allocator.

The scale workloads are named ``live-<sizes>-<N>-<order>`` (for example
``live-64-1e6-random``): ``parse_live_name`` reads the three parts, and
``scale_series`` groups a report's results into one series per (sizes, order)
with N on the x axis, so the growth of each allocator's cost with N is one
line on a log-log panel. ``write_scale_plot`` is what ``allocffi bench
--scale --plot PATH.png`` draws; ``growth`` is the cost ratio between the
largest and the smallest N of a series (the issue's "cost growth 1e3->1e6").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from allocffi.harness.bench.catalog import SCALE_PREFIX
from allocffi.harness.bench.results import BenchReport
from allocffi.harness.core.outputs import require_matplotlib, save_figure
from allocffi.harness.core.stats import Result


class LiveName(NamedTuple):
    sizes: str  # "64", "mixed", "large"
    live: int  # N, the blocks held
    order: str  # "random" or "inorder"


def parse_live_name(workload: str) -> LiveName | None:
    """The parts of a scale workload's name, or None for any other workload."""
    if not workload.startswith(SCALE_PREFIX):
        return None
    parts = workload[len(SCALE_PREFIX) :].split("-")
    if len(parts) != 3:
        return None
    sizes, count, order = parts
    try:
        live = int(float(count))  # "1e6"
    except ValueError:
        return None
    return LiveName(sizes, live, order)


# (sizes, order) -> allocator -> [(N, median ns/op)], N ascending
Series = dict[tuple[str, str], dict[str, list[tuple[int, float]]]]


def scale_series(results: Sequence[Result]) -> Series:
    series: Series = {}
    for r in results:
        name = parse_live_name(r.workload)
        if name is None:
            continue
        by_allocator = series.setdefault((name.sizes, name.order), {})
        by_allocator.setdefault(r.allocator, []).append((name.live, r.ns_per_op))
    for by_allocator in series.values():
        for points in by_allocator.values():
            points.sort()
    return series


def growth(points: Sequence[tuple[int, float]]) -> float | None:
    """ns/op at the largest N over ns/op at the smallest; None with fewer than two points."""
    if len(points) < 2 or points[0][1] <= 0:
        return None
    return points[-1][1] / points[0][1]


_SIZES = {"64": "64 B", "mixed": "16-256 B", "large": "256 KiB-1 MiB"}
_ORDERS = {"random": "random free order", "inorder": "allocation-order frees"}


def write_scale_plot(report: BenchReport, path: str | Path) -> None:
    """One log-log panel of ns/op over N per (sizes, order) with two or more N;
    the workloads of a single N share one bar panel at the end."""
    plt = require_matplotlib()
    series = scale_series(report.results)
    curves = [key for key, by in series.items() if max(len(points) for points in by.values()) >= 2]
    singles = [
        r for r in report.results if (n := parse_live_name(r.workload)) and (n.sizes, n.order) not in curves
    ]
    panels = len(curves) + (1 if singles else 0)
    columns = 2
    rows = max(1, (panels + columns - 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 4.2 * rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    colours = {a: cmap(i % 10) for i, a in enumerate(report.allocators)}
    cells = list(axes.flat)
    for ax, (sizes, order) in zip(cells, curves, strict=False):
        for allocator, points in series[(sizes, order)].items():
            ax.plot(
                [n for n, _ in points],
                [ns for _, ns in points],
                marker="o",
                label=allocator,
                color=colours[allocator],
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{_SIZES.get(sizes, sizes)}, {_ORDERS.get(order, order)}")
        ax.set_xlabel("live blocks N")
        ax.set_ylabel("median ns/op (log)")
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize="small", ncol=2)
    if singles:
        ax = cells[len(curves)]
        workloads = list(dict.fromkeys(r.workload for r in singles))
        allocators = list(dict.fromkeys(r.allocator for r in singles))
        width = 0.8 / len(allocators)
        for i, allocator in enumerate(allocators):
            xs, ys = [], []
            for x, workload in enumerate(workloads):
                for r in singles:
                    if r.workload == workload and r.allocator == allocator:
                        xs.append(x - 0.4 + width * (i + 0.5))
                        ys.append(r.ns_per_op)
            ax.bar(xs, ys, width=width, label=allocator, color=colours[allocator])
        ax.set_yscale("log")
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels(workloads, rotation=15, ha="right", fontsize="small")
        ax.set_ylabel("median ns/op (log)")
        ax.set_title("one N each")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize="small", ncol=2)
    for ax in cells[panels:]:
        ax.set_visible(False)
    fig.suptitle(f"allocffi bench --scale, {report.date}")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
