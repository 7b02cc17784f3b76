"""``allocffi bench`` end to end: validate, plan, run, check, report.

Order matters: every user error (names, paths, a missing optional package, an
unreadable baseline, an allocator that cannot load) is found before the first
measured run, so a long benchmark never dies at the end. The exit status
says what happened (see errors.py): 0 fine, 1 a worker failed or checksums
disagree, 2 usage, 3 a regression beyond noise with --fail-on-regression.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from allocffi.bench import catalog, compare, console, machine, report, runner, stats, targets
from allocffi.bench.errors import EXIT_FAILURE, EXIT_OK, EXIT_REGRESSION, BenchFailure, UsageError


@dataclass
class BenchOptions:
    """The ``allocffi bench`` command line, parsed."""

    allocators: list[str] | None = None  # None: every available one (plus mmap)
    workloads: list[str] | None = None  # None: every workload of the engine but the scale suite
    scale: bool = (
        False  # the scale suite (live-*) instead of the default workloads; --plot draws curves over N
    )
    repeat: int = 5
    ops: int | None = None  # fixed ops for every workload
    time_budget_s: float | None = None  # else: ops calibrated to this per run
    seed: int = 0
    json_path: str | None = None
    csv_path: str | None = None
    markdown_path: str | None = None
    plot_path: str | None = None
    baseline_path: str | None = None
    fail_on_regression: bool = False
    noise_threshold: float = compare.DEFAULT_NOISE_THRESHOLD
    overhead: bool = True  # run the null allocator once per workload
    quiet: bool = False
    command: str = "allocffi bench"


@dataclass
class Selection:
    """What will run, resolved against the native library."""

    allocators: list[str]
    workloads: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # unavailable allocator -> reason


def check_options(opts: BenchOptions) -> None:
    if opts.repeat < 1:
        raise UsageError(f"--repeat must be at least 1 (got {opts.repeat})")
    if opts.ops is not None and opts.ops < 1:
        raise UsageError(f"--ops must be at least 1 (got {opts.ops})")
    if opts.time_budget_s is not None and not opts.time_budget_s > 0:
        raise UsageError(f"--time-budget must be a positive number of seconds (got {opts.time_budget_s})")
    if opts.ops is not None and opts.time_budget_s is not None:
        raise UsageError("--ops and --time-budget exclude each other: give one")
    if opts.seed < 0 or opts.seed >= 2**64:
        raise UsageError(f"--seed must be in [0, 2**64) (got {opts.seed})")
    if opts.scale and opts.workloads:
        raise UsageError("--scale and --workloads exclude each other: --scale runs every live-* workload")
    if opts.noise_threshold < 0:
        raise UsageError(f"--noise-threshold must not be negative (got {opts.noise_threshold})")
    for name in opts.allocators or []:
        if name == catalog.NULL:
            raise UsageError(
                "'null' is not a competitor: it runs once per workload to measure the engine overhead"
            )
        if name not in catalog.SELECTABLE:
            raise UsageError(f"unknown allocator {name!r}; choose from {', '.join(catalog.SELECTABLE)}")


def select(opts: BenchOptions, caps: runner.Capabilities) -> Selection:
    """Resolve names against the library; UsageError for anything not runnable."""
    for name in opts.workloads or []:
        if name not in caps.workloads:
            raise UsageError(f"unknown workload {name!r}; choose from {', '.join(caps.workloads)}")
    if opts.workloads:
        workloads = list(dict.fromkeys(opts.workloads))
    else:
        workloads = [w for w in caps.workloads if catalog.is_scale_workload(w) == opts.scale]
    if opts.allocators:
        chosen = list(dict.fromkeys(opts.allocators))
        for name in chosen:
            if not caps.available.get(name, False):
                reason = caps.reasons.get(name) or "not offered by this build"
                raise UsageError(f"allocator {name!r} is not available here: {reason}")
        idle = [w for w in workloads if not any(catalog.runs_on(a, w) for a in chosen)]
        if idle:
            raise UsageError(
                f"no selected allocator runs on {', '.join(idle)} "
                f"(mmap runs only on {', '.join(sorted(catalog.MMAP_WORKLOADS))})"
            )
        return Selection(chosen, workloads)
    chosen = [a for a in catalog.SELECTABLE if caps.available.get(a, False)]
    skipped = {a: caps.reasons.get(a, "") for a in catalog.SELECTABLE if not caps.available.get(a, False)}
    if not chosen:
        raise UsageError("no allocator can be loaded in this process")
    return Selection(chosen, workloads, skipped)


def choose_ops(opts: BenchOptions, sel: Selection) -> dict[str, int]:
    """Ops per workload: --ops, else calibrated to --time-budget, else the default table.

    Calibration runs every allocator of the workload once for the budget and
    keeps the smallest number of ops completed: every allocator then runs that
    same operation sequence, and the slowest one takes about the budget (so a
    run of mmap, 1000x slower than glibc on large blocks, stays bounded).
    """
    if opts.ops is not None:
        return dict.fromkeys(sel.workloads, opts.ops)
    budget = opts.time_budget_s
    todo = sel.workloads if budget is not None else [w for w in sel.workloads if w not in catalog.DEFAULT_OPS]
    ops = {w: catalog.DEFAULT_OPS[w] for w in sel.workloads if w not in todo}
    budget_ns = int((budget if budget is not None else catalog.DEFAULT_CALIBRATION_BUDGET_S) * 1e9)
    specs = [
        runner.RunSpec(a, w, -1, 0, opts.seed, budget_ns)
        for w in todo
        for a in sel.allocators
        if catalog.runs_on(a, w)
    ]
    for spec, record in zip(specs, runner.execute(specs), strict=True):
        ops[spec.workload] = min(ops.get(spec.workload, record.ops), max(1, record.ops))
    return {w: ops[w] for w in sel.workloads}


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _say(opts: BenchOptions, text: str, stream: TextIO) -> None:
    if not opts.quiet:
        print(text, file=stream)


def run_bench(opts: BenchOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The whole command; raises UsageError for the caller to print (exit 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    started = time.monotonic()
    check_options(opts)
    paths = {
        "JSON report": opts.json_path,
        "CSV report": opts.csv_path,
        "Markdown report": opts.markdown_path,
        "plot": opts.plot_path,
    }
    for what, path in paths.items():
        if path is not None:
            report.ensure_writable(path, what)
    if opts.plot_path is not None:
        from allocffi.bench.plot import require_matplotlib

        require_matplotlib()
    baseline = compare.load_baseline(opts.baseline_path) if opts.baseline_path else None

    caps = runner.probe()
    sel = select(opts, caps)
    for name, reason in sel.skipped.items():
        _say(opts, f"note: skipping {name}: {reason}", err)
    if opts.overhead and not caps.available.get(catalog.NULL, False):
        _say(opts, f"note: no engine-overhead runs: {caps.reasons.get(catalog.NULL)}", err)
        opts.overhead = False

    try:
        if opts.ops is None and (
            opts.time_budget_s is not None or set(sel.workloads) - set(catalog.DEFAULT_OPS)
        ):
            _say(opts, "calibrating ops per workload...", err)
        ops = choose_ops(opts, sel)
    except BenchFailure as exc:
        print(f"allocffi bench: calibration failed: {exc}", file=err)
        return EXIT_FAILURE
    specs = runner.plan(sel.allocators, sel.workloads, ops, opts.repeat, opts.seed)
    if opts.overhead:
        specs += runner.overhead_plan(sel.workloads, ops, opts.seed)

    records, failures = _run_all(specs, console.make_progress(opts.quiet, err))
    measured = [r for r in records if r.spec.allocator != catalog.NULL]
    overhead = {r.spec.workload: r.ns_per_op for r in records if r.spec.allocator == catalog.NULL}
    results = stats.aggregate(measured)
    mismatches = stats.checksum_mismatches(measured)
    changes = compare.compare(baseline, results, opts.noise_threshold) if baseline is not None else None

    bench_report = report.BenchReport(
        date=_now(),
        command=opts.command,
        machine=machine.describe(),
        config={
            "allocators": sel.allocators,
            "workloads": sel.workloads,
            "repeat": opts.repeat,
            "seed": opts.seed,
            "ops": ops,
            "time_budget_s": opts.time_budget_s,
            "skipped": sel.skipped,
        },
        results=results,
        overhead=overhead,
        mismatches=mismatches,
        targets=targets.check_all(results, overhead),
        changes=changes,
        wall_time_s=time.monotonic() - started,
    )
    if not opts.quiet and results:
        console.print_report(bench_report, out)
    _write_reports(bench_report, opts)

    for failure in failures:
        print(f"allocffi bench: FAILED: {failure}", file=err)
    for mismatch in mismatches:
        print(f"allocffi bench: CHECKSUM MISMATCH on {mismatch.describe()}", file=err)
    if failures or mismatches:
        return EXIT_FAILURE
    if changes is not None and opts.fail_on_regression:
        slower = compare.regressions(changes)
        if slower:
            for c in slower:
                print(f"allocffi bench: regression: {c.workload} {c.allocator}: {c.describe()}", file=err)
            return EXIT_REGRESSION
    return EXIT_OK


def _run_all(
    specs: Sequence[runner.RunSpec], progress: console.Progress
) -> tuple[list[runner.RunRecord], list[str]]:
    """Run every spec; a failed (allocator, workload) is not retried in later repeats."""
    records: list[runner.RunRecord] = []
    failures: list[str] = []
    broken: set[tuple[str, str]] = set()
    env = runner.worker_environment()
    progress.start(specs)
    try:
        for spec in specs:
            key = (spec.allocator, spec.workload)
            if key in broken:
                progress.done(spec, None)
                continue
            try:
                record = runner.run_child(spec, env)
            except BenchFailure as exc:
                broken.add(key)
                failures.append(str(exc))
                progress.done(spec, None)
                continue
            records.append(record)
            progress.done(spec, record)
    finally:
        progress.stop()
    return records, failures


def _write_reports(bench_report: report.BenchReport, opts: BenchOptions) -> None:
    if opts.json_path:
        report.write_json(bench_report, opts.json_path)
    if opts.csv_path:
        report.write_csv(bench_report, opts.csv_path)
    if opts.markdown_path:
        report.write_markdown(bench_report, opts.markdown_path)
    if opts.plot_path and opts.scale:
        from allocffi.bench.scaling import write_scale_plot

        write_scale_plot(bench_report, opts.plot_path)
    elif opts.plot_path:
        from allocffi.bench.plot import write_plot

        write_plot(bench_report, opts.plot_path)


def list_capabilities(out: TextIO | None = None) -> int:
    """``allocffi list``: allocators with availability, workloads with descriptions."""
    out = out or sys.stdout
    caps = runner.probe()
    print("Allocators:", file=out)
    width = max(len(n) for n in (*catalog.SELECTABLE, catalog.NULL))
    notes: Mapping[str, str] = {
        catalog.MMAP: f"baseline, runs only on {', '.join(sorted(catalog.MMAP_WORKLOADS))}",
        catalog.NULL: "engine overhead, runs once per workload",
        catalog.BASELINE: "the reference for speedups",
    }
    for name in (*catalog.SELECTABLE, catalog.NULL):
        ok = caps.available.get(name, False)
        state = "available" if ok else f"UNAVAILABLE: {caps.reasons.get(name, '')}"
        note = f" ({notes[name]})" if name in notes else ""
        print(f"  {name.ljust(width)}  {state}{note}", file=out)
    print("Workloads:", file=out)
    width = max((len(n) for n in caps.workloads), default=0)
    for name, description in caps.workloads.items():
        print(f"  {name.ljust(width)}  {description}", file=out)
    return EXIT_OK


__all__ = ["BenchOptions", "list_capabilities", "run_bench"]
