"""``allocffi calibrate``: what allocffi's wrapper adds to each system library, and whether it
changes that library's standing against glibc.

For each library (libc, mimalloc, jemalloc, tcmalloc) and fixed-N workload, two loops do the
same work (alloc, tag both ends, read back, free; csrc/engine/direct.h):

- ``direct``: the library's entry points (the ones allocffi binds, csrc/syslib.c) called
  through plain function pointers, no vtable, no counters (``af_calibrate_direct``);
- ``engine``: the same workload through allocffi's vtable, as ``allocffi bench`` runs it.

Each loop runs in fresh processes (the harness's worker), ``repeat`` times, interleaved: every
repeat runs every (library, loop) of a workload once, in an order rotated from one repeat to the
next. Figures are medians over repeats. Per row: the wrapper's ns per op (engine - direct), the
library's speedup against glibc both ways (glibc's ns / the library's ns, each loop against
glibc's same loop), and the change of that speedup through allocffi; a change beyond
``TOLERANCE`` is flagged. The checksums of both loops must agree (they do the same work).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from allocffi.harness.bench import catalog
from allocffi.harness.core import arguments, children, interleave, machine, outputs, record, units
from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_OK, BenchFailure, UsageError

COMMAND = "calibrate"  # the name of its results record and of its details there
LIBRARIES: tuple[str, ...] = catalog.SYSTEM_ALLOCATORS  # libc first: the reference
WORKLOADS: tuple[str, ...] = ("fixed-48", "fixed-256", "fixed-4096")
# Largest tolerated change of a library's speedup against glibc through the wrapper.
TOLERANCE = 0.15
DEFAULT_REPEAT = 5
# Ops per run: 5-40 ms of work for the fastest library, so process start-up dominates.
DEFAULT_OPS: Mapping[str, int] = {"fixed-48": 2_000_000, "fixed-256": 1_000_000, "fixed-4096": 500_000}
# The calibration `allocffi bench` runs first: the two workloads of the target, fewer repeats.
SHORT_WORKLOADS: tuple[str, ...] = ("fixed-48", "fixed-256")
SHORT_REPEAT = 3
SHORT_OPS: Mapping[str, int] = {"fixed-48": 1_000_000, "fixed-256": 500_000}
LOOPS: tuple[str, ...] = ("direct", "engine")


@dataclass
class CalibrateOptions:
    """The ``allocffi calibrate`` command line, parsed."""

    libraries: list[str] | None = None  # None: every available one
    workloads: list[str] | None = None  # None: WORKLOADS
    repeat: int = DEFAULT_REPEAT
    ops: int | None = None  # None: DEFAULT_OPS
    seed: int = 0
    json_path: str | None = None  # "-": stdout
    quiet: bool = False
    argv: list[str] = field(default_factory=lambda: ["allocffi", "calibrate"])


@dataclass
class Row:
    """One (library, workload): both loops, medians over repeats."""

    library: str
    workload: str
    direct_samples: list[float]
    engine_samples: list[float]
    checksums_agree: bool
    direct_speedup_vs_libc: float | None = None  # libc direct ns / this direct ns
    engine_speedup_vs_libc: float | None = None  # libc engine ns / this engine ns

    @property
    def direct_ns(self) -> float:
        return statistics.median(self.direct_samples)

    @property
    def engine_ns(self) -> float:
        return statistics.median(self.engine_samples)

    @property
    def spread(self) -> float:
        """The larger relative spread, (max - min) / median, of the two loops' samples: a change of
        the ratio smaller than this is within this run's noise."""
        return max(_spread(self.direct_samples), _spread(self.engine_samples))

    @property
    def wrapper_ns(self) -> float:
        return self.engine_ns - self.direct_ns

    @property
    def speedup_change(self) -> float | None:
        """engine speedup / direct speedup - 1: how far the wrapper moves the verdict."""
        if self.direct_speedup_vs_libc is None or self.engine_speedup_vs_libc is None:
            return None
        return self.engine_speedup_vs_libc / self.direct_speedup_vs_libc - 1.0

    @property
    def flagged(self) -> bool:
        change = self.speedup_change
        return change is not None and abs(change) > TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "library": self.library,
            "workload": self.workload,
            "direct_ns_per_op": self.direct_ns,
            "engine_ns_per_op": self.engine_ns,
            "wrapper_ns_per_op": self.wrapper_ns,
            "direct_speedup_vs_libc": self.direct_speedup_vs_libc,
            "engine_speedup_vs_libc": self.engine_speedup_vs_libc,
            "speedup_change": self.speedup_change,
            "flagged": self.flagged,
            "spread": self.spread,
            "checksums_agree": self.checksums_agree,
            "direct_samples": self.direct_samples,
            "engine_samples": self.engine_samples,
        }


