"""Formats of a replay's results: a console table, the results record (JSON), CSV, Markdown, a bar chart.

One row per (trace, allocator): median ns per replayed call and its verdict against libc, the
peak RSS the replay added (heap) against the trace's ideal (peak live bytes) and their ratio,
minor faults, and for the bump arena (which cannot free) a note that frees were ignored with its
footprint. Writers only format; ``replay.py`` measures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from allocffi.harness.bench import catalog
from allocffi.harness.core import outputs, record, units
from allocffi.harness.trace.replay import ReplayOutcome, ReplayResult

HEADER = (
    "trace",
    "allocator",
    "ns/call",
    "vs libc",
    "heap peak RSS",
    "ideal",
    "RSS/ideal",
    "minor faults",
    "note",
)


def _note(r: ReplayResult) -> str:
    if r.frees_ignored:
        return f"frees ignored: footprint {units.size(r.capacity_bytes or r.os_bytes)}"
    return ""


def _versus(r: ReplayResult) -> str:
    if r.ratio_vs_libc is None:
        return "baseline" if r.allocator == "libc" else "-"
    return f"{r.ratio_vs_libc:.2f}x ({r.verdict})"


def rows(outcome: ReplayOutcome) -> list[list[str]]:
    return [
        [
            Path(r.trace).name,
            r.allocator,
            f"{r.ns_per_event:.1f}",
            _versus(r),
            units.size(r.heap_peak_rss_bytes),
            units.size(r.peak_live_bytes),
            f"{r.rss_vs_ideal:.2f}",
            f"{r.minor_faults:,}",
            _note(r),
        ]
        for r in outcome.results
    ]


def table(outcome: ReplayOutcome) -> str:
    body = rows(outcome)
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(HEADER)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines) + "\n"


def footnotes(outcome: ReplayOutcome, config: Mapping[str, Any]) -> list[str]:
    notes = [
        f"ns/call: median over {config['repeat']} fresh-process repeats of the replay loop in C "
        f"(touch {config['touch']}, {config['mode']} mode); vs libc: ratio of medians (< 1 faster) "
        "with the Mann-Whitney/bootstrap verdict",
        "heap peak RSS: peak RSS during the replay minus RSS before it (the replay's tables excluded); "
        "ideal: the trace's peak of live requested bytes",
    ]
    for name, why in outcome.skipped.items():
        notes.append(f"{name}: skipped ({why})")
    notes += outcome.mismatches
    return notes


COMMAND = "trace replay"  # the command's name in its results record, and the key of its details
# ReplayResult fields a cell holds as metrics, or that a reader recomputes (the verdict).
_NOT_DETAILS = frozenset(
    {"trace", "allocator", "samples", "heap_samples", "fault_samples", "verdict", "ratio_vs_libc"}
)


def to_record(
    outcome: ReplayOutcome, config: Mapping[str, Any], machine: dict[str, Any], argv: Sequence[str], date: str
) -> record.Record:
    """The results record: per (trace, allocator) the ns per call, heap peak RSS and minor faults
    of every repeat; the rest of a row under details["trace replay"]."""
    cells = []
    for r in outcome.results:
        metrics = {"ns_per_call": record.Metric(list(r.samples), "ns/call")}
        if r.heap_samples:
            metrics["heap_peak_rss"] = record.Metric(list(r.heap_samples), "B")
        if r.fault_samples:
            metrics["minor_faults"] = record.Metric(list(r.fault_samples), "faults")
        details = {k: v for k, v in r.to_dict().items() if k not in _NOT_DETAILS}
        cells.append(record.Cell(r.trace, r.allocator, metrics, details={COMMAND: details}))
    saved = record.Record(
        COMMAND,
        list(argv),
        {k: v for k, v in config.items() if k != "command"},
        date,
        machine,
        cells,
        baseline_allocator=catalog.BASELINE,
        details={COMMAND: {"skipped": outcome.skipped, "checksum_mismatches": outcome.mismatches}},
    )
    record.judge(saved)
    return saved


def to_csv(outcome: ReplayOutcome) -> str:
    out = io.StringIO()
    fields = [f for f in ReplayResult.__dataclass_fields__ if not f.endswith("samples")]
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for r in outcome.results:
        writer.writerow(r.to_dict())
    return out.getvalue()


def to_markdown(outcome: ReplayOutcome, config: Mapping[str, Any]) -> str:
    lines = [f"# Trace replay: {config['trace']}", "", f"Command: `{config['command']}`", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * 6 + ["---"]) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows(outcome)]
    lines.append("")
    lines += [f"- {n}" for n in footnotes(outcome, config)]
    return "\n".join(lines) + "\n"


def write_plot(outcome: ReplayOutcome, path: str | Path) -> None:
    plt = outputs.require_matplotlib()
    traces = list(dict.fromkeys(r.trace for r in outcome.results))
    fig, axes = plt.subplots(len(traces), 1, figsize=(8, 3 * len(traces)), squeeze=False)
    for ax, trace in zip(axes[:, 0], traces, strict=True):
        mine = [r for r in outcome.results if r.trace == trace]
        ax.bar([r.allocator for r in mine], [r.ns_per_event for r in mine])
        ax.set_title(Path(trace).name)
        ax.set_ylabel("ns per replayed call")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    outputs.save_figure(fig, path)
    plt.close(fig)


def write_files(
    outcome: ReplayOutcome,
    config: Mapping[str, Any],
    saved: record.Record,
    json_path: str | None,
    csv_path: str | None,
    markdown_path: str | None,
    plot_path: str | None,
) -> None:
    if json_path:
        record.write(saved, json_path)
    if csv_path:
        outputs.write_atomically(csv_path, to_csv(outcome), "--csv")
    if markdown_path:
        outputs.write_atomically(markdown_path, to_markdown(outcome, config), "--markdown")
    if plot_path:
        write_plot(outcome, plot_path)
