"""``allocffi bench`` end to end: validate, plan, run, check, report. Order matters: every user error
(names, paths, a plot format, a missing optional package, an unreadable
baseline or one with nothing in common with this run, an allocator that
cannot load) is found before the first measured run, so a long benchmark
never dies at the end. Ctrl-C keeps the runs already completed: the reports
are written from them, marked partial, and KeyboardInterrupt goes on to the
caller (exit 130). The exit status says what happened (see errors.py): 0
fine, 1 a worker failed or checksums disagree, 2 usage, 3 a regression
beyond noise with --fail-on-regression.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from allocffi.harness import calibrate, compare
from allocffi.harness.bench import catalog, comparison, console, targets, workload_file
from allocffi.harness.bench import results as report
from allocffi.harness.bench.heatmap import write_plot
from allocffi.harness.bench.scaling import write_scale_plot
from allocffi.harness.core import arguments, children, machine, outputs, stats
from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_OK, EXIT_REGRESSION, BenchFailure, UsageError


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
    noise_threshold: float = comparison.DEFAULT_NOISE_THRESHOLD
    overhead: bool = True  # run the null allocator once per workload
    calibrate: bool = True  # run the short calibration (calibrate.py) first
    quiet: bool = False
    command: str = "allocffi bench"
    workload_file: str | None = None  # a user's workloads (TOML, or a saved JSON report)
    targets: bool = False  # check the project's own performance targets
    baseline_allocator: str | None = None  # None: libc, or the first selected when libc is not


@dataclass
class Selection:
    """What will run, resolved against the native library."""

    allocators: list[str]
    workloads: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # unavailable allocator -> reason
    custom: dict[str, workload_file.WorkloadSpec] = field(default_factory=dict)  # the user's workloads
    refused: dict[tuple[str, str], str] = field(default_factory=dict)  # (allocator, workload) -> why not

    def runs(self, allocator: str, workload: str) -> bool:
        """Whether the pair is measured (mmap's workloads, shared-threads refusals)."""
        return catalog.runs_on(allocator, workload) and (allocator, workload) not in self.refused

    def custom_json(self) -> dict[str, str]:
        return {name: spec.to_json() for name, spec in self.custom.items()}


def check_options(opts: BenchOptions) -> None:
    arguments.REPEAT.check("--repeat", opts.repeat)
    if opts.ops is not None:
        arguments.OPS.check("--ops", opts.ops)
    if opts.time_budget_s is not None:
        arguments.SECONDS.check("--time-budget", opts.time_budget_s)
    if opts.ops is not None and opts.time_budget_s is not None:
        raise UsageError("--ops and --time-budget exclude each other: give one")
    arguments.SEED.check("--seed", opts.seed)
    if opts.scale and opts.workloads:
        raise UsageError("--scale and --workloads exclude each other: --scale runs every live-* workload")
    arguments.NOISE_THRESHOLD.check("--noise-threshold", opts.noise_threshold)
    for name in opts.allocators or []:
        if name == catalog.NULL:
            raise UsageError(
                "'null' is not a competitor: it runs once per workload to measure the engine overhead"
            )
        if not catalog.base_selectable(name):
            raise UsageError(
                f"unknown allocator {name!r}; choose from {', '.join(catalog.SELECTABLE)} "
                f"(NAME{catalog.RESET_SUFFIX} runs an allocator that can free and reset in arena mode)"
            )
    base = opts.baseline_allocator
    if base is not None and not catalog.base_selectable(base):
        raise UsageError(
            f"unknown --baseline-allocator {base!r}; choose from {', '.join(catalog.SELECTABLE)}"
        )
    if base is not None and opts.allocators and base not in opts.allocators:
        raise UsageError(
            f"--baseline-allocator {base} is not among --allocators {','.join(opts.allocators)}: add it"
        )
    outputs.check_outputs(
        {"--json": opts.json_path, "--csv": opts.csv_path, "--markdown": opts.markdown_path}, opts.plot_path
    )


def select(
    opts: BenchOptions, caps: children.Capabilities, custom: Sequence[workload_file.WorkloadSpec] = ()
) -> Selection:
    """Resolve names against the library; UsageError for anything not runnable.

    With a workload file and no --workloads, only the file's workloads run.
    """
    for name in opts.workloads or []:
        catalog.check_workload_name(name, caps.workloads)
    if opts.workloads:
        workloads = list(dict.fromkeys(opts.workloads))
    else:
        workloads = (
            [] if custom else [w for w in caps.workloads if catalog.is_scale_workload(w) == opts.scale]
        )
    workloads += [spec.name for spec in custom]
    sel = _select_allocators(opts, caps, workloads)
    sel.custom = {spec.name: spec for spec in custom}
    for workload in workloads:
        if not catalog.is_shared(workload):
            continue
        for allocator in sel.allocators:
            reason = caps.shared_refused.get(allocator)
            if reason is None:
                continue
            if opts.allocators:
                raise UsageError(f"{allocator} cannot run {workload}: {reason}")
            sel.refused[(allocator, workload)] = reason
    return sel


def _select_allocators(opts: BenchOptions, caps: children.Capabilities, workloads: list[str]) -> Selection:
    if opts.allocators:
        chosen = list(dict.fromkeys(opts.allocators))
        for name in chosen:
            if not caps.available.get(name, False):
                base, mode = catalog.split_competitor(name)
                reason = caps.reasons.get(name) or (
                    f"{base} does not both free and reset, so it has no separate arena mode"
                    if mode is not None and caps.available.get(base, False)
                    else "not offered by this build"
                )
                raise UsageError(f"allocator {name!r} is not available here: {reason}")
        idle = [w for w in workloads if not any(catalog.runs_on(a, w) for a in chosen)]
        if idle:
            raise UsageError(
                f"no selected allocator runs on {', '.join(idle)} "
                f"(mmap runs only on {', '.join(sorted(catalog.MMAP_WORKLOADS))})"
            )
        return Selection(chosen, workloads)
    chosen = list(caps.competitors)
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
    todo = sel.workloads if budget is not None else [w for w in sel.workloads if _table_ops(sel, w) is None]
    ops = {w: int(_table_ops(sel, w) or 0) for w in sel.workloads if w not in todo}
    budget_ns = int((budget if budget is not None else catalog.DEFAULT_CALIBRATION_BUDGET_S) * 1e9)
    custom = sel.custom_json()
    specs = [
        children.RunSpec(a, w, -1, 0, opts.seed, budget_ns, custom.get(w, ""))
        for w in todo
        for a in sel.allocators
        if sel.runs(a, w)
    ]
    for spec, done in zip(specs, children.execute(specs), strict=True):
        ops[spec.workload] = min(ops.get(spec.workload, done.ops), max(1, done.ops))
    return {w: ops[w] for w in sel.workloads}


def _table_ops(sel: Selection, workload: str) -> int | None:
    """Ops without calibrating: a user's workload's own ``ops``, else the catalog's."""
    spec = sel.custom.get(workload)
    if spec is not None:
        return spec.ops
    return catalog.default_ops(workload)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _say(opts: BenchOptions, text: str, stream: TextIO) -> None:
    if not opts.quiet:
        print(text, file=stream)


def planned_cells(sel: Selection) -> set[tuple[str, str]]:
    return {(a, w) for a in sel.allocators for w in sel.workloads if sel.runs(a, w)}


def baseline_allocator(opts: BenchOptions, sel: Selection) -> str:
    return opts.baseline_allocator or report.default_baseline(sel.allocators)


def run_bench(opts: BenchOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The whole command; raises UsageError for the caller to print (exit 2).

    On Ctrl-C the completed runs are reported and written, marked partial, and
    KeyboardInterrupt is raised again for the caller.
    """
    err = err or sys.stderr
    writes_stdout = outputs.STDOUT in (opts.json_path, opts.csv_path, opts.markdown_path)
    out = err if writes_stdout else (out or sys.stdout)  # standard output carries the file alone
    started = time.monotonic()
    check_options(opts)
    baseline = compare.load_baseline(opts.baseline_path) if opts.baseline_path else None

    custom = workload_file.load(opts.workload_file) if opts.workload_file else []
    caps = children.probe()
    if custom:  # the engine's table is the one list of built-in names
        workload_file.check_names(str(opts.workload_file), custom, caps.workloads)
    sel = select(opts, caps, custom)
    if opts.baseline_allocator is not None and opts.baseline_allocator not in sel.allocators:
        reason = sel.skipped.get(opts.baseline_allocator) or "it is not selected"
        raise UsageError(f"--baseline-allocator {opts.baseline_allocator} cannot run here: {reason}")
    if baseline is not None and not planned_cells(sel) & comparison.cells(baseline.results):
        raise UsageError(
            f"baseline {opts.baseline_path} has no (allocator, workload) in common with this run: "
            "nothing to compare (choose --allocators and --workloads that it measured)"
        )
    for name, reason in sel.skipped.items():
        _say(opts, f"note: skipping {name}: {reason}", err)
    for (name, workload), reason in sel.refused.items():
        _say(opts, f"note: skipping {name} on {workload}: {reason}", err)
    if opts.overhead and not caps.available.get(catalog.NULL, False):
        _say(opts, f"note: no engine-overhead runs: {caps.reasons.get(catalog.NULL)}", err)
        opts.overhead = False

    try:
        if opts.ops is None and (
            opts.time_budget_s is not None or any(_table_ops(sel, w) is None for w in sel.workloads)
        ):
            _say(opts, "calibrating ops per workload...", err)
        ops = choose_ops(opts, sel)
    except BenchFailure as exc:
        print(f"allocffi bench: calibration failed: {exc}", file=err)
        return EXIT_FAILURE
    calibration = _short_calibration(opts, sel, caps, err) if opts.calibrate else None
    custom_json = sel.custom_json()
    specs = children.plan(sel.allocators, sel.workloads, ops, opts.repeat, opts.seed, custom_json, sel.runs)
    if opts.overhead:
        specs += children.overhead_plan(sel.workloads, ops, opts.seed, custom_json)

    watch = machine.LoadWatch()
    records, failures, interrupted = _run_all(specs, console.make_progress(opts.quiet, err), watch)
    measured = [r for r in records if r.spec.allocator != catalog.NULL]
    overhead = {r.spec.workload: r.ns_per_op for r in records if r.spec.allocator == catalog.NULL}
    base_name = baseline_allocator(opts, sel)
    results = stats.aggregate(measured, base_name)
    mismatches = stats.checksum_mismatches(measured)
    changes = (
        comparison.compare(baseline.results, results, opts.noise_threshold) if baseline is not None else None
    )

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
            **_custom_config(opts, sel, ops),
        },
        results=results,
        overhead=overhead,
        mismatches=mismatches,
        targets=targets.check_all(results, overhead) if opts.targets else [],
        changes=changes,
        wall_time_s=time.monotonic() - started,
        baseline_allocator=base_name,
        load=watch.finish(),
        partial=interrupted,
        calibration=calibration,
    )
    bench_report.warnings = report.run_warnings(bench_report)
    if baseline is not None and changes is not None:
        bench_report.warnings += [
            f"against the baseline: {w}" for w in compare.warnings_between(baseline, bench_report, changes)
        ]
    if base_name != catalog.BASELINE and opts.baseline_allocator is None:
        _say(opts, f"note: {catalog.BASELINE} did not run: speedups are against {base_name}", err)
    if not opts.quiet and results:
        console.print_report(bench_report, out)
    elif bench_report.warnings:  # quiet or nothing to show: the warnings still matter
        for warning in bench_report.warnings:
            print(f"allocffi bench: warning: {warning}", file=err)
    _write_reports(bench_report, opts)
    if interrupted:
        written = [p for p in (opts.json_path, opts.csv_path, opts.markdown_path, opts.plot_path) if p]
        where = f"; written, marked partial, to {', '.join(written)}" if written else ""
        print(
            f"allocffi bench: interrupted after {len(measured)} of "
            f"{sum(s.allocator != catalog.NULL for s in specs)} runs{where}",
            file=err,
        )
        raise KeyboardInterrupt

    for failure in failures:
        print(f"allocffi bench: FAILED: {failure}", file=err)
    for mismatch in mismatches:
        print(f"allocffi bench: CHECKSUM MISMATCH on {mismatch.describe()}", file=err)
    if failures or mismatches:
        return EXIT_FAILURE
    if changes is not None and opts.fail_on_regression:
        slower = comparison.regressions(changes)
        if slower:
            for c in slower:
                print(f"allocffi bench: regression: {c.workload} {c.allocator}: {c.describe()}", file=err)
            return EXIT_REGRESSION
    return EXIT_OK


def _short_calibration(
    opts: BenchOptions, sel: Selection, caps: children.Capabilities, err: TextIO
) -> calibrate.Calibration | None:
    """The wrapper's cost for the selected system libraries, measured in this run (libc joins as
    the reference); None when no system library is selected or the calibration failed."""
    libraries = [name for name in calibrate.LIBRARIES if name in sel.allocators]
    if not libraries:
        return None
    if catalog.BASELINE not in libraries:
        if not caps.available.get(catalog.BASELINE, False):
            return None
        libraries.insert(0, catalog.BASELINE)
    workloads = calibrate.SHORT_WORKLOADS
    ops = {
        w: min(opts.ops, calibrate.SHORT_OPS[w]) if opts.ops else calibrate.SHORT_OPS[w] for w in workloads
    }
    runs = len(libraries) * len(workloads) * len(calibrate.LOOPS) * calibrate.SHORT_REPEAT
    _say(
        opts,
        f"calibrating the wrapper: {runs} runs of {', '.join(libraries)} direct and through allocffi...",
        err,
    )
    try:
        result = calibrate.calibrate(libraries, workloads, ops, calibrate.SHORT_REPEAT, opts.seed)
    except BenchFailure as exc:
        print(
            f"allocffi bench: calibration of the wrapper failed (the run goes on without it): {exc}", file=err
        )
        return None
    return result


def _custom_config(opts: BenchOptions, sel: Selection, ops: Mapping[str, int]) -> dict[str, object]:
    """The user's workloads as run (ops filled in): `--workload-file REPORT.json` repeats them."""
    if not sel.custom:
        return {}
    specs = [dataclasses.replace(spec, ops=ops[spec.name]).to_dict() for spec in sel.custom.values()]
    return {"workload_file": opts.workload_file, "workload_specs": specs}


def _run_all(
    specs: Sequence[children.RunSpec], progress: console.Progress, watch: machine.LoadWatch | None = None
) -> tuple[list[children.RunRecord], list[str], bool]:
    """Run every spec; a failed (allocator, workload) is not retried in later repeats.

    Returns the records, the failures, and whether Ctrl-C stopped the runs
    (the records then hold the runs completed before it).
    """
    records: list[children.RunRecord] = []
    failures: list[str] = []
    broken: set[tuple[str, str]] = set()
    env = children.worker_environment()
    interrupted = False
    progress.start(specs)
    try:
        for spec in specs:
            key = (spec.allocator, spec.workload)
            if key in broken:
                progress.done(spec, None)
                continue
            try:
                record = children.run_child(spec, env)
            except BenchFailure as exc:
                broken.add(key)
                failures.append(str(exc))
                progress.done(spec, None)
                continue
            records.append(record)
            progress.done(spec, record)
            if watch is not None:
                watch.sample()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.stop()
    return records, failures, interrupted


def _write_reports(bench_report: report.BenchReport, opts: BenchOptions) -> None:
    if opts.json_path:
        report.write_json(bench_report, opts.json_path)
    if opts.csv_path:
        report.write_csv(bench_report, opts.csv_path)
    if opts.markdown_path:
        report.write_markdown(bench_report, opts.markdown_path)
    if opts.plot_path and opts.scale:
        write_scale_plot(bench_report, opts.plot_path)
    elif opts.plot_path:
        write_plot(bench_report, opts.plot_path)


__all__ = ["BenchOptions", "run_bench"]
