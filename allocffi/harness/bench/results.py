"""The report of one benchmark session and its files: JSON, CSV, Markdown.

``BenchReport`` holds everything a session produced; the writers only format
it. JSON is the machine-readable record, and ``read_json`` reads it back for
``--baseline``, ``allocffi compare`` and ``allocffi report``: metadata (the
machine, its load around the run, warnings, whether the run was interrupted)
plus one entry per (allocator, workload) in ``results``. CSV has the same
entries, flat. Markdown is for people: the numbers, speedups against the
baseline allocator with significantly slower cells in bold, memory, the
engine overhead and, when asked for, the project's targets.

Speedups are never trusted from a file: ``read_json`` recomputes them from the
samples, so files written before the speedup fields existed still load.

Invariant: every path is checked (``outputs.check_outputs``) before the
benchmark starts, so a long run never ends in an unwritable file, and every
file is written by ``outputs.write_atomically``. The path "-" means
standard output.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allocffi.harness.bench.catalog import BASELINE, MMAP
from allocffi.harness.bench.comparison import Change, summary_line
from allocffi.harness.bench.targets import MET, MISSED, PYTHON_TARGETS, Outcome
from allocffi.harness.calibrate import markdown_lines
from allocffi.harness.core import inputs, shapes, significance, stats, units
from allocffi.harness.core import machine as machine_info
from allocffi.harness.core.errors import UsageError
from allocffi.harness.core.outputs import write_atomically
from allocffi.harness.core.stats import ChecksumMismatch, Result

SCHEMA = "allocffi-bench/2"
READABLE_SCHEMAS = ("allocffi-bench/1", SCHEMA)  # /1 lacks load, warnings, partial and speedup fields

# A cell whose repeats spread wider than this ((max - min) / median) is flagged:
# at 20% a 1.2x difference can come from one noisy repeat.
SPREAD_WARNING = 0.20


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
    baseline_allocator: str = BASELINE  # what speedups are computed against
    load: dict[str, Any] | None = None  # machine.LoadWatch.finish(): load before, during, after
    partial: bool = False  # interrupted: only the runs completed before Ctrl-C
    warnings: list[str] = field(default_factory=list)  # what makes these figures doubtful
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
# JSON and CSV
# --------------------------------------------------------------------------


def run_warnings(report: BenchReport) -> list[str]:
    """A busy machine and cells spread wider than SPREAD_WARNING, one line each."""
    found = []
    busy = machine_info.busy_reason(report.load)
    if busy:
        found.append(busy)
    wide = sorted(
        (r for r in report.results if r.repeats > 1 and r.spread > SPREAD_WARNING),
        key=lambda r: -r.spread,
    )
    if wide:
        examples = ", ".join(f"{r.workload}/{r.allocator} {r.spread:.0%}" for r in wide[:3])
        found.append(
            f"{len(wide)} of {len(report.results)} cells spread more than {SPREAD_WARNING:.0%} "
            f"((max - min) / median of the repeats; widest: {examples}): more --repeat or a quieter "
            "machine would make them surer"
        )
    return found


def to_json(report: BenchReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "date": report.date,
        "command": report.command,
        "partial": report.partial,
        "machine": report.machine,
        "load": report.load,
        "warnings": report.warnings,
        "config": report.config,
        "baseline_allocator": report.baseline_allocator,
        "wall_time_s": round(report.wall_time_s, 3),
        "engine_overhead_ns_per_op": report.overhead,
        "checksums_agree": not report.mismatches,
        "checksum_mismatches": [
            {"workload": m.workload, "checksums": dict(m.checksums)} for m in report.mismatches
        ],
        "targets": [{"target": o.label, "status": o.status, "measured": o.measured} for o in report.targets],
        "comparison": None if report.changes is None else [c.to_dict() for c in report.changes],
        "results": [r.to_dict() for r in report.results],
        "calibration": report.calibration,
    }


def write_json(report: BenchReport, path: str | Path) -> None:
    write_atomically(path, json.dumps(to_json(report), indent=2) + "\n", "--json")


# What a saved report must hold, field by field (see core/shapes.py): checked on load, so a
# mutated file is one line naming the field, and the code below never meets a wrong type.
_RESULT_SHAPES: dict[str, shapes.Shape] = {
    "str": shapes.TEXT,
    "str | None": shapes.optional(shapes.TEXT),
    "int": shapes.COUNT,
    "float": shapes.SIZE,
    "float | None": shapes.optional(shapes.SIZE),
    "list[float]": shapes.list_of(shapes.POSITIVE),
}
RESULT = shapes.record(
    {
        **{name: _RESULT_SHAPES[str(f.type)] for name, f in Result.__dataclass_fields__.items()},
        "ns_per_op": shapes.POSITIVE,  # speedups divide by it
        "rss_growth_bytes": shapes.INTEGER,  # may shrink
    },
    required=("allocator", "workload", "ns_per_op"),
)
_LOAD_STATE = shapes.record(
    {"load_average": shapes.list_of(shapes.NUMBER), "cpus": shapes.COUNT, "usable_cpus": shapes.COUNT}
)
_CHANGE = shapes.record(
    {
        **dict.fromkeys(("allocator", "workload", "verdict"), shapes.TEXT),
        **dict.fromkeys(
            ("old_ns_per_op", "new_ns_per_op", "ratio", "ratio_low", "ratio_high", "p_value", "confidence"),
            shapes.SIZE,
        ),
        "ops_changed": shapes.FLAG,
    },
    required=("allocator", "workload", "old_ns_per_op", "new_ns_per_op", "ratio", "verdict"),
)
_CALIBRATION_ROW = shapes.record(
    {
        "library": shapes.TEXT,
        "workload": shapes.TEXT,
        "direct_ns_per_op": shapes.SIZE,
        "engine_ns_per_op": shapes.SIZE,
        "wrapper_ns_per_op": shapes.NUMBER,
        "direct_speedup_vs_libc": shapes.optional(shapes.SIZE),
        "engine_speedup_vs_libc": shapes.optional(shapes.SIZE),
        "speedup_change": shapes.optional(shapes.NUMBER),
        "flagged": shapes.FLAG,
        "spread": shapes.optional(shapes.SIZE),
    },
    required=("library", "workload", "direct_ns_per_op", "engine_ns_per_op", "wrapper_ns_per_op"),
)
REPORT = shapes.record(
    {
        "schema": shapes.TEXT,
        "date": shapes.TEXT,
        "command": shapes.TEXT,
        "partial": shapes.FLAG,
        "machine": shapes.map_of(
            shapes.optional(
                shapes.one_of(shapes.TEXT, shapes.NUMBER, shapes.map_of(shapes.optional(shapes.TEXT)))
            )
        ),
        "load": shapes.optional(
            shapes.record(
                {
                    "before": shapes.optional(_LOAD_STATE),
                    "after": shapes.optional(_LOAD_STATE),
                    "highest_load_during": shapes.optional(shapes.NUMBER),
                }
            )
        ),
        "warnings": shapes.list_of(shapes.TEXT),
        "config": shapes.map_of(shapes.ANY),
        "baseline_allocator": shapes.optional(shapes.TEXT),
        "wall_time_s": shapes.optional(shapes.SIZE),
        "engine_overhead_ns_per_op": shapes.map_of(shapes.SIZE),
        "checksum_mismatches": shapes.list_of(
            shapes.record(
                {
                    "workload": shapes.TEXT,
                    "checksums": shapes.map_of(shapes.one_of(shapes.COUNT, shapes.TEXT)),
                },
                required=("workload", "checksums"),
            )
        ),
        "comparison": shapes.optional(shapes.list_of(_CHANGE)),
        "results": shapes.list_of(RESULT),
        "calibration": shapes.optional(
            shapes.record(
                {
                    "tolerance": shapes.SIZE,
                    "flagged": shapes.list_of(shapes.TEXT),
                    "config": shapes.map_of(shapes.ANY),
                    "rows": shapes.list_of(_CALIBRATION_ROW),
                }
            )
        ),
    },
    required=("results",),
)


def _result(record: Mapping[str, Any]) -> Result:
    """A checked result record, with the fields of older files filled in."""
    fields = dict(record)
    samples = fields.setdefault("samples", [])
    fields.setdefault("ns_per_op_min", min(samples, default=fields["ns_per_op"]))
    fields.setdefault("ns_per_op_max", max(samples, default=fields["ns_per_op"]))
    fields.setdefault("repeats", len(samples) or 1)
    fields.setdefault("ops", 0)
    fields.setdefault("checksum", 0)
    return Result.from_dict(fields)


def from_json(
    data: Any, source: str, baseline_allocator: str | None = None, speedups: bool = True
) -> BenchReport:
    """A report from its JSON record, checked field by field (REPORT); speedups recomputed
    against ``baseline_allocator``.

    ``speedups=False`` skips that work (a verdict per cell) for callers that only compare runs.
    """
    if not isinstance(data, Mapping) or "results" not in data:
        raise UsageError(f'{source} is not an allocffi bench report (no "results" list)')
    schema = data.get("schema", READABLE_SCHEMAS[0])
    if schema not in READABLE_SCHEMAS:
        raise UsageError(
            f"{source} has schema {str(schema)[:40]!r}; this allocffi reads {', '.join(READABLE_SCHEMAS)} "
            "(bench reports written by `allocffi bench --json`)"
        )
    data = shapes.check(data, REPORT, source)
    results = [_result(r) for r in data["results"]]
    present = list(dict.fromkeys(r.allocator for r in results))
    baseline = baseline_allocator or data.get("baseline_allocator") or BASELINE
    if baseline_allocator is not None and baseline not in present:
        raise UsageError(
            f"--baseline-allocator {baseline}: {source} has no results for it (it has {', '.join(present)})"
        )
    if baseline not in present and present:
        baseline = default_baseline(present)
    if speedups:
        stats.fill_speedups(results, baseline)
    comparison = data.get("comparison")
    return BenchReport(
        date=data.get("date", "unknown"),
        command=data.get("command", "unknown"),
        machine=data.get("machine", {}),
        config=data.get("config", {}),
        results=results,
        overhead=data.get("engine_overhead_ns_per_op", {}),
        mismatches=[
            ChecksumMismatch(m["workload"], m["checksums"]) for m in data.get("checksum_mismatches", [])
        ],
        changes=None if comparison is None else [Change.from_dict(c) for c in comparison],
        wall_time_s=data.get("wall_time_s") or 0.0,
        baseline_allocator=baseline,
        load=data.get("load"),
        partial=data.get("partial", False),
        warnings=data.get("warnings", []),
        calibration=data.get("calibration"),
    )


def read_json(
    path: str | Path, what: str = "report", baseline_allocator: str | None = None, speedups: bool = True
) -> BenchReport:
    """Read a JSON report written by ``allocffi bench --json``; UsageError when that fails."""
    text = inputs.read_user_text(path, what, inputs.MAX_TEXT_BYTES)
    return from_json(
        inputs.parse_json(text, f"{what} {inputs.shown(path)}"), str(path), baseline_allocator, speedups
    )


def default_baseline(allocators: Sequence[str]) -> str:
    """libc when it ran, else the first allocator that is not a reference such as mmap."""
    if BASELINE in allocators:
        return BASELINE
    return next((a for a in allocators if a != MMAP), allocators[0])


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
    write_atomically(path, to_csv(report.results), "--csv")


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _what_rows_measure(
    results: Sequence[Result], workloads: Sequence[str], allocators: Sequence[str]
) -> list[str]:
    """Per workload its touch policy, threads and sharing; per competitor its mode."""
    first: dict[str, Result] = {}
    modes: dict[str, str] = {}
    for r in results:
        first.setdefault(r.workload, r)
        modes.setdefault(r.allocator, r.mode)
    out = [
        "## What each row measures",
        "",
        "touch: what every allocation writes and reads back (ends: first and last 8 bytes; pages: also one "
        "word per 4 KiB page; all: every byte). sharing: whether the threads of a threaded workload have an "
        "allocator instance each or share one; ns/op of a threaded row is per op per thread.",
        "",
    ]
    rows = [[w, first[w].touch, first[w].sharing, str(first[w].threads)] for w in workloads if w in first]
    out += _table(["workload", "touch", "sharing", "threads"], rows, right_from=3)
    described = ", ".join(f"{a}: {modes[a]}" for a in allocators if a in modes)
    out += [
        f"Modes ({described}): free frees each block where the workload frees it; arena skips the frees "
        "and resets once per phase.",
        "",
    ]
    return out


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
    if result is None or result.speedup is None:
        return "-"
    text = units.speedup(result.speedup)
    return f"**{text}**" if result.significantly_slower else text


def speedup_legend(baseline: str) -> str:
    return (
        f"higher is better; **bold**: slower than {baseline} beyond noise (Mann-Whitney U on the repeats "
        f"at 95% and the whole interval more than {significance.DEFAULT_NOISE_FLOOR:.0%} away)"
    )


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
    baseline = report.baseline_allocator
    out = ["# allocffi benchmark", ""]
    if report.partial:
        out += ["**PARTIAL: the run was interrupted; only the runs completed before that are here.**", ""]
    out += [
        f"- Date: {report.date}",
        f"- Command: `{report.command}`",
        f"- Machine: {machine_info.one_line(report.machine)}; {machine_info.load_line(report.load)}",
        f"- Libraries: {machine_info.libraries_line(report.machine)}",
        f"- Runs: {_config_line(report.config)}; wall time {report.wall_time_s:.0f} s",
        f"- {overhead_line(report.overhead)}",
        "",
    ]
    out += [f"- **warning**: {w}" for w in report.warnings]
    if report.warnings:
        out.append("")
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

    out += _what_rows_measure(report.results, workloads, allocators)

    if baseline in allocators:
        out += [f"## Speedup vs {baseline} ({speedup_legend(baseline)})", ""]
        rows = [[w, *[_speedup_cell(cells.get((w, a))) for a in allocators]] for w in workloads]
        out += _table(["workload", *allocators], rows)

    if report.targets:
        out += ["## Targets", ""]
        for o in report.targets:
            mark = {MET: "met", MISSED: "**MISSED**"}.get(o.status, o.status)
            out.append(f"- {mark}: {o.label} ({o.measured})")
        out += [f"- not measured here: {t}" for t in PYTHON_TARGETS] + [""]

    if report.calibration is not None:
        out += markdown_lines(report.calibration)

    if report.changes is not None:
        out += ["## Compared with the baseline run", "", summary_line(report.changes) + ".", ""]
        rows = [
            [c.workload, c.allocator, units.ns(c.old_ns), units.ns(c.new_ns), c.describe()]
            for c in report.changes
        ]
        if rows:
            out += _table(["workload", "allocator", "old ns/op", "new ns/op", "change"], rows, right_from=2)

    out += [
        "## Details",
        "",
        "Median over repeats; range is [min, max] ns/op, spread is (max - min) / median; "
        "RSS figures are the child process's.",
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
                    f"{r.spread:.0%}",
                    units.speedup(r.speedup),
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
        "spread",
        f"vs {baseline}",
        "peak RSS",
        "RSS growth",
        "B/op",
        "minor faults",
    ]
    out += _table(header, rows, right_from=2)
    return "\n".join(out)


def write_markdown(report: BenchReport, path: str | Path) -> None:
    write_atomically(path, to_markdown(report), "--markdown")
