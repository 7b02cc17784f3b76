"""``allocffi run`` end to end: whole programs under each allocator, checked and measured.

Order: every user error (names, paths, a missing package or program, a bad --env) is found
before the first run (exit status 2, nothing started). Then, for a suite, one counting run per
program (glibc with the allocation counter) checks that it still allocates what it claims. Then
the measured runs, interleaved: within each repeat every program runs under every allocator back
to back, in an order that rotates from one repeat to the next (A B C, B C A, ...), so a burst of
machine noise hits all allocators alike.

Every run is checked (``preload.verify``): a run whose allocator did not serve every process,
that exited non-zero or timed out, or whose score (``--score``, or a suite program's own) is missing
from its output fails its row, and the command exits 1. A run that looks like a misuse (misuse.py:
too fast, a usage line on stderr) gets a warning on its row, not a failure.

The program's stdin is /dev/null unless --stdin FILE (or the suite program) names a file; its stdout
and stderr are kept, the last 4 MiB of each (output_tail.py), in the scratch directory while the
command runs: the score is read from them and a failed run shows its stderr's last lines. Ctrl-C stops the
running program (launch.py kills its process group), keeps the completed runs, writes the reports
marked partial and exits 130.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from allocffi.harness.core import arguments, interleave, outputs
from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, UsageError
from allocffi.harness.core.measure import ProcessRun, resolve_program, run_measured
from allocffi.harness.core.output_tail import OutputTail
from allocffi.harness.run import misuse, preload
from allocffi.harness.run import results as run_report
from allocffi.harness.run.programs import Program, RunOptions, Sample
from allocffi.harness.run.score import SCORE_GROUP, Score
from allocffi.harness.run.server import DriverRun, free_port, with_port
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
    if opts.suite and (opts.name or opts.stdin_path or opts.score_pattern):
        raise UsageError("--name, --stdin and --score are for a command: suite programs declare their own")
    if opts.name is not None and not opts.name.strip():
        raise UsageError("--name must not be empty")
    if opts.stdin_path is not None and (
        os.path.isdir(opts.stdin_path) or not os.access(opts.stdin_path, os.R_OK)
    ):
        raise UsageError(f"--stdin {opts.stdin_path!r} is not a readable file")
    user_score(opts)
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


def user_score(opts: RunOptions) -> Score | None:
    """The --score options as a Score (None without --score); a UsageError says what is wrong."""
    direction_given = opts.score_higher_is_better is not None
    if opts.score_pattern is None:
        if direction_given or opts.score_unit:
            raise UsageError("--higher-is-better, --lower-is-better and --score-unit need --score REGEX")
        return None
    try:
        compiled = re.compile(opts.score_pattern, re.MULTILINE)
    except re.error as exc:
        raise UsageError(f"--score {opts.score_pattern!r} is not a regular expression: {exc}") from None
    if SCORE_GROUP not in compiled.groupindex:
        raise UsageError(
            f"--score {opts.score_pattern!r} has no named group: mark the number with "
            f"(?P<{SCORE_GROUP}>...), e.g. --score 'rate: (?P<{SCORE_GROUP}>[0-9.]+)'"
        )
    if not direction_given:
        raise UsageError("--score needs --higher-is-better (a rate) or --lower-is-better (a time)")
    assert opts.score_higher_is_better is not None
    return Score(opts.score_pattern, opts.score_unit, opts.score_higher_is_better, opts.score_stream)


def prepare_programs(opts: RunOptions, workdir: Path) -> list[Program]:
    extra = parse_env(opts.env)
    if opts.python_malloc:
        extra["PYTHONMALLOC"] = "malloc"
    if not opts.suite:
        resolve_program(opts.command[0], {**os.environ, **extra}, opts.cwd)
        name = opts.name or os.path.basename(opts.command[0])
        program = Program(name, list(opts.command), extra, opts.cwd, score=user_score(opts))
        program.stdin = opts.stdin_path
        return [program]
    programs = []
    for sp in get_suite(opts.suite, opts.programs):
        argv = sp.prepare(workdir / sp.name)
        env = {**sp.env, **extra}
        program = Program(sp.name, argv, env, opts.cwd or str(workdir / sp.name), sp.description, sp)
        program.score, program.driver = sp.score, sp.driver
        program.stdin = str(workdir / sp.name / sp.stdin) if sp.stdin else None
        programs.append(program)
    return programs


@dataclass
class Outcome:
    """One run's measurement and what it printed (the kept tails), and its driver's when a server."""

    run: ProcessRun
    stdout: str
    stderr: str
    driver: DriverRun | None = None

    def score_text(self, score: Score) -> str:
        if score.source == "driver":
            if self.driver is None:
                return ""
            return self.driver.stdout_text if score.stream == "stdout" else self.driver.stderr_text
        return self.stdout if score.stream == "stdout" else self.stderr


class Harness:
    """Runs programs under allocators in a scratch directory that holds the probe reports.

    The program's stdout and stderr are kept (their last 4 MiB) in files beside the probe's report:
    the score is read from them, and the last lines of stderr explain a failed run.
    """

    def __init__(self, opts: RunOptions, workdir: Path) -> None:
        self.opts = opts
        self.workdir = workdir
        self._serial = 0

    def _base(self, tag: str) -> str:
        self._serial += 1
        return str(self.workdir / f"run-{self._serial:04d}-{tag}")

    def _run(
        self, program: Program, env: Mapping[str, str], base: str, sample_interval: float | None
    ) -> Outcome:
        """The program once (with its driver when it is a server), its output kept beside ``base``."""
        argv, driver_run = program.argv, None
        if program.driver is not None:
            port = free_port()
            argv = with_port(program.argv, port)
            driver_env = {k: v for k, v in env.items() if k not in preload.RUN_VARIABLES}
            outputs = f"{base}.driver.stdout", f"{base}.driver.stderr"
            driver_run = DriverRun(program.driver, port, driver_env, program.cwd, *outputs)
        try:
            stdin = open(program.stdin, "rb") if program.stdin else None  # noqa: SIM115 (closed below)
        except OSError as exc:  # checked before the first run: removed since
            raise UsageError(f"stdin {program.stdin!r}: {exc.strerror or exc}") from None
        out, err = OutputTail(f"{base}.stdout"), OutputTail(f"{base}.stderr")
        try:
            run = run_measured(
                argv,
                env=env,
                cwd=program.cwd,
                timeout=self.opts.timeout_s,
                sample_interval=sample_interval,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=out.fileno(),
                stderr=err.fileno(),
                companion=driver_run,
            )
        finally:
            if stdin is not None:
                stdin.close()
            stdout, stderr = out.close(), err.close()
        return Outcome(run, stdout, stderr, driver_run)

    def measure(self, program: Program, allocator: preload.AllocatorChoice, repeat: int) -> Sample:
        base = self._base(allocator.name)
        probe_file = f"{base}.probe"
        env = preload.run_environment({**os.environ, **program.env}, allocator, probe_file)
        outcome = self._run(program, env, base, SAMPLE_INTERVAL_S if self.opts.sample else None)
        run = outcome.run
        verification = preload.verify(run, probe_file, allocator.library)
        sample = Sample(allocator.name, program.name, repeat, run, verification, _tail(outcome.stderr))
        if outcome.driver is not None:
            sample.other_problems += outcome.driver.problems
        if program.score is not None:
            sample.score = program.score.parse(outcome.score_text(program.score))
            if sample.score is None and run.exit_code == 0 and not run.timed_out:
                text = outcome.score_text(program.score).strip().splitlines()
                last = f" (its last line: {text[-1][:120]!r})" if text else " (it printed nothing there)"
                sample.other_problems.append(
                    f"no score: {program.score.pattern!r} matched no number in {program.score.where}{last}"
                )
        sample.warnings = misuse.run_warnings(run.wall_s, outcome.stderr, program.stdin)
        return sample

    def count_allocations(self, program: Program, libc: preload.AllocatorChoice) -> None:
        """One run under glibc with the counter; records the count or a problem on ``program``."""
        suite_program = program.suite_program
        assert suite_program is not None
        base = self._base("count")
        probe_file, count_file = f"{base}.probe", f"{base}.count"
        env = preload.run_environment({**os.environ, **program.env}, libc, probe_file, count_file=count_file)
        outcome = self._run(program, env, base, None)
        run = outcome.run
        counter = preload.helper_library("_runcount")
        check = preload.verify(run, probe_file, counter)
        program.allocations_counted = preload.read_allocation_count(count_file)
        why = check.problems + (outcome.driver.problems if outcome.driver is not None else [])
        if run.exit_code != 0 or why:
            program.problems.append(
                f"the counting run failed (exit {run.exit_code}; {'; '.join(why)}) "
                f"{_tail(outcome.stderr)}".strip()
            )
        elif program.allocations_counted < suite_program.min_allocations:
            program.problems.append(
                f"made {program.allocations_counted:,} allocation calls, expected at least "
                f"{suite_program.min_allocations:,} (about {suite_program.allocations:,}): "
                "the program or its input changed"
            )


def _tail(text: str) -> str:
    return " | ".join(text.strip().splitlines()[-_STDERR_TAIL_LINES:])


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
                    for allocator in interleave.rotated(allocators, repeat):
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
