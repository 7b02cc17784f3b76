"""What the terminal shows: progress while running, then the tables.

With rich installed and stdout a terminal: a progress bar and rich tables.
Otherwise plain text: one line per finished (repeat, workload) on stderr,
and aligned text tables on stdout. ``--quiet`` shows neither.

rich is imported only here and only when it is used.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

from allocffi.harness.bench.comparison import summary_line
from allocffi.harness.bench.results import BenchReport, overhead_line
from allocffi.harness.bench.targets import MET, MISSED, PYTHON_TARGETS
from allocffi.harness.calibrate import text_lines
from allocffi.harness.core import machine, units
from allocffi.harness.core.children import RunRecord, RunSpec
from allocffi.harness.core.stats import Result


def rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def use_rich(stream: TextIO) -> bool:
    return stream.isatty() and rich_available()


# --------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------


class Progress(Protocol):
    def start(self, specs: Sequence[RunSpec]) -> None: ...
    def done(self, spec: RunSpec, record: RunRecord | None) -> None: ...
    def stop(self) -> None: ...


class QuietProgress:
    def start(self, specs: Sequence[RunSpec]) -> None:
        pass

    def done(self, spec: RunSpec, record: RunRecord | None) -> None:
        pass

    def stop(self) -> None:
        pass


def _label(spec: RunSpec, repeats: int) -> str:
    stage = f"repeat {spec.repeat + 1}/{repeats}" if spec.repeat >= 0 else "engine overhead"
    return f"{stage}  {spec.workload}  {spec.allocator}"


class PlainProgress:
    """One line per finished (repeat, workload): every allocator's ns/op."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.remaining: dict[tuple[int, str], int] = {}
        self.lines: dict[tuple[int, str], list[str]] = {}
        self.repeats = 0

    def start(self, specs: Sequence[RunSpec]) -> None:
        self.repeats = max((s.repeat for s in specs), default=0) + 1
        for s in specs:
            key = (s.repeat, s.workload)
            self.remaining[key] = self.remaining.get(key, 0) + 1

    def done(self, spec: RunSpec, record: RunRecord | None) -> None:
        key = (spec.repeat, spec.workload)
        value = "FAILED" if record is None else units.ns(record.ns_per_op)
        self.lines.setdefault(key, []).append(f"{spec.allocator} {value}")
        self.remaining[key] -= 1
        if self.remaining[key] == 0:
            stage = f"repeat {spec.repeat + 1}/{self.repeats}" if spec.repeat >= 0 else "overhead"
            print(
                f"[{stage}] {spec.workload}: " + ", ".join(self.lines.pop(key)) + " ns/op", file=self.stream
            )
            self.stream.flush()

    def stop(self) -> None:
        pass


class RichProgress:
    """A bar with the run in flight and an ETA."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = __import__("rich.progress", fromlist=["Progress"]).Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self.task: Any = None
        self.specs: list[RunSpec] = []
        self.repeats = 0
        self.index = 0

    def start(self, specs: Sequence[RunSpec]) -> None:
        self.specs = list(specs)
        self.repeats = max((s.repeat for s in specs), default=0) + 1
        self.progress.start()
        first = _label(self.specs[0], self.repeats) if self.specs else ""
        self.task = self.progress.add_task(first, total=len(self.specs))
        self.index = 0

    def done(self, spec: RunSpec, record: RunRecord | None) -> None:
        self.index += 1
        following = _label(self.specs[self.index], self.repeats) if self.index < len(self.specs) else "done"
        self.progress.update(self.task, advance=1, description=following)

    def stop(self) -> None:
        self.progress.stop()


def make_progress(quiet: bool, stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    if quiet:
        return QuietProgress()
    if use_rich(stream):
        return RichProgress(stream)
    return PlainProgress(stream)


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def detail_rows(report: BenchReport) -> list[list[str]]:
    """Per workload, allocators fastest first; the workload's bytes per op under its name."""
    rows = []
    for w in report.workloads:
        group = sorted((r for r in report.results if r.workload == w), key=lambda r: r.ns_per_op)
        for i, r in enumerate(group):
            first_column = w if i == 0 else (f"({units.size(r.bytes_per_op)}/op)" if i == 1 else "")
            rows.append(
                [
                    first_column,
                    r.allocator,
                    units.ns(r.ns_per_op),
                    f"{units.ns(r.ns_per_op_min)}-{units.ns(r.ns_per_op_max)}",
                    f"{r.spread:.0%}",
                    _speedup_text(r),
                    units.size(r.peak_rss_bytes),
                    units.size(r.rss_growth_bytes),
                    units.count(r.minor_faults),
                ]
            )
    return rows


SLOWER_MARK = "*"  # plain text: slower than the baseline beyond noise


def _speedup_text(r: Result | None) -> str:
    if r is None or r.speedup is None:
        return "-"
    return units.speedup(r.speedup) + (SLOWER_MARK if r.significantly_slower else "")


TABLE_WIDTH = 120

SPEEDUP_COLUMN = 5  # index of "vs <baseline>" in the detail rows


