"""The report of one benchmark session and its files: the results record (JSON), CSV, Markdown.

``BenchReport`` holds everything a session produced; the writers only format
it. JSON is the results record (core/record.py, docs/results-format.md): one
cell per (workload, allocator) with its ns/op samples, the bench's own figures
under ``details.bench``. ``read_json`` reads it back, validated, for
``--baseline`` and ``allocffi report``; ``read_record`` reads any command's
record, converting bench reports of the older schemas allocffi-bench/1 and /2
on load. CSV has one flat row per (workload, allocator). Markdown is for
people: the numbers, speedups against the baseline allocator with
significantly slower cells in bold, memory, the engine overhead and, when
asked for, the project's targets.

Speedups are never trusted from a file: ``read_json`` recomputes them from the
samples.

Invariant: every path is checked (``outputs.check_outputs``) before the
benchmark starts, so a long run never ends in an unwritable file, and every
file is written by ``outputs.write_atomically``. The path "-" means
standard output.
"""

from __future__ import annotations

import csv
import io
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allocffi.harness import calibrate
from allocffi.harness.bench.catalog import BASELINE, MMAP
from allocffi.harness.bench.comparison import Change, summary_line
from allocffi.harness.bench.targets import MET, MISSED, PYTHON_TARGETS, Outcome
from allocffi.harness.core import machine as machine_info
from allocffi.harness.core import record, significance, stats, units
from allocffi.harness.core.errors import UsageError
from allocffi.harness.core.outputs import write_atomically
from allocffi.harness.core.stats import ChecksumMismatch, Result

# Bench reports written before the results record: still read, converted on load.
OLD_SCHEMAS = ("allocffi-bench/1", "allocffi-bench/2")

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
    calibration: calibrate.Calibration | None = None  # the short calibration of this run; None: not run

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


BENCH = "bench"  # the command's name in its results record, and the key of its details there
NS_PER_OP = "ns_per_op"
# Result fields a cell holds elsewhere (key, samples) or that a reader recomputes (speedups).
_NOT_DETAILS = frozenset(
    {"allocator", "workload", "samples", "ns_per_op", "ns_per_op_min", "ns_per_op_max", "repeats"}
    | {"speedup", "speedup_vs", "speedup_low", "speedup_high", "speedup_verdict"}
)


def to_record(report: BenchReport) -> record.Record:
    """The results record of a session: one cell per (workload, allocator), its ns/op samples."""
    cells = [
        record.Cell(
            r.workload,
            r.allocator,
            {NS_PER_OP: record.Metric(list(r.samples) or [r.ns_per_op], "ns/op")},
            details={BENCH: {k: v for k, v in r.to_dict().items() if k not in _NOT_DETAILS}},
        )
        for r in report.results
    ]
    calibration = report.calibration
    result = record.Record(
        BENCH,
        shlex.split(report.command),
        report.config,
        report.date,
        report.machine,
        cells,
        baseline_allocator=report.baseline_allocator,
        load=report.load,
        warnings=list(report.warnings),
        partial=report.partial,
        details={
            BENCH: {
                "wall_time_s": round(report.wall_time_s, 3),
                "engine_overhead_ns_per_op": report.overhead,
                "checksums_agree": not report.mismatches,
                "checksum_mismatches": [
                    {"workload": m.workload, "checksums": dict(m.checksums)} for m in report.mismatches
                ],
                "targets": [
                    {"target": o.label, "status": o.status, "measured": o.measured} for o in report.targets
                ],
                "comparison": None if report.changes is None else [c.to_dict() for c in report.changes],
                "calibration": None
                if calibration is None
                else calibration.to_record(
                    shlex.split(report.command), report.date, report.machine
                ).to_json(),
            }
        },
    )
    record.judge(result)
    return result


def write_json(report: BenchReport, path: str | Path) -> None:
    record.write(to_record(report), path)


@dataclass
class _RunDetails:
    """What a bench record keeps beside its cells (details.bench), as read back."""

    wall_time_s: float = 0.0
    engine_overhead_ns_per_op: dict[str, float] = field(default_factory=dict)
    checksum_mismatches: list[dict[str, Any]] = field(default_factory=list)
    comparison: list[dict[str, Any]] | None = None
    calibration: dict[str, Any] | None = None


def _cell_result(cell: record.Cell, path: str) -> Result:
    metric = cell.metrics.get(NS_PER_OP)
    if metric is None:
        raise UsageError(f"{path}.metrics.{NS_PER_OP}: missing (a bench cell always has it)")
    own = cell.details.get(BENCH, {})
    if not isinstance(own, dict):
        raise UsageError(f"{path}.details.{BENCH}: expected an object")
    fields = {k: v for k, v in own.items() if k not in _NOT_DETAILS}
    fields.update(
        allocator=cell.allocator,
        workload=cell.subject,
        samples=metric.samples,
        ns_per_op=metric.median,
        ns_per_op_min=min(metric.samples),
        ns_per_op_max=max(metric.samples),
        repeats=len(metric.samples),
    )
    fields.setdefault("ops", 0)
    fields.setdefault("checksum", 0)
    return record.dataclass_from(Result, fields, f"{path}.details.{BENCH}")


