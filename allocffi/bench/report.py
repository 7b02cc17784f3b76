"""The report of one benchmark session and its files: JSON, CSV, Markdown.

``BenchReport`` holds everything a session produced; the writers only format
it. JSON is the machine-readable record (and what ``--baseline`` reads back):
metadata plus one entry per (allocator, workload) in ``results``. CSV has the
same entries, flat. Markdown is for people: the numbers, speedups against
glibc with slow cases in bold, memory, the engine overhead and the targets.

Invariant: every path is checked with ``ensure_writable`` before the
benchmark starts, so a long run never ends in an unwritable file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allocffi.bench import machine as machine_info
from allocffi.bench import units
from allocffi.bench.catalog import BASELINE
from allocffi.bench.compare import Change
from allocffi.bench.errors import UsageError
from allocffi.bench.stats import ChecksumMismatch, Result
from allocffi.bench.targets import MET, MISSED, PYTHON_TARGETS, Outcome

SCHEMA = "allocffi-bench/1"


@dataclass
class BenchReport:
    """Everything one session measured, ready to format."""

    date: str  # ISO 8601, local time with offset
    command: str
    machine: dict[str, Any]
    config: dict[str, Any]  # allocators, workloads, repeat, seed, ops per workload, ...
    results: list[Result]
    overhead: dict[str, float] = field(default_factory=dict)  # workload -> null ns/op
    mismatches: list[ChecksumMismatch] = field(default_factory=list)
    targets: list[Outcome] = field(default_factory=list)
    changes: list[Change] | None = None  # None: no --baseline
    wall_time_s: float = 0.0
    calibration: dict[str, Any] | None = (
        None  # the short calibration of this run (calibrate.py); None: not run
    )

    @property
    def allocators(self) -> list[str]:
        return list(dict.fromkeys(r.allocator for r in self.results))

    @property
    def workloads(self) -> list[str]:
        return list(dict.fromkeys(r.workload for r in self.results))

    def cell(self) -> dict[tuple[str, str], Result]:
        return {(r.workload, r.allocator): r for r in self.results}


# --------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------


def ensure_writable(path: str | Path, what: str) -> Path:
    """Create the parent directory if needed and prove the file can be written.

    An existing file is left untouched; a new one is created and removed.
    """
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{what} path {target} is a directory, not a file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        existed = target.exists()
        with open(target, "a"):
            pass
        if not existed:
            target.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write {what} to {target}: {exc.strerror or exc}") from exc
    return target


def _write_text(path: str | Path, text: str) -> None:
    """Write atomically: a crash never leaves half a report behind."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)


# --------------------------------------------------------------------------
# JSON and CSV
# --------------------------------------------------------------------------


def to_json(report: BenchReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "date": report.date,
        "command": report.command,
        "machine": report.machine,
        "config": report.config,
        "wall_time_s": round(report.wall_time_s, 3),
        "engine_overhead_ns_per_op": report.overhead,
        "checksums_agree": not report.mismatches,
        "checksum_mismatches": [
            {"workload": m.workload, "checksums": dict(m.checksums)} for m in report.mismatches
        ],
        "targets": [{"target": o.label, "status": o.status, "measured": o.measured} for o in report.targets],
        "comparison": None
        if report.changes is None
        else [
            {
                "allocator": c.allocator,
                "workload": c.workload,
                "old_ns_per_op": c.old_ns,
                "new_ns_per_op": c.new_ns,
                "ratio": c.ratio,
                "verdict": c.verdict,
                "noise_threshold": c.threshold,
            }
            for c in report.changes
        ],
        "results": [r.to_dict() for r in report.results],
        "calibration": report.calibration,
    }


def write_json(report: BenchReport, path: str | Path) -> None:
    _write_text(path, json.dumps(to_json(report), indent=2) + "\n")


CSV_FIELDS: tuple[str, ...] = tuple(Result.__dataclass_fields__)


