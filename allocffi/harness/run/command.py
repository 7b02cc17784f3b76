"""``allocffi run`` end to end: whole programs under each allocator, checked and measured.

Order: every user error (names, paths, a missing package or program, a bad --env) is found
before the first run (exit status 2, nothing started). Then, for a suite, one counting run per
program (glibc with the allocation counter) checks that it still allocates what it claims. Then
the measured runs, interleaved: within each repeat every program runs under every allocator back
to back, in an order that rotates from one repeat to the next (A B C, B C A, ...), so a burst of
machine noise hits all allocators alike.

Every run is checked (``preload.verify``): a run whose allocator did not serve every process,
that exited non-zero or timed out fails its row, and the command exits 1. Ctrl-C stops the
running program (launch.py kills its process group), keeps the completed runs, writes the reports
marked partial and exits 130.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from allocffi.harness.core import arguments, outputs
from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, UsageError
from allocffi.harness.core.measure import ProcessRun, resolve_program, run_measured
from allocffi.harness.run import preload
from allocffi.harness.run import results as run_report
from allocffi.harness.run.programs import Program, RunOptions, Sample
from allocffi.harness.run.suite.registry import get_suite

SAMPLE_INTERVAL_S = 0.01
_STDERR_TAIL_LINES = 5


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key or "\0" in pair:
            raise UsageError(f"--env {pair!r}: expected KEY=VALUE")
        env[key] = value
    return env


def check_options(opts: RunOptions) -> None:
    if bool(opts.command) == bool(opts.suite):
        if opts.suite:
            raise UsageError("give either --suite NAME or a command after --, not both")
        raise UsageError("no command given: allocffi run [options] -- CMD ARGS... (or --suite real)")
    if opts.programs is not None and not opts.suite:
        raise UsageError("--programs selects programs of a --suite")
    arguments.REPEAT.check("--repeat", opts.repeat)
    if opts.timeout_s is not None:
        arguments.SECONDS.check("--timeout", opts.timeout_s)
    if opts.cwd is not None and not os.path.isdir(opts.cwd):
        raise UsageError(f"--cwd {opts.cwd!r} is not a directory")
    outputs.check_outputs(
        {"--json": opts.json_path, "--csv": opts.csv_path, "--markdown": opts.markdown_path},
        opts.plot_path,
    )
    preload.check_user_preload(parse_env(opts.env))


def prepare_programs(opts: RunOptions, workdir: Path) -> list[Program]:
    extra = parse_env(opts.env)
    if opts.python_malloc:
        extra["PYTHONMALLOC"] = "malloc"
    if not opts.suite:
        resolve_program(opts.command[0], {**os.environ, **extra}, opts.cwd)
        name = os.path.basename(opts.command[0])
        return [Program(name, list(opts.command), extra, opts.cwd)]
    programs = []
    for sp in get_suite(opts.suite, opts.programs):
        argv = sp.prepare(workdir / sp.name)
        env = {**sp.env, **extra}
        programs.append(Program(sp.name, argv, env, opts.cwd or str(workdir / sp.name), sp.description, sp))
    return programs


def interleaved(allocators: Sequence[preload.AllocatorChoice], repeat: int) -> list[preload.AllocatorChoice]:
    """The allocators in the order of repeat ``repeat``: rotated by one each repeat."""
    k = repeat % len(allocators)
    return [*allocators[k:], *allocators[:k]]


class Harness:
    """Runs programs under allocators in a scratch directory that holds the probe reports.

    The program's stdout is discarded and its stderr kept in a file: its last lines explain a
    failed run.
    """

    def __init__(self, opts: RunOptions, workdir: Path) -> None:
        self.opts = opts
        self.workdir = workdir
        self._serial = 0

    def _files(self, tag: str) -> tuple[str, str]:
        self._serial += 1
        base = self.workdir / f"run-{self._serial:04d}-{tag}"
        return f"{base}.probe", f"{base}.stderr"

    def _run(
        self, program: Program, env: Mapping[str, str], stderr_file: str, sample_interval: float | None
    ) -> ProcessRun:
        """The program once, its output discarded and its stderr kept in ``stderr_file``."""
        with open(stderr_file, "wb") as err:
            return run_measured(
                program.argv,
                env=env,
                cwd=program.cwd,
                timeout=self.opts.timeout_s,
                sample_interval=sample_interval,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def measure(self, program: Program, allocator: preload.AllocatorChoice, repeat: int) -> Sample:
        probe_file, stderr_file = self._files(allocator.name)
        env = preload.run_environment({**os.environ, **program.env}, allocator, probe_file)
        run = self._run(program, env, stderr_file, SAMPLE_INTERVAL_S if self.opts.sample else None)
        verification = preload.verify(run, probe_file, allocator.library)
        return Sample(allocator.name, program.name, repeat, run, verification, _tail(stderr_file))

    def count_allocations(self, program: Program, libc: preload.AllocatorChoice) -> None:
        """One run under glibc with the counter; records the count or a problem on ``program``."""
        suite_program = program.suite_program
        assert suite_program is not None
        probe_file, stderr_file = self._files("count")
        count_file = str(self.workdir / f"run-{self._serial:04d}.count")
        env = preload.run_environment({**os.environ, **program.env}, libc, probe_file, count_file=count_file)
        run = self._run(program, env, stderr_file, None)
        counter = preload.helper_library("_runcount")
        check = preload.verify(run, probe_file, counter)
        program.allocations_counted = preload.read_allocation_count(count_file)
        if run.exit_code != 0 or not check.verified:
            program.problems.append(
                f"the counting run failed (exit {run.exit_code}; {'; '.join(check.problems)}) "
                f"{_tail(stderr_file)}".strip()
            )
        elif program.allocations_counted < suite_program.min_allocations:
            program.problems.append(
                f"made {program.allocations_counted:,} allocation calls, expected at least "
                f"{suite_program.min_allocations:,} (about {suite_program.allocations:,}): "
                "the program or its input changed"
            )


def _tail(path: str) -> str:
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-_STDERR_TAIL_LINES:])


def run_programs(opts: RunOptions, out: TextIO | None = None, log: TextIO | None = None) -> int:
    """``allocffi run``: returns the exit status (module doc). Writes to stdout/stderr by default."""
    out = out or sys.stdout
    log = log or sys.stderr

    check_options(opts)
    allocators, skipped = preload.resolve_allocators(opts.allocators)
    if outputs.STDOUT in (opts.json_path, opts.csv_path, opts.markdown_path):
        out = log  # standard output carries the file alone
    names = [a.name for a in allocators]
    if opts.baseline is None:
        opts.baseline = preload.BASELINE if preload.BASELINE in names else names[0]
    if opts.baseline not in names:
        raise UsageError(
            f"--baseline-allocator {opts.baseline!r} is not among the allocators run ({', '.join(names)})"
        )
    preload.helper_library("_runprobe")
    workdir = Path(tempfile.mkdtemp(prefix="allocffi-run-"))
    try:
        programs = prepare_programs(opts, workdir)
        report = run_report.RunReport.start(opts, allocators, skipped, programs)
        for name, why in skipped.items():
            print(f"note: {name} skipped: {why}", file=log)
        preload_note = preload.check_user_preload(parse_env(opts.env))
        if preload_note and not opts.quiet:
            print(preload_note, file=log)
        harness = Harness(opts, workdir)
        try:
            if opts.suite and opts.count_check:
                libc = next((a for a in allocators if a.name == preload.BASELINE), None)
                libc = libc or preload.resolve_allocators([preload.BASELINE])[0][0]
                for program in programs:
                    harness.count_allocations(program, libc)
                    if not opts.quiet:
                        print(
                            f"counted {program.name}: {program.allocations_counted:,} allocation calls"
                            + (f" ({'; '.join(program.problems)})" if program.problems else ""),
                            file=log,
                        )
            total = opts.repeat * len(programs) * len(allocators)
            for repeat in range(opts.repeat):
                for program in programs:
                    for allocator in interleaved(allocators, repeat):
                        sample = harness.measure(program, allocator, repeat)
                        report.add(sample)
                        if not opts.quiet:
                            print(
                                f"[{len(report.samples)}/{total}] "
                                + run_report.progress_line(sample, opts.repeat),
                                file=log,
                            )
        except KeyboardInterrupt:
            report.partial = True
            print(
                f"allocffi run: interrupted: writing the {len(report.samples)} completed runs, "
                "marked partial",
                file=log,
            )
        report.finish()
        run_report.write_outputs(report, opts)
        if not opts.quiet:
            out.write(run_report.text_tables(report))
        if report.partial:
            return EXIT_INTERRUPTED
        failed = report.failed_rows()
        if failed:
            for row in failed:
                print(
                    f"allocffi run: {row.program} under {row.allocator} failed: {'; '.join(row.problems)}",
                    file=log,
                )
            return EXIT_FAILURE
        return EXIT_OK
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