def detail_header(report: BenchReport) -> list[str]:
    return [
        "workload",
        "allocator",
        "ns/op",
        "min-max",
        "spread",
        f"vs {report.baseline_allocator}",
        "peak RSS",
        "RSS growth",
        "faults",
    ]


def header_lines(report: BenchReport) -> list[str]:
    """What stands above the tables: an interrupted run, the machine's load, warnings."""
    lines = []
    if report.partial:
        lines.append("PARTIAL: the run was interrupted; these are the runs completed before that.")
    lines.append(f"Machine: {machine.one_line(report.machine)}; {machine.load_line(report.load)}")
    lines += [f"warning: {w}" for w in report.warnings]
    return lines


def footer_lines(report: BenchReport) -> list[str]:
    lines = [overhead_line(report.overhead)]
    if report.mismatches:
        lines.append("CHECKSUM MISMATCH (these allocators computed different results):")
        lines += [f"  {m.describe()}" for m in report.mismatches]
    else:
        lines.append("Checksums agree on every workload.")
    if report.targets:
        lines.append("Targets:")
        for o in report.targets:
            if o.status in (MET, MISSED):
                lines.append(f"  {'met   ' if o.status == MET else 'MISSED'} {o.label}: {o.measured}")
        skipped = sum(o.status not in (MET, MISSED) for o in report.targets)
        if skipped:
            lines.append(f"  n/a    {skipped} targets need allocators or workloads that did not run")
        lines += [f"  (pytest) {t}" for t in PYTHON_TARGETS]
    if report.calibration is not None:
        lines += text_lines(report.calibration.to_json())
    if report.changes is not None:
        lines.append(f"Against the baseline run (new vs old): {summary_line(report.changes)}.")
        rows = [[c.workload, c.allocator, c.describe()] for c in report.changes]
        if rows:
            table = plain_table(["workload", "allocator", "new vs old"], rows, text_last=True)
            lines += ["  " + line for line in table.splitlines()]
    return lines


def plain_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 2, text_last: bool = False
) -> str:
    """Aligned columns: the first ``left`` (and the last, with ``text_last``) to the left, numbers right."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    last = len(widths) - 1

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < left or (text_last and i == last) else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *[fmt(r) for r in rows]])


def speedup_matrix(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    cells = report.cell()
    rows = [[w, *[_speedup_text(cells.get((w, a))) for a in report.allocators]] for w in report.workloads]
    return ["workload", *report.allocators], rows


def speedup_title(report: BenchReport, slower: str) -> str:
    return (
        f"Speedup vs {report.baseline_allocator} (median; > 1 is faster; {slower}: slower beyond noise, "
        "Mann-Whitney U at 95%)"
    )


def print_report(report: BenchReport, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    if use_rich(stream):
        _print_rich(report, stream)
        return
    print("\n".join(header_lines(report)), file=stream)
    print("", file=stream)
    print(plain_table(detail_header(report), detail_rows(report)), file=stream)
    if report.baseline_allocator in report.allocators:
        header, rows = speedup_matrix(report)
        print("\n" + speedup_title(report, SLOWER_MARK), file=stream)
        print(plain_table(header, rows, left=1), file=stream)
    print("", file=stream)
    print("\n".join(footer_lines(report)), file=stream)


def _print_rich(report: BenchReport, stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Below ~120 columns rich would fold numbers inside their cells; wider
    # lines that the terminal wraps are easier to read than broken numbers.
    console = Console(file=stream)
    console.width = max(console.width, TABLE_WIDTH)
    for line in header_lines(report):
        style = "bold red" if line.startswith(("PARTIAL", "warning")) else ""
        console.print(Text(line, style=style), highlight=False)
    table = Table(title="allocffi bench: median ns/op over repeats (lower is better)")
    for i, name in enumerate(detail_header(report)):
        # fold, never truncate: a number cut to "12…" would be a wrong number
        table.add_column(name, justify="left" if i < 2 else "right", overflow="fold")
    rows = detail_rows(report)
    starts = {i for i, row in enumerate(rows) if row[0] and not row[0].startswith("(")}
    for i, row in enumerate(rows):
        last_of_group = i + 1 in starts or i + 1 == len(rows)
        row = [*row[:SPEEDUP_COLUMN], _red_if_slower(row[SPEEDUP_COLUMN]), *row[SPEEDUP_COLUMN + 1 :]]
        table.add_row(*row, end_section=last_of_group)
    console.print(table)
    if report.baseline_allocator in report.allocators:
        header, matrix = speedup_matrix(report)
        speed_table = Table(title=speedup_title(report, "red"))
        for i, name in enumerate(header):
            speed_table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
        for row in matrix:
            speed_table.add_row(row[0], *[_red_if_slower(c) for c in row[1:]])
        console.print(speed_table)
    for line in footer_lines(report):
        style = "bold red" if ("MISMATCH" in line or "MISSED" in line or "slower [" in line) else ""
        console.print(Text(line, style=style), highlight=False)


def _red_if_slower(text: str) -> str:
    """Rich markup: a cell marked slower beyond noise in red, without the plain-text mark."""
    return f"[red]{text[: -len(SLOWER_MARK)]}[/]" if text.endswith(SLOWER_MARK) else text
