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
        "--workloads",
        type=_names,
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
    return parser


def _bench(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from allocffi.bench.session import BenchOptions, run_bench

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