def _spread(samples: Sequence[float]) -> float:
    middle = statistics.median(samples)
    return (max(samples) - min(samples)) / middle if middle > 0 else 0.0


@dataclass
class Calibration:
    """Every row of one calibration, with how it was run."""

    rows: list[Row]
    config: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)  # unavailable library -> reason

    def to_json(self) -> dict[str, Any]:
        """The form the tables are drawn from."""
        return {
            "config": self.config,
            "tolerance": TOLERANCE,
            "skipped": self.skipped,
            "rows": [r.to_dict() for r in self.rows],
            "flagged": [f"{r.library} {r.workload}" for r in self.rows if r.flagged],
            "checksums_agree": all(r.checksums_agree for r in self.rows),
        }

    def to_record(self, argv: Sequence[str], date: str, machine_record: dict[str, Any]) -> record.Record:
        """The results record: per (workload, library) both loops' samples; the derived figures
        (wrapper ns, speedups, their change) are recomputed from them on load."""
        cells = [
            record.Cell(
                r.workload,
                r.library,
                {
                    "direct_ns_per_op": record.Metric(list(r.direct_samples), "ns/op"),
                    "engine_ns_per_op": record.Metric(list(r.engine_samples), "ns/op"),
                },
                details={COMMAND: {"checksums_agree": r.checksums_agree}},
            )
            for r in self.rows
        ]
        result = record.Record(
            COMMAND,
            list(argv),
            self.config,
            date,
            machine_record,
            cells,
            baseline_allocator=catalog.BASELINE,
            details={COMMAND: {"tolerance": TOLERANCE, "skipped": self.skipped}},
        )
        record.judge(result)
        return result


def from_record(saved: record.Record) -> Calibration:
    """The calibration a (validated) results record holds; UsageError when it holds none."""
    rows = []
    for index, cell in enumerate(saved.cells):
        path = f"results[{index}]"
        loops = [cell.metrics.get(name) for name in ("direct_ns_per_op", "engine_ns_per_op")]
        if loops[0] is None or loops[1] is None:
            raise UsageError(f"{path}.metrics: a calibration cell has direct_ns_per_op and engine_ns_per_op")
        own = cell.details.get(COMMAND, {})
        agree = record.dataclass_from(
            _CellDetails, own if isinstance(own, dict) else {}, f"{path}.details.{COMMAND}"
        )
        rows.append(
            Row(cell.allocator, cell.subject, loops[0].samples, loops[1].samples, agree.checksums_agree)
        )
    _fill_speedups(rows, list(dict.fromkeys(r.workload for r in rows)))
    skipped = (
        saved.details.get(COMMAND, {}).get("skipped", {})
        if isinstance(saved.details.get(COMMAND), dict)
        else {}
    )
    return Calibration(
        rows,
        dict(saved.config),
        {str(k): str(v) for k, v in skipped.items()} if isinstance(skipped, dict) else {},
    )


@dataclass
class _CellDetails:
    checksums_agree: bool = True


# --------------------------------------------------------------------------
# Planning and running
# --------------------------------------------------------------------------


def plan(
    libraries: Sequence[str], workloads: Sequence[str], ops: Mapping[str, int], repeat: int, seed: int
) -> list[children.RunSpec]:
    """Every run, repeat by repeat; within a workload the (library, loop) pairs rotate."""
    specs: list[children.RunSpec] = []
    members = [(lib, loop) for lib in libraries for loop in LOOPS]
    for r in range(repeat):
        for workload in workloads:
            for lib, loop in interleave.rotated(members, r):
                specs.append(children.RunSpec(lib, workload, r, ops[workload], seed, direct=loop == "direct"))
    return specs