def to_csv(results: Sequence[Result]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        row = r.to_dict()
        row["samples"] = ";".join(f"{s:.4f}" for s in r.samples)
        writer.writerow(row)
    return out.getvalue()


def write_csv(report: BenchReport, path: str | Path) -> None:
    _write_text(path, to_csv(report.results))


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def overhead_line(overhead: Mapping[str, float]) -> str:
    if not overhead:
        return "Engine overhead (null allocator): not measured."
    values = sorted(overhead.values())
    lead = "fixed-48" if "fixed-48" in overhead else next(iter(overhead))
    return (
        "Engine overhead (null allocator; part of every ns/op figure): "
        f"{units.ns(overhead[lead])} ns/op on {lead}; "
        f"{units.ns(values[0])} to {units.ns(values[-1])} ns/op over {len(values)} workloads."
    )


def _speedup_cell(result: Result | None) -> str:
    if result is None or result.speedup_vs_libc is None:
        return "-"
    text = units.speedup(result.speedup_vs_libc)
    return f"**{text}**" if result.speedup_vs_libc < 1.0 else text


def _config_line(config: Mapping[str, Any]) -> str:
    parts = [f"repeat {config.get('repeat')}", f"seed {config.get('seed')}"]
    if config.get("time_budget_s"):
        parts.append(f"ops calibrated to {config['time_budget_s']} s per run")
    parts.append("each run in a fresh process, allocators interleaved")
    return ", ".join(parts)


def to_markdown(report: BenchReport) -> str:
    allocators = report.allocators
    workloads = report.workloads
    cells = report.cell()
    out = ["# allocffi benchmark", ""]
    out += [
        f"- Date: {report.date}",
        f"- Command: `{report.command}`",
        f"- Machine: {machine_info.one_line(report.machine)}",
        f"- Libraries: {machine_info.libraries_line(report.machine)}",
        f"- Runs: {_config_line(report.config)}; wall time {report.wall_time_s:.0f} s",
        f"- {overhead_line(report.overhead)}",
        "",
    ]
    if report.mismatches:
        out += [
            "**CHECKSUM MISMATCH: some allocators computed different results; their numbers are void.**",
            "",
        ]
        out += [f"- {m.describe()}" for m in report.mismatches] + [""]
    else:
        out += ["Checksums: every allocator computed the same checksum on every workload.", ""]

    out += ["## Median ns/op (lower is better)", ""]
    rows = []
    for w in workloads:
        ops = next(r.ops for r in report.results if r.workload == w)
        rows.append(
            [
                w,
                units.count(ops),
                *[units.ns(cells[(w, a)].ns_per_op) if (w, a) in cells else "-" for a in allocators],
            ]
        )
    out += _table(["workload", "ops", *allocators], rows)

    if BASELINE in allocators:
        out += [f"## Speedup vs {BASELINE} (higher is better; **bold**: slower than {BASELINE})", ""]
        rows = [[w, *[_speedup_cell(cells.get((w, a))) for a in allocators]] for w in workloads]
        out += _table(["workload", *allocators], rows)

    if report.targets:
        out += ["## Targets", ""]
        for o in report.targets:
            mark = {MET: "met", MISSED: "**MISSED**"}.get(o.status, o.status)
            out.append(f"- {mark}: {o.label} ({o.measured})")
        out += [f"- not measured here: {t}" for t in PYTHON_TARGETS] + [""]

    if report.calibration is not None:
        from allocffi.bench.calibrate import markdown_lines

        out += markdown_lines(report.calibration)

    if report.changes is not None:
        out += ["## Compared with the baseline", ""]
        moved = [c for c in report.changes if c.verdict != "noise"]
        out.append(f"{len(report.changes)} pairs compared, {len(report.changes) - len(moved)} within noise.")
        out.append("")
        if moved:
            rows = [
                [c.workload, c.allocator, units.ns(c.old_ns), units.ns(c.new_ns), c.describe()] for c in moved
            ]
            out += _table(["workload", "allocator", "old ns/op", "new ns/op", "change"], rows, right_from=2)

    out += [
        "## Details",
        "",
        "Median over repeats; range is [min, max] ns/op; RSS figures are the child process's.",
        "",
    ]
    rows = []
    for w in workloads:
        for a in allocators:
            r = cells.get((w, a))
            if r is None:
                continue
            rows.append(
                [
                    w,
                    a,
                    units.ns(r.ns_per_op),
                    f"{units.ns(r.ns_per_op_min)}-{units.ns(r.ns_per_op_max)}",
                    units.speedup(r.speedup_vs_libc),
                    units.size(r.peak_rss_bytes),
                    units.size(r.rss_growth_bytes),
                    f"{r.bytes_per_op:,.0f}",
                    units.count(r.minor_faults),
                ]
            )
    header = [
        "workload",
        "allocator",
        "ns/op",
        "range",
        "vs libc",
        "peak RSS",
        "RSS growth",
        "B/op",
        "minor faults",
    ]
    out += _table(header, rows, right_from=2)
    return "\n".join(out)


def write_markdown(report: BenchReport, path: str | Path) -> None:
    _write_text(path, to_markdown(report))
