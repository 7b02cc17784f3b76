"""The ``allocffi trace`` subcommands: record, info, replay, import.

    allocffi trace record -o FILE [--python-malloc] -- CMD ARGS...
    allocffi trace info FILE [--json]
    allocffi trace replay FILE [--allocators A,B] [--repeat N] [--touch ends|pages|all]
                          [--threads serial|threads] [--json P] [--csv P] [--markdown P] [--plot P]
    allocffi trace import memray CAPTURE.bin -o FILE

allocffi/harness/cli.py adds the parser (``add_parser``) and calls ``run``; errors the user can fix are
``UsageError`` (one line, exit status 2) as everywhere in the command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from allocffi.harness.core import outputs
from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_OK, BenchFailure, UsageError


def add_parser(sub: Any) -> None:
    """The ``trace`` parser and its subcommands, under ``sub`` (cli.py's subparsers)."""
    from allocffi.harness.bench.catalog import TOUCH_POLICIES
    from allocffi.harness.core import arguments
    from allocffi.harness.trace.native import MODES

    trace = sub.add_parser(
        "trace",
        help="record a program's allocations; replay them on every allocator",
        description="Record the malloc-family calls of a program, summarise them, replay them.",
    )
    tsub = trace.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", parser_class=type(trace))
    tsub.required = True
    record = tsub.add_parser(
        "record",
        help="run a command with the capture library preloaded",
        description="Run CMD with the capture library preloaded; writes one trace per process, FILE.PID.",
        epilog="exit status: 0 traced (1 when the command itself failed; its traces are kept); 2 usage error",
    )
    record.add_argument("-o", "--output", required=True, metavar="FILE", help="trace file prefix (FILE.PID)")
    record.add_argument(
        "--python-malloc",
        action="store_true",
        help="set PYTHONMALLOC=malloc (CPython's pymalloc hides small blocks)",
    )
    record.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")
    info = tsub.add_parser(
        "info", help="what a trace holds", description="Summarise a trace (or FILE.PID set)."
    )
    info.add_argument("file", metavar="FILE")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    replay = tsub.add_parser(
        "replay",
        help="replay a trace on every allocator",
        description=(
            "Replay the trace in C through each allocator's vtable, each (allocator, repeat) in a fresh "
            "process; report ns per call, peak RSS against the ideal, minor faults."
        ),
        epilog="exit status: 0 done; 1 a worker failed or checksums disagree; 2 usage error or bad trace",
    )
    replay.add_argument("file", metavar="FILE")
    replay.add_argument(
        "--allocators", type=arguments.names, metavar="A,B", help="comma list (default: every available one)"
    )
    replay.add_argument(
        "--repeat", type=arguments.REPEAT, default=3, metavar="N", help="fresh-process runs per allocator (3)"
    )
    replay.add_argument(
        "--touch", choices=TOUCH_POLICIES, default="ends", help="memory touched per block (ends)"
    )
    replay.add_argument("--threads", choices=MODES, default="serial", help="replay mode (serial)")
    replay.add_argument("--json", metavar="PATH", help="write the results as JSON")
    replay.add_argument("--csv", metavar="PATH", help="write one CSV row per (trace, allocator)")
    replay.add_argument("--markdown", metavar="PATH", help="write a Markdown report")
    replay.add_argument("--plot", metavar="PATH.png", help="write a bar chart (needs matplotlib)")
    replay.add_argument("--quiet", "-q", action="store_true", help="no progress and no table")
    imp = tsub.add_parser(
        "import", help="convert another tool's capture", description="Convert a capture to a trace."
    )
    imp.add_argument("tool", choices=["memray"])
    imp.add_argument("capture", metavar="CAPTURE.bin")
    imp.add_argument("-o", "--output", required=True, metavar="FILE")


def _record(args: argparse.Namespace) -> int:
    from allocffi.harness.trace.capture import record

    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("no command given: put the program and its arguments after --")
    recording = record(args.output, argv, python_malloc=args.python_malloc)
    for path in recording.traces:
        print(f"wrote {path}")
    run = recording.run
    if run.exit_code != 0:
        how = f"signal {-run.exit_code}" if run.exit_code < 0 else f"status {run.exit_code}"
        print(
            f"allocffi trace record: note: {argv[0]} exited with {how}; its traces are kept", file=sys.stderr
        )
        return EXIT_FAILURE
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    from allocffi.harness.trace import info

    summary = info.summary(args.file)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        sys.stdout.write(info.to_text(summary))
    return EXIT_OK


def _replay(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from allocffi.harness.core import machine
    from allocffi.harness.trace import replay
    from allocffi.harness.trace import results as report

    outputs.check_outputs({"--json": args.json, "--csv": args.csv, "--markdown": args.markdown}, args.plot)
    allocators, missing = replay.choose_allocators(args.allocators, args.threads)
    if not args.quiet:
        for name, why in missing.items():
            print(f"note: {name} unavailable ({why})", file=sys.stderr)

    def progress(spec: replay.ReplaySpec, payload: Any) -> None:
        if not args.quiet:
            print(
                f"  {os.path.basename(spec.trace)} {spec.allocator} #{spec.repeat + 1}: "
                f"{payload['ns_per_event']:.1f} ns/call",
                file=sys.stderr,
            )

    try:
        outcome = replay.replay(args.file, allocators, args.repeat, args.touch, args.threads, progress)
    except BenchFailure as exc:
        print(f"allocffi trace replay: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    config = {
        "trace": args.file,
        "allocators": allocators,
        "repeat": args.repeat,
        "touch": args.touch,
        "mode": args.threads,
        "command": shlex.join(["allocffi", *argv]),
        "load_average": list(os.getloadavg()),
    }
    date = datetime.now().astimezone().isoformat(timespec="seconds")
    saved = report.to_record(outcome, config, machine.describe(), ["allocffi", *argv], date)
    report.write_files(outcome, config, saved, args.json, args.csv, args.markdown, args.plot)
    if not args.quiet:
        sys.stdout.write(report.table(outcome))
        for note in report.footnotes(outcome, config):
            print(f"  {note}")
    if outcome.mismatches:
        for problem in outcome.mismatches:
            print(f"allocffi trace replay: {problem}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from allocffi.harness.trace.memray_import import import_capture

    stats = import_capture(args.capture, args.output)
    skipped = ", ".join(f"{n:,} {kind}" for kind, n in stats.skipped.items()) or "none"
    print(
        f"wrote {args.output}: {stats.calls:,} calls from {stats.records:,} memray records "
        f"(left out: {skipped})"
    )
    return EXIT_OK


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.trace_command == "record":
        return _record(args)
    if args.trace_command == "info":
        return _info(args)
    if args.trace_command == "replay":
        return _replay(args, argv)
    return _import(args)
