"""The ``allocffi`` command: ``allocffi bench`` and ``allocffi list``.

    allocffi bench [--allocators a,b] [--workloads w,x] [--repeat N]
                   [--ops N | --time-budget S] [--seed S]
                   [--json P] [--csv P] [--markdown P] [--plot P.png]
                   [--baseline P.json [--fail-on-regression]] [--quiet]
    allocffi list

Every error the user can fix is one line on stderr and exit status 2 (never a
traceback); see allocffi/bench/errors.py for the other exit statuses.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import NoReturn

from allocffi.bench.errors import EXIT_USAGE, UsageError

EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (and still exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def build_parser() -> argparse.ArgumentParser:
    from allocffi.bench.catalog import MMAP_WORKLOADS, SELECTABLE
    from allocffi.bench.compare import DEFAULT_NOISE_THRESHOLD

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
        type=_names,
        metavar="A,B",
        help=f"comma list from {', '.join(SELECTABLE)} (default: every available one; "
        f"mmap runs only on {', '.join(sorted(MMAP_WORKLOADS))})",
    )
    bench.add_argument(
        "--workloads", type=_names, metavar="W,X", help="comma list (default: all; see `allocffi list`)"
    )
    bench.add_argument(
        "--repeat", type=int, default=5, metavar="N", help="independent runs of each pair (default 5)"
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--ops", type=int, metavar="N", help="allocations per run, for every workload")
    size.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="size each workload so its slowest allocator runs this long (default: a per-workload table)",
    )
    bench.add_argument(
        "--seed", type=int, default=0, help="seed of the operation streams (default 0: the engine's)"
    )
    bench.add_argument(
        "--json", metavar="PATH", help="write the full results as JSON (readable by --baseline)"
    )
    bench.add_argument("--csv", metavar="PATH", help="write one CSV row per (allocator, workload)")
    bench.add_argument("--markdown", metavar="PATH", help="write a Markdown report")
    bench.add_argument("--plot", metavar="PATH.png", help="write a bar chart of speedups (needs matplotlib)")
    bench.add_argument("--baseline", metavar="PATH.json", help="compare with a report saved by --json")
    bench.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit with status 3 when something got slower than the baseline beyond noise",
    )
    bench.add_argument(
        "--noise-threshold",
        type=float,
        default=DEFAULT_NOISE_THRESHOLD,
        metavar="FRACTION",
        help=f"smallest relative change that counts against the baseline (default {DEFAULT_NOISE_THRESHOLD})",
    )
    bench.add_argument(
        "--no-overhead", action="store_true", help="skip the null-allocator runs (engine overhead)"
    )
    bench.add_argument("--quiet", "-q", action="store_true", help="no progress and no tables, only errors")
    sub.add_parser(
        "list", help="allocators (with availability) and workloads", description="List what can run here."
    )
    _add_run_parser(sub)
    return parser


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    from allocffi.bench.preload import BASELINE, RUN_ALLOCATORS
    from allocffi.bench.suite import suite_names

    run = sub.add_parser(
        "run",
        help="compare allocators on a whole program (LD_PRELOAD), or on a suite of real programs",
        description=(
            "Run a program under each allocator (LD_PRELOAD of its library; libc: none), repeats "
            "interleaved, checking in every run that the allocator really served every process; report "
            "wall/user/sys time, max RSS, faults, context switches and the RSS curve of the process tree."
        ),
        epilog=(
            "examples: allocffi run --repeat 3 -- gcc -O2 -c big.c; allocffi run --suite real --json r.json. "
            "exit status: 0 done; 1 a run failed (non-zero exit, timeout, preload not effective, "
            "allocation count too low); 2 usage error (nothing was run); 130 interrupted (partial reports "
            "written)"
        ),
    )
    run.add_argument(
        "--allocators",
        type=_names,
        metavar="A,B",
        help=f"comma list from {', '.join(RUN_ALLOCATORS)}, or NAME=/path/to/lib.so for another build "
        "(default: every installed one)",
    )
    run.add_argument("--repeat", type=int, default=5, metavar="N", help="runs per allocator (default 5)")
    run.add_argument(
        "--baseline-allocator",
        metavar="NAME",
        help=f"the allocator speedups are measured against (default {BASELINE}, or the first one without it)",
    )
    run.add_argument("--suite", choices=None, metavar="NAME", help=f"run a suite: {', '.join(suite_names())}")
    run.add_argument("--programs", type=_names, metavar="P,Q", help="only these programs of the suite")
    run.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="set in the program's environment"
    )
    run.add_argument("--cwd", metavar="DIR", help="run the program in DIR")
    run.add_argument(
        "--timeout", type=float, metavar="S", help="kill a run (its whole process group) after S seconds"
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
    from allocffi.bench.wholeprogram import RunOptions, run_programs

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
    )
    return run_programs(opts)


def _bench(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from allocffi.bench.session import BenchOptions, run_bench

    opts = BenchOptions(
        allocators=args.allocators,
        workloads=args.workloads,
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
        quiet=args.quiet,
        command=shlex.join(["allocffi", *argv]),
    )
    return run_bench(opts)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    try:
        if args.command == "bench":
            return _bench(args, arguments)
        if args.command == "run":
            return _run(args, arguments)
        from allocffi.bench.session import list_capabilities

        return list_capabilities()
    except UsageError as exc:
        print(f"allocffi {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"allocffi {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