def _mismatch(data: Any, path: str) -> ChecksumMismatch:
    entry = record.dataclass_from(_MismatchEntry, data if isinstance(data, dict) else {}, path)
    return ChecksumMismatch(entry.workload, entry.checksums)


@dataclass
class _MismatchEntry:
    workload: str
    checksums: dict[str, list[int]]


def from_record(
    saved: record.Record, source: str, baseline_allocator: str | None = None, speedups: bool = True
) -> BenchReport:
    """A session from its (validated) results record; speedups recomputed against ``baseline_allocator``.

    ``speedups=False`` skips that work (a verdict per cell) for callers that only compare runs.
    """
    if saved.command != BENCH:
        raise UsageError(f"{source} holds the results of `allocffi {saved.command}`, not of `allocffi bench`")
    results = [_cell_result(c, f"results[{i}]") for i, c in enumerate(saved.cells)]
    own = saved.details.get(BENCH, {})
    extra = record.dataclass_from(_RunDetails, own if isinstance(own, dict) else {}, f"details.{BENCH}")
    present = list(dict.fromkeys(r.allocator for r in results))
    baseline = baseline_allocator or saved.baseline_allocator or BASELINE
    if baseline_allocator is not None and baseline not in present:
        raise UsageError(
            f"--baseline-allocator {baseline}: {source} has no results for it (it has {', '.join(present)})"
        )
    if baseline not in present and present:
        baseline = default_baseline(present)
    if speedups:
        stats.fill_speedups(results, baseline)
    try:
        changes = None if extra.comparison is None else [Change.from_dict(c) for c in extra.comparison]
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{source}: details.{BENCH}.comparison is malformed ({exc})") from exc
    calibration = None
    if extra.calibration is not None:
        try:
            calibration = calibrate.from_record(record.from_json(extra.calibration, "calibration"))
        except UsageError as exc:
            raise UsageError(f"details.{BENCH}.calibration: {exc}") from exc
    return BenchReport(
        date=saved.date,
        command=shlex.join(saved.argv),
        machine=saved.machine,
        config=saved.config,
        results=results,
        overhead=extra.engine_overhead_ns_per_op,
        mismatches=[
            _mismatch(m, f"details.{BENCH}.checksum_mismatches[{i}]")
            for i, m in enumerate(extra.checksum_mismatches)
        ],
        changes=changes,
        wall_time_s=extra.wall_time_s,
        baseline_allocator=baseline,
        load=saved.load,
        partial=saved.partial,
        warnings=saved.warnings,
        calibration=calibration,
    )


def record_of_old_report(data: Mapping[str, Any]) -> dict[str, Any]:
    """A bench report of schema allocffi-bench/1 or /2 as a results record, for the one check.

    /1 lacks load, warnings, partial and the speedups (which are recomputed anyway); its cells
    without per-repeat samples keep their median as the one sample.
    """
    cells = []
    for entry in data.get("results") or []:
        if not isinstance(entry, Mapping):
            cells.append(entry)  # refused by the check, with its path
            continue
        samples = entry.get("samples") or [entry.get("ns_per_op")]
        cells.append(
            {
                "subject": entry.get("workload"),
                "allocator": entry.get("allocator"),
                "metrics": {NS_PER_OP: {"unit": "ns/op", "better": record.LOWER, "samples": samples}},
                "details": {BENCH: {k: v for k, v in entry.items() if k not in _NOT_DETAILS}},
            }
        )
    command = data.get("command")
    return {
        "schema": record.SCHEMA,
        "command": {
            "name": BENCH,
            "argv": shlex.split(command) if isinstance(command, str) else ["allocffi", "bench"],
            "config": data.get("config") or {},
        },
        "date": data.get("date", "unknown"),
        "machine": data.get("machine") or {},
        "load": data.get("load"),
        "baseline_allocator": data.get("baseline_allocator"),
        "partial": data.get("partial", False),
        "warnings": data.get("warnings") or [],
        "details": {
            BENCH: {
                k: data[k]
                for k in ("wall_time_s", "engine_overhead_ns_per_op", "checksum_mismatches", "comparison")
                if data.get(k) is not None
            }
        },
        "results": cells,
    }


def read_record(path: str | Path, what: str = "results") -> record.Record:
    """Any command's saved results, validated; old bench reports converted first."""
    data = record.load_json_text(path, what)
    if isinstance(data, dict) and data.get("schema", OLD_SCHEMAS[0]) in OLD_SCHEMAS and "results" in data:
        data = record_of_old_report(data)
    try:
        return record.from_json(data, str(path))
    except UsageError as exc:
        raise UsageError(f"{what} {path}: {exc}") from exc


def read_json(
    path: str | Path, what: str = "report", baseline_allocator: str | None = None, speedups: bool = True
) -> BenchReport:
    """Read the results of ``allocffi bench --json``; UsageError (naming the field) when that fails."""
    saved = read_record(path, what)
    try:
        return from_record(saved, str(path), baseline_allocator, speedups)
    except UsageError as exc:
        raise UsageError(f"{what} {path}: {exc}") from exc


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
        out += calibrate.markdown_lines(report.calibration.to_json())

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
