"""The ``allocffi`` command: ``bench``, ``compare``, ``report``, ``run`` and ``list``.

    allocffi bench [--allocators a,b] [--workloads w,x] [--repeat N]
                   [--ops N | --time-budget S] [--seed S]
                   [--json P|-] [--csv P] [--markdown P] [--plot P.png]
                   [--baseline P.json [--fail-on-regression]] [--no-calibrate] [--quiet]
                   [--targets] [--baseline-allocator NAME]
    allocffi compare OLD.json NEW.json [--json P|-] [--fail-on-regression]
    allocffi report RUN.json [--markdown P] [--csv P] [--plot P.png] [--targets]
    allocffi run [--allocators a,b] [--repeat N] [--suite real] [...] -- CMD ARGS
    allocffi list
    allocffi numpy-bench [--allocators a,b] [--workloads w,x] [--repeat N] [--scale F]
                         [--json P] [--markdown P] [--quiet]
    allocffi calibrate [--libraries a,b] [--workloads w,x] [--repeat N] [--ops N] [--json P]
    allocffi trace record|info|replay|import ...   (see allocffi/harness/trace/commands.py)

Every error the user can fix is one line on stderr and exit status 2 (never a
traceback); Ctrl-C exits with 130 and a closed output pipe (``| head``)
quietly with 141; see allocffi/harness/core/errors.py for the other exit statuses.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from allocffi.harness.core import arguments
from allocffi.harness.core.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError

EXIT_BROKEN_PIPE = 141  # what a shell reports for a process killed by SIGPIPE


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (and still exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from allocffi.harness.bench.catalog import MMAP_WORKLOADS, SELECTABLE

    parser = _Parser(prog="allocffi", description="Native memory allocators side by side.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    bench = sub.add_parser(
        "bench",
        help="compare allocators over the engine's workloads",
        description=(
            "Run every (allocator, workload, repeat) in a fresh process, check that all allocators "
            "computed the same checksum and report median ns/op, speedup vs libc and memory use."
        ),
        epilog=(
            "exit status: 0 done; 1 a worker failed or allocators disagree on a checksum; "
            "2 usage error (nothing was run); 3 a regression beyond noise with --fail-on-regression"
        ),
    )
    bench.add_argument(
        "--allocators",
        type=arguments.names,
        metavar="A,B",
        help=f"comma list from {', '.join(SELECTABLE)}, and NAME+reset for an allocator that can "
        "both free and reset, in arena mode (default: every available one, both modes; "
        f"mmap runs only on {', '.join(sorted(MMAP_WORKLOADS))})",
    )
    bench.add_argument(
        "--workloads",
        type=arguments.names,
        metavar="W,X",
        help="comma list (default: all but the scale suite; see `allocffi list`)",
    )
    bench.add_argument(
        "--scale",
        action="store_true",
        help="run the scale suite instead: live sets of 1e2-1e6 blocks (live-*) freed in a random or in "
        "allocation order; --plot then draws ns/op over N per allocator",
    )
    bench.add_argument(
        "--workload-file",
        metavar="FILE",
        help="your own workloads: a TOML file of [[workload]] tables, or a JSON report that ran one "
        "(runs only these unless --workloads is given; see docs/cli.md)",
    )
    bench.add_argument(
        "--repeat",
        type=arguments.REPEAT,
        default=5,
        metavar="N",
        help="independent runs of each pair (default 5)",
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument(
        "--ops", type=arguments.OPS, metavar="N", help="allocations per run, for every workload"
    )
    size.add_argument(
        "--time-budget",
        type=arguments.SECONDS,
        metavar="SECONDS",
        help="size each workload so its slowest allocator runs this long (default: a per-workload table)",
    )
    bench.add_argument(
        "--seed",
        type=arguments.SEED,
        default=0,
        help="seed of the operation streams (default 0: the engine's)",
    )
    bench.add_argument(
        "--json",
        metavar="PATH",
        help="write the full results as JSON (readable by --baseline, compare and report); "
        "'-' writes it to standard output and the tables to standard error",
    )
    bench.add_argument("--csv", metavar="PATH", help="write one CSV row per (allocator, workload)")
    bench.add_argument("--markdown", metavar="PATH", help="write a Markdown report")
    bench.add_argument(
        "--plot",
        metavar="PATH.png",
        help="write a heatmap of speedups, workloads x allocators (needs matplotlib; .png, .svg, .pdf)",
    )
    bench.add_argument("--baseline", metavar="PATH.json", help="compare with a report saved by --json")
    bench.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit with status 3 when something got slower than the baseline beyond noise",
    )
    _noise_option(bench)
    bench.add_argument(
        "--no-overhead", action="store_true", help="skip the null-allocator runs (engine overhead)"
    )
    bench.add_argument(
        "--no-calibrate",
        action="store_true",
        help="skip the short calibration of the wrapper's cost (allocffi calibrate) run first",
    )
    bench.add_argument(
        "--quiet", "-q", action="store_true", help="no progress and no tables: only warnings and errors"
    )
    _report_options(bench)

    compare = sub.add_parser(
        "compare",
        help="compare two saved runs, cell by cell, with verdicts that survive noise",
        description=(
            "For every measured quantity of every (subject, allocator) in both runs: the ratio of the "
            "medians with its 95% interval, and a verdict: better or worse (in that quantity's direction) "
            "only when a Mann-Whitney U test on the repeats is significant at 95% and the whole interval "
            "lies beyond the noise threshold. The runs may come from any command. Nothing is run."
        ),
        epilog="exit status: 0 done; 2 usage error or no cell in common; 3 a regression with "
        "--fail-on-regression",
    )
    compare.add_argument(
        "old",
        metavar="OLD.json",
        help="a run saved with --json by any command (bench, run, trace replay, ...)",
    )
    compare.add_argument("new", metavar="NEW.json", help="the run to judge against OLD")
    compare.add_argument("--json", metavar="PATH", help="write the comparison as JSON ('-': standard output)")
    compare.add_argument(
        "--fail-on-regression", action="store_true", help="exit with status 3 when a quantity got worse"
    )
    _noise_option(compare)

    redraw = sub.add_parser(
        "report",
        help="redraw the tables, files and plot of a saved run without running it",
        description=(
            "Print the tables of a run saved with --json by any command (bench, run, trace replay, "
            "calibrate, numpy-bench), or write its reports."
        ),
    )
    redraw.add_argument("run", metavar="RUN.json", help="a run saved with --json by any command")
    redraw.add_argument("--markdown", metavar="PATH", help="write a Markdown report")
    redraw.add_argument("--csv", metavar="PATH", help="write one CSV row per (allocator, workload)")
    redraw.add_argument("--json", metavar="PATH", help="write the run again as JSON (current schema)")
    redraw.add_argument("--plot", metavar="PATH.png", help="write the heatmap of speedups (needs matplotlib)")
    _report_options(redraw)

    sub.add_parser(
        "list", help="allocators (with availability) and workloads", description="List what can run here."
    )
    _add_run_parser(sub)
    _add_numpy_bench(sub)
    _add_calibrate(sub)
    from allocffi.harness.trace.commands import add_parser as add_trace_parser

    add_trace_parser(sub)
    return parser


def _noise_option(parser: argparse.ArgumentParser) -> None:
    from allocffi.harness.bench.comparison import DEFAULT_NOISE_THRESHOLD

    parser.add_argument(
        "--noise-threshold",
        type=arguments.NOISE_THRESHOLD,
        default=DEFAULT_NOISE_THRESHOLD,
        metavar="FRACTION",
        help="the noise floor: a change whose interval reaches within this fraction of 1.0 is no change "
        f"(default {DEFAULT_NOISE_THRESHOLD})",
    )


def _report_options(parser: argparse.ArgumentParser) -> None:
    from allocffi.harness.bench.catalog import BASELINE

    parser.add_argument(
        "--targets", action="store_true", help="also check the allocffi project's own performance targets"
    )
    parser.add_argument(
        "--baseline-allocator",
        metavar="NAME",
        help=f"the allocator speedups are computed against (default {BASELINE}; when {BASELINE} did "
        "not run, the first allocator)",
    )


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    from allocffi.harness.run.preload import BASELINE, RUN_ALLOCATORS
    from allocffi.harness.run.suite.registry import suite_names

    run = sub.add_parser(
        "run",
        help="compare allocators on a whole program (LD_PRELOAD), or on a suite of real programs",
        description=(
            "Run a program under each allocator (LD_PRELOAD of its library; libc: none), repeats "
            "interleaved, checking in every run that the allocator really served every process; report "
            "wall/user/sys time, max RSS, faults, context switches and the RSS curve of the process tree, "
            "and the program's own score (--score) for programs that stop on time rather than on work."
        ),
        epilog=(
            "examples: allocffi run --repeat 3 -- gcc -O2 -c big.c; allocffi run --suite real --json r.json. "
            "exit status: 0 done; 1 a run failed (non-zero exit, timeout, preload not effective, "
            "score missing, allocation count too low); 2 usage error (nothing was run); 130 interrupted "
            "(partial reports written)"
        ),
    )
    run.add_argument(
        "--allocators",
        type=arguments.names,
        metavar="A,B",
        help=f"comma list from {', '.join(RUN_ALLOCATORS)}, or NAME=/path/to/lib.so for another build "
        "(default: every installed one)",
    )
    run.add_argument(
        "--repeat", type=arguments.REPEAT, default=5, metavar="N", help="runs per allocator (default 5)"
    )
    run.add_argument(
        "--baseline-allocator",
        metavar="NAME",
        help=f"the allocator speedups are measured against (default {BASELINE}, or the first one without it)",
    )
    run.add_argument("--suite", choices=None, metavar="NAME", help=f"run a suite: {', '.join(suite_names())}")
    run.add_argument(
        "--programs", type=arguments.names, metavar="P,Q", help="only these programs of the suite"
    )
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set in the program's environment; an LD_PRELOAD is kept, loaded after the allocator under "
        "test (one that defines malloc is refused: measure it with --allocators NAME=PATH)",
    )
    run.add_argument("--cwd", metavar="DIR", help="run the program in DIR")
    run.add_argument(
        "--stdin", metavar="FILE", help="the program's stdin, from its start each run (default /dev/null)"
    )
    run.add_argument("--name", metavar="NAME", help="the program's name in the report (e.g. for sh -c '...')")
    run.add_argument(
        "--score",
        metavar="REGEX",
        help="read the program's own figure of merit from its output: a regular expression with a named "
        "group (?P<score>...); the last match counts; needs --higher-is-better or --lower-is-better",
    )
    direction = run.add_mutually_exclusive_group()
    direction.add_argument(
        "--higher-is-better", dest="score_higher", action="store_const", const=True, help="a rate: ops/s"
    )
    direction.add_argument(
        "--lower-is-better", dest="score_higher", action="store_const", const=False, help="a cost: seconds"
    )
    run.add_argument("--score-unit", default="", metavar="UNIT", help="what the score counts, e.g. ops/s")
    run.add_argument(
        "--score-stream", choices=("stdout", "stderr"), default="stdout", help="where the score is printed"
    )
    run.add_argument(
        "--timeout",
        type=arguments.SECONDS,
        metavar="S",
        help="kill a run (its whole process group) after S seconds",
    )
    run.add_argument(
        "--python-malloc",
        action="store_true",
        help="set PYTHONMALLOC=malloc so CPython's objects go through the allocator under test",
    )
    run.add_argument(
        "--no-sample", action="store_true", help="no RSS curve (rusage only): to measure the sampler's cost"
    )
    run.add_argument(
        "--no-count-check",
        action="store_true",
        help="suites: skip the run that counts each program's allocations",
    )
    run.add_argument("--json", metavar="PATH", help="write every row and repeat (with RSS curves) as JSON")
    run.add_argument("--csv", metavar="PATH", help="write one CSV row per (program, allocator)")
    run.add_argument("--markdown", metavar="PATH", help="write a Markdown report")
    run.add_argument("--plot", metavar="PATH.png", help="write the RSS curves, one chart per program")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress and no table, only errors")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the program to run")


def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from allocffi.harness.run.command import RunOptions, run_programs

    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    opts = RunOptions(
        command=command,
        suite=args.suite,
        programs=args.programs,
        allocators=args.allocators,
        repeat=args.repeat,
        baseline=args.baseline_allocator,
        env=args.env,
        cwd=args.cwd,
        timeout_s=args.timeout,
        python_malloc=args.python_malloc,
        sample=not args.no_sample,
        count_check=not args.no_count_check,
        json_path=args.json,
        csv_path=args.csv,
        markdown_path=args.markdown,
        plot_path=args.plot,
        quiet=args.quiet,
        invocation=shlex.join(["allocffi", *argv]),
        name=args.name,
        stdin_path=args.stdin,
        score_pattern=args.score,
        score_higher_is_better=args.score_higher,
        score_unit=args.score_unit,
        score_stream=args.score_stream,
    )
    return run_programs(opts)


def _add_numpy_bench(sub: Any) -> None:
    from allocffi.harness.numpy_bench.workloads import WORKLOADS

    numpy_bench = sub.add_parser(
        "numpy-bench",
        help="NumPy workloads under every allocator and NumPy's default handler",
        description=(
            "Run NumPy workloads from Python with each allocator as NumPy's data handler "
            "(allocffi.numpy), and with NumPy's own default handler as the baseline, each "
            "(handler, workload, repeat) in a fresh process; report ns/op, speedup and peak RSS."
        ),
        epilog="workloads: " + "; ".join(f"{w.name}: {w.description}" for w in WORKLOADS.values()),
    )
    add = numpy_bench.add_argument
    add("--allocators", type=arguments.names, metavar="A,B", help="default: every available one")
    add("--workloads", type=arguments.names, metavar="W,X", help=f"default: {', '.join(WORKLOADS)}")
    add("--repeat", type=arguments.REPEAT, default=3, metavar="N", help="runs of each pair (default 3)")
    add("--scale", type=arguments.SCALE, default=1.0, metavar="F", help="multiply each workload's iterations")
    add("--json", metavar="PATH", help="write the results as JSON")
    add("--markdown", metavar="PATH", help="write the Markdown tables")
    add("--quiet", "-q", action="store_true", help="only errors")


def _numpy_bench(args: argparse.Namespace, argv: list[str]) -> int:
    from allocffi.harness.numpy_bench.command import run_numpy_bench

    return run_numpy_bench(
        args.allocators,
        args.workloads,
        args.repeat,
        args.scale,
        args.json,
        args.markdown,
        args.quiet,
        argv=["allocffi", *argv],
    )


def _add_calibrate(sub: Any) -> None:
    from allocffi.harness import calibrate

    cal = sub.add_parser(
        "calibrate",
        help="what allocffi's wrapper adds to each system library",
        description=(
            "Run fixed-N with each system library called directly (its entry points through a plain "
            "function pointer) and through allocffi's vtable, each run in a fresh process, interleaved; "
            "print the ns the wrapper adds and each library's speedup vs libc both ways, and flag a "
            f"library whose speedup moves by more than {calibrate.TOLERANCE:.0%}."
        ),
        epilog="exit status: 0 done; 1 a worker failed or the loops disagree on a checksum; 2 usage error",
    )
    cal.add_argument(
        "--libraries",
        type=arguments.names,
        metavar="A,B",
        help=f"comma list from {', '.join(calibrate.LIBRARIES)} (default: all available; libc always runs)",
    )
    cal.add_argument(
        "--workloads",
        type=arguments.names,
        metavar="W,X",
        help=f"comma list from {', '.join(calibrate.WORKLOADS)}",
    )
    cal.add_argument(
        "--repeat",
        type=arguments.REPEAT,
        default=calibrate.DEFAULT_REPEAT,
        metavar="N",
        help=f"runs of each loop (default {calibrate.DEFAULT_REPEAT})",
    )
    cal.add_argument(
        "--ops", type=arguments.OPS, metavar="N", help="pairs per run (default: 2 M, 1 M, 500 k by size)"
    )
    cal.add_argument(
        "--seed",
        type=arguments.SEED,
        default=0,
        help="seed of the operation stream (default 0: the engine's)",
    )
    cal.add_argument("--json", metavar="PATH", help="write the calibration as JSON ('-': stdout)")
    cal.add_argument("--quiet", "-q", action="store_true", help="no table, only errors")


def _calibrate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from allocffi.harness.calibrate import CalibrateOptions, run_command

    opts = CalibrateOptions(
        libraries=args.libraries,
        workloads=args.workloads,
        repeat=args.repeat,
        ops=args.ops,
        seed=args.seed,
        json_path=args.json,
        quiet=args.quiet,
        argv=["allocffi", *argv],
    )
    return run_command(opts)


def _bench(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from allocffi.harness.bench.command import BenchOptions, run_bench

    opts = BenchOptions(
        allocators=args.allocators,
        workloads=args.workloads,
        scale=args.scale,
        repeat=args.repeat,
        ops=args.ops,
        time_budget_s=args.time_budget,
        seed=args.seed,
        json_path=args.json,
        csv_path=args.csv,
        markdown_path=args.markdown,
        plot_path=args.plot,
        baseline_path=args.baseline,
        fail_on_regression=args.fail_on_regression,
        noise_threshold=args.noise_threshold,
        overhead=not args.no_overhead,
        calibrate=not args.no_calibrate,
        quiet=args.quiet,
        command=shlex.join(["allocffi", *argv]),
        workload_file=args.workload_file,
        targets=args.targets,
        baseline_allocator=args.baseline_allocator,
    )
    return run_bench(opts)


def _compare(args: argparse.Namespace) -> int:
    from allocffi.harness.compare import run_compare

    return run_compare(
        args.old,
        args.new,
        json_path=args.json,
        noise_floor=args.noise_threshold,
        fail_on_regression=args.fail_on_regression,
    )


def _report(args: argparse.Namespace) -> int:
    from allocffi.harness.report import ReportOptions, run_report

    return run_report(
        ReportOptions(
            path=args.run,
            markdown_path=args.markdown,
            csv_path=args.csv,
            plot_path=args.plot,
            json_path=args.json,
            targets=args.targets,
            baseline_allocator=args.baseline_allocator,
        )
    )


def _dispatch(args: argparse.Namespace, arguments: list[str]) -> int:
    if args.command == "bench":
        return _bench(args, arguments)
    if args.command == "compare":
        return _compare(args)
    if args.command == "report":
        return _report(args)
    if args.command == "run":
        return _run(args, arguments)
    if args.command == "numpy-bench":
        return _numpy_bench(args, arguments)
    if args.command == "calibrate":
        return _calibrate(args, arguments)
    if args.command == "trace":
        from allocffi.harness.trace.commands import run as run_trace

        return run_trace(args, arguments)
    from allocffi.harness.capabilities import list_capabilities

    return list_capabilities()


def _silence_stdout() -> None:
    """After the reader of stdout went away: send what Python still flushes at exit nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    try:
        code = _dispatch(args, arguments)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except UsageError as exc:
        print(f"allocffi {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"allocffi {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `allocffi list | head -1`: the reader has all it wanted
        _silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
