"""Any command's results record as text, Markdown, CSV and a plot: ``allocffi report``.

One row per (cell, metric): the median of its samples, their range and spread, how many, and
the verdict against the baseline allocator's cell of the same subject (record.judge, from the
samples). The bench has its own richer report (bench/results.py); every other command, and a
record of a command this version does not know in detail, is shown through these.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from allocffi.harness.core import machine, outputs, significance, units
from allocffi.harness.core.record import Cell, Metric, Record

HEADER = ("subject", "allocator", "metric", "median", "range", "spread", "n", "vs baseline")
CSV_FIELDS = (
    "subject",
    "allocator",
    "variant",
    "metric",
    "unit",
    "better",
    "median",
    "min",
    "max",
    "repeats",
    "samples",
    "versus",
    "ratio",
    "verdict",
)


def value(x: float, unit: str) -> str:
    """A figure with its unit, at about three significant digits."""
    if unit == "B":
        return units.size(x)
    if unit.startswith("ns"):
        return f"{units.ns(x)} {unit}"
    return f"{x:.4g} {unit}"


def _versus(cell: Cell, name: str, record: Record) -> str:
    verdict = cell.verdicts.get(name)
    if verdict is None:
        return "baseline" if cell.allocator == record.baseline_allocator else "-"
    return f"{verdict.ratio:.2f}x ({verdict.label})"


def _row(cell: Cell, name: str, metric: Metric, record: Record) -> list[str]:
    low, high = min(metric.samples), max(metric.samples)
    return [
        cell.subject,
        cell.allocator + (f" [{cell.variant}]" if cell.variant else ""),
        f"{name} ({metric.better} is better)",
        value(metric.median, metric.unit),
        f"{value(low, metric.unit)} - {value(high, metric.unit)}",
        f"{significance.spread(metric.samples):.0%}",
        str(len(metric.samples)),
        _versus(cell, name, record),
    ]


def rows(record: Record) -> list[list[str]]:
    return [_row(c, name, m, record) for c in record.cells for name, m in c.metrics.items()]


def header_lines(record: Record) -> list[str]:
    lines = [
        f"Command: {' '.join(record.argv) or record.command}",
        f"Date: {record.date}",
        f"Machine: {machine.one_line(record.machine)}; {machine.load_line(record.load)}",
    ]
    if record.partial:
        lines.append("PARTIAL: the run was interrupted; only the runs completed before that are here.")
    lines += [f"warning: {w}" for w in record.warnings]
    return lines


def legend(record: Record) -> str:
    base = record.baseline_allocator or "no baseline"
    return (
        f"median over the samples; range [min - max]; spread (max - min) / median; vs baseline: the ratio "
        f"of medians against {base} on the same subject, 'better'/'worse' only beyond noise "
        "(Mann-Whitney U at 95% and the whole interval more than "
        f"{significance.DEFAULT_NOISE_FLOOR:.0%} away)"
    )


def text(record: Record) -> str:
    body = rows(record)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(HEADER)]
    table = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [list(HEADER), *body]
    ]
    return "\n".join([*header_lines(record), "", *table, "", legend(record)]) + "\n"


def markdown(record: Record) -> str:
    out = [f"# allocffi {record.command}", ""]
    out += [f"- {line}" for line in header_lines(record)] + [""]
    out += [
        "| " + " | ".join(HEADER) + " |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in HEADER[3:]) + " |",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows(record)]
    out += ["", legend(record), ""]
    return "\n".join(out)


def to_csv(record: Record) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for cell in record.cells:
        for name, m in cell.metrics.items():
            verdict = cell.verdicts.get(name)
            writer.writerow(
                [
                    cell.subject,
                    cell.allocator,
                    cell.variant,
                    name,
                    m.unit,
                    m.better,
                    m.median,
                    min(m.samples),
                    max(m.samples),
                    len(m.samples),
                    ";".join(f"{s:.6g}" for s in m.samples),
                    "" if verdict is None else verdict.versus,
                    "" if verdict is None else verdict.ratio,
                    "" if verdict is None else verdict.label,
                ]
            )
    return out.getvalue()


def write_plot(record: Record, path: str | Path, metrics: Sequence[str] | None = None) -> None:
    """One panel per metric: per subject, each allocator's median with its [min, max] as a bar."""
    plt = outputs.require_matplotlib()
    names = list(metrics or record.metric_names)
    subjects = list(dict.fromkeys(c.subject for c in record.cells))
    allocators = record.allocators
    fig, axes = plt.subplots(
        max(len(names), 1),
        1,
        figsize=(max(6.0, 1.2 * len(subjects) * len(allocators) ** 0.5), 3 * len(names) + 1),
        squeeze=False,
    )
    width = 0.8 / max(len(allocators), 1)
    for ax, name in zip(axes[:, 0], names, strict=False):
        unit = ""
        for index, allocator in enumerate(allocators):
            xs, medians, below, above = [], [], [], []
            for position, subject in enumerate(subjects):
                for cell in record.cells:
                    m = cell.metrics.get(name)
                    if cell.subject == subject and cell.allocator == allocator and m is not None:
                        xs.append(position + index * width)
                        medians.append(m.median)
                        below.append(m.median - min(m.samples))
                        above.append(max(m.samples) - m.median)
                        unit = m.unit
            if xs:
                ax.bar(xs, medians, width, yerr=[below, above], label=allocator, capsize=2)
        ax.set_xticks([p + 0.4 - width / 2 for p in range(len(subjects))])
        ax.set_xticklabels([Path(s).name for s in subjects], rotation=20, ha="right")
        ax.set_ylabel(f"{name} ({unit})")
        ax.legend(fontsize="small")
    fig.suptitle(f"allocffi {record.command}: medians, bars [min, max]")
    fig.tight_layout()
    outputs.save_figure(fig, path)
    plt.close(fig)