def summarize(
    records: Sequence[children.RunRecord], config: dict[str, Any], skipped: dict[str, str]
) -> Calibration:
    """Rows from the records of a plan(), with speedups against libc filled in."""
    samples: dict[tuple[str, str, bool], list[float]] = {}
    checksums: dict[str, set[int]] = {}
    for done in records:
        spec = done.spec
        samples.setdefault((spec.allocator, spec.workload, spec.direct), []).append(done.ns_per_op)
        checksums.setdefault(spec.workload, set()).add(done.checksum)
    rows = []
    for workload in config["workloads"]:
        for lib in config["libraries"]:
            direct = samples.get((lib, workload, True))
            engine = samples.get((lib, workload, False))
            if direct and engine:
                rows.append(Row(lib, workload, direct, engine, len(checksums.get(workload, ())) == 1))
    _fill_speedups(rows, config["workloads"])
    return Calibration(rows, config, skipped)


def _fill_speedups(rows: Sequence[Row], workloads: Sequence[str]) -> None:
    """Each row's speedups against libc's row of the same workload, loop by loop."""
    for workload in workloads:
        base = next((r for r in rows if r.workload == workload and r.library == catalog.BASELINE), None)
        for row in (r for r in rows if r.workload == workload and base is not None):
            assert base is not None
            row.direct_speedup_vs_libc = base.direct_ns / row.direct_ns if row.direct_ns > 0 else None
            row.engine_speedup_vs_libc = base.engine_ns / row.engine_ns if row.engine_ns > 0 else None


def calibrate(
    libraries: Sequence[str],
    workloads: Sequence[str],
    ops: Mapping[str, int],
    repeat: int,
    seed: int,
    on_done: Callable[[children.RunSpec, children.RunRecord], None] | None = None,
    skipped: Mapping[str, str] | None = None,
) -> Calibration:
    """Run the plan in fresh processes; BenchFailure when a worker fails."""
    config = {
        "libraries": list(libraries),
        "workloads": list(workloads),
        "ops": {w: ops[w] for w in workloads},
        "repeat": repeat,
        "seed": seed,
        "tolerance": TOLERANCE,
    }
    records = list(children.execute(plan(libraries, workloads, ops, repeat, seed), on_done))
    return summarize(records, config, dict(skipped or {}))


# --------------------------------------------------------------------------
# Formatting (from the JSON form, so a saved report can be shown again)
# --------------------------------------------------------------------------

HEADER: tuple[str, ...] = (
    "library",
    "workload",
    "direct ns",
    "allocffi ns",
    "wrapper ns",
    "vs libc direct",
    "vs libc allocffi",
    "change",
    "spread",
)


def table_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """One row of text cells per calibration row; flagged ones say so."""
    rows = []
    for r in data.get("rows", []):
        change = r.get("speedup_change")
        flag = " FLAGGED" if r.get("flagged") else ""
        rows.append(
            [
                r["library"],
                r["workload"],
                units.ns(r["direct_ns_per_op"]),
                units.ns(r["engine_ns_per_op"]),
                f"{r['wrapper_ns_per_op']:+.1f}",
                units.speedup(r.get("direct_speedup_vs_libc")),
                units.speedup(r.get("engine_speedup_vs_libc")),
                ("-" if change is None else f"{change * 100:+.0f}%") + flag,
                "-" if r.get("spread") is None else f"{r['spread']:.0%}",
            ]
        )
    return rows


def summary_line(data: Mapping[str, Any]) -> str:
    tolerance = float(data.get("tolerance", TOLERANCE))
    flagged = data.get("flagged", [])
    verdict = (
        f"FLAGGED (speedup vs libc moved by more than {tolerance:.0%} through allocffi): {', '.join(flagged)}"
        if flagged
        else f"every library's speedup vs libc through allocffi is within {tolerance:.0%} of its direct one"
    )
    config = data.get("config", {})
    noisy = [r for r in data.get("rows", []) if r.get("flagged") and (r.get("spread") or 0) > tolerance]
    caveat = f" {len(noisy)} of the flagged rows spread more than that between runs: noise." if noisy else ""
    return f"Calibration (repeat {config.get('repeat')}, medians, fresh process per run): {verdict}.{caveat}"


def text_lines(data: Mapping[str, Any]) -> list[str]:
    """An aligned text table for the terminal."""
    rows = [list(HEADER), *table_rows(data)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in rows
    ]
    return [summary_line(data), *lines]


def markdown_lines(data: Mapping[str, Any]) -> list[str]:
    """A Markdown section: the table, then how to read it."""
    rows = table_rows(data)
    out = ["## Calibration: the wrapper's cost", "", summary_line(data), ""]
    out.append("| " + " | ".join(HEADER) + " |")
    out.append("| --- | --- | " + " | ".join("---:" for _ in HEADER[2:]) + " |")
    out += ["| " + " | ".join(row) + " |" for row in rows]
    out += [
        "",
        "direct: the library's entry points through a plain function pointer; allocffi: the same "
        "work through allocffi's vtable (what every other table measures). vs libc: glibc's ns / the "
        "library's ns, each loop against glibc's same loop; change: how far allocffi moves that ratio; "
        "spread: (max - min) / median of the runs of the noisier loop, so a change inside it is noise.",
        "",
    ]
    return out


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------


def check_options(opts: CalibrateOptions) -> None:
    arguments.REPEAT.check("--repeat", opts.repeat)
    if opts.ops is not None:
        arguments.OPS.check("--ops", opts.ops)
    arguments.SEED.check("--seed", opts.seed)
    for name in opts.libraries or []:
        if name not in LIBRARIES:
            raise UsageError(f"unknown library {name!r}; choose from {', '.join(LIBRARIES)}")
    for name in opts.workloads or []:
        if name not in WORKLOADS:
            raise UsageError(f"calibration runs {', '.join(WORKLOADS)}, not {name!r}")
    outputs.check_outputs({"--json": opts.json_path})


def select_libraries(
    requested: Sequence[str] | None, caps: children.Capabilities
) -> tuple[list[str], dict[str, str]]:
    """The libraries to run, libc always first (the reference), and the skipped ones with why."""
    wanted = list(dict.fromkeys([catalog.BASELINE, *(requested or LIBRARIES)]))
    chosen = [name for name in wanted if caps.available.get(name, False)]
    skipped = {name: caps.reasons.get(name, "") for name in wanted if name not in chosen}
    if requested is not None:
        for name in requested:
            if name in skipped:
                raise UsageError(f"library {name!r} is not available here: {skipped[name]}")
    if catalog.BASELINE not in chosen:
        raise UsageError(f"{catalog.BASELINE} cannot be loaded here: {skipped.get(catalog.BASELINE, '')}")
    return chosen, skipped


def run_command(opts: CalibrateOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``allocffi calibrate``; raises UsageError for the caller to print (exit 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    check_options(opts)
    caps = children.probe()
    libraries, skipped = select_libraries(opts.libraries, caps)
    workloads = list(dict.fromkeys(opts.workloads or WORKLOADS))
    ops = {w: opts.ops if opts.ops is not None else DEFAULT_OPS[w] for w in workloads}
    for name, reason in skipped.items():
        if not opts.quiet:
            print(f"note: skipping {name}: {reason}", file=err)
    try:
        result = calibrate(libraries, workloads, ops, opts.repeat, opts.seed, skipped=skipped)
    except BenchFailure as exc:
        print(f"allocffi calibrate: FAILED: {exc}", file=err)
        return EXIT_FAILURE
    data = result.to_json()
    table_stream = err if opts.json_path == outputs.STDOUT else out
    if not opts.quiet:
        print("\n".join(text_lines(data)), file=table_stream)
    if opts.json_path is not None:
        date = datetime.now().astimezone().isoformat(timespec="seconds")
        record.write(result.to_record(opts.argv, date, machine.describe()), opts.json_path)
    if not data["checksums_agree"]:
        print("allocffi calibrate: CHECKSUM MISMATCH between the direct and allocffi loops", file=err)
        return EXIT_FAILURE
    return EXIT_OK


__all__ = [
    "CalibrateOptions",
    "Calibration",
    "calibrate",
    "from_record",
    "markdown_lines",
    "run_command",
    "text_lines",
]
