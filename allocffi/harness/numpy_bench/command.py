"""``allocffi numpy-bench``: NumPy workloads under every allocator and NumPy's default handler.

Each (handler, workload, repeat) runs in a fresh process (``python -m allocffi.harness.numpy_bench.command
--worker HANDLER WORKLOAD ITERATIONS``), which prints one JSON line: elapsed ns, checksum and the
peak RSS of the process (VmHWM). The report gives, per workload, the median ns/op of each handler,
its speedup against NumPy's default handler (``numpy``) and its peak RSS against the default's.
``--json`` writes the results record (core/record.py): both quantities, every repeat.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from allocffi._startup import child_environment
from allocffi.harness.core import arguments, interleave, machine, outputs, record, units
from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_OK, BenchFailure, UsageError
from allocffi.harness.numpy_bench.workloads import WORKLOADS

BASELINE = "numpy"  # NumPy's own default handler
COMMAND = "numpy-bench"  # the command's name in its results record


@dataclass
class NumpyResult:
    handler: str
    workload: str
    ns_per_op: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)
    checksums: set[float] = field(default_factory=set)

    @property
    def median_ns(self) -> float:
        return statistics.median(self.ns_per_op)


def _peak_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def worker(handler: str, workload_name: str, iterations: int) -> dict[str, Any]:
    """One run in this process (a fresh one: the driver starts it)."""
    import numpy as np

    import allocffi
    import allocffi.numpy as anp

    workload = WORKLOADS[workload_name]
    if handler == BASELINE:
        elapsed, checksum = _run(np, workload, iterations, None)
    else:
        with allocffi.open(handler) as allocator:
            reset = allocator.reset if allocffi.Capability.RESET in allocator.capabilities else None
            with anp.use(allocator):
                elapsed, checksum = _run(np, workload, iterations, reset)
    return {"elapsed_ns": elapsed, "ops": iterations, "checksum": checksum, "peak_rss": _peak_rss()}


def _run(np: Any, workload: Any, iterations: int, reset: Any) -> tuple[int, float]:
    from allocffi.harness.numpy_bench.workloads import run

    run(np, workload, max(1, iterations // 10), reset)  # warm-up: caches, page tables
    return run(np, workload, iterations, reset)


def _spawn(handler: str, workload: str, iterations: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "allocffi.harness.numpy_bench.command",
        "--worker",
        handler,
        workload,
        str(iterations),
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=child_environment(), timeout=600)
    except subprocess.TimeoutExpired as expired:
        raise BenchFailure(f"worker {handler}/{workload} ran over {expired.timeout:.0f} s") from expired
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchFailure(f"worker {handler}/{workload} failed (status {proc.returncode}): {last}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_numpy_bench(
    handlers: Sequence[str] | None,
    workloads: Sequence[str] | None,
    repeat: int,
    scale: float,
    json_path: str | None,
    markdown_path: str | None,
    quiet: bool,
    argv: Sequence[str] = ("allocffi", "numpy-bench"),
) -> int:
    try:
        import numpy  # noqa: F401
    except ModuleNotFoundError as missing:
        raise UsageError("numpy-bench needs NumPy: pip install 'allocffi[numpy]'") from missing
    from allocffi import ALLOCATOR_NAMES
    from allocffi.harness.core.children import probe

    caps = probe()  # in a child started like the workers (jemalloc's start-up setting included)
    chosen = (
        list(handlers) if handlers else [BASELINE, *(n for n in ALLOCATOR_NAMES if caps.available.get(n))]
    )
    for name in chosen:
        if name != BASELINE and name not in ALLOCATOR_NAMES:
            raise UsageError(
                f"unknown allocator {name!r}; choose from {BASELINE}, {', '.join(ALLOCATOR_NAMES)}"
            )
        if name != BASELINE and not caps.available.get(name):
            raise UsageError(f"{name!r} is not available here: {caps.reasons.get(name, 'unavailable')}")
    if BASELINE not in chosen:
        chosen.insert(0, BASELINE)
    names = list(workloads) if workloads else list(WORKLOADS)
    for w in names:
        if w not in WORKLOADS:
            raise UsageError(f"unknown NumPy workload {w!r}; choose from {', '.join(WORKLOADS)}")
    arguments.REPEAT.check("--repeat", repeat)
    arguments.SCALE.check("--scale", scale)
    outputs.check_outputs({"--json": json_path, "--markdown": markdown_path})

    try:
        progress = sys.stderr if outputs.STDOUT in (json_path, markdown_path) else sys.stdout
        results = _measure(chosen, names, repeat, scale, quiet, progress)
    except BenchFailure as failure:
        print(f"allocffi numpy-bench: {failure}", file=sys.stderr)
        return EXIT_FAILURE
    mismatched = [w for w in names if len({c for r in results if r.workload == w for c in r.checksums}) > 1]
    config = {"allocators": list(chosen), "workloads": names, "repeat": repeat, "scale": scale}
    saved = to_record(results, config, argv, mismatched)
    return _finish(results, names, chosen, mismatched, saved, json_path, markdown_path, quiet)


def _measure(
    chosen: Sequence[str], names: Sequence[str], repeat: int, scale: float, quiet: bool, progress: TextIO
) -> list[NumpyResult]:
    """Every (handler, workload, repeat) in a fresh process; BenchFailure when one fails."""
    results: list[NumpyResult] = []
    for w in names:
        iterations = max(1, int(WORKLOADS[w].iterations * scale))
        row = {handler: NumpyResult(handler, w) for handler in chosen}
        for r in range(repeat):
            for handler in interleave.rotated(chosen, r):
                result = row[handler]
                one = _spawn(handler, w, iterations)
                result.ns_per_op.append(one["elapsed_ns"] / one["ops"])
                result.peak_rss.append(one["peak_rss"])
                result.checksums.add(one["checksum"])
        results.extend(row.values())
        if not quiet:
            for handler, result in row.items():
                print(
                    f"{w:12} {handler:15} {units.ns(result.median_ns):>10} ns/op", file=progress, flush=True
                )
    return results


def _finish(
    results: list[NumpyResult],
    names: Sequence[str],
    chosen: Sequence[str],
    mismatched: list[str],
    saved: record.Record,
    json_path: str | None,
    markdown_path: str | None,
    quiet: bool,
) -> int:
    report = _report(results, names, chosen)
    if json_path:
        record.write(saved, json_path)
    if markdown_path:
        outputs.write_atomically(markdown_path, report + "\n", "--markdown")
    if not quiet:
        print(report, file=sys.stderr if outputs.STDOUT in (json_path, markdown_path) else sys.stdout)
    if mismatched:
        print(f"allocffi numpy-bench: checksums differ on {', '.join(mismatched)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def to_record(
    results: Sequence[NumpyResult], config: dict[str, Any], argv: Sequence[str], mismatched: Sequence[str]
) -> record.Record:
    """The results record: per (workload, handler) the ns/op and peak RSS of every repeat."""
    cells = [
        record.Cell(
            r.workload,
            r.handler,
            {
                "ns_per_op": record.Metric(list(r.ns_per_op), "ns/op"),
                "peak_rss": record.Metric([float(x) for x in r.peak_rss], "B"),
            },
        )
        for r in results
    ]
    saved = record.Record(
        COMMAND,
        list(argv),
        config,
        datetime.now().astimezone().isoformat(timespec="seconds"),
        machine.describe(),
        cells,
        baseline_allocator=BASELINE,
        details={COMMAND: {"checksum_mismatches": list(mismatched)}},
    )
    record.judge(saved)
    return saved


def _report(results: Sequence[NumpyResult], workloads: Sequence[str], handlers: Sequence[str]) -> str:
    cell = {(r.handler, r.workload): r for r in results}
    lines = [
        "| workload | " + " | ".join(handlers) + " |",
        "|---|" + "---:|" * len(handlers),
    ]
    for w in workloads:
        base = cell[(BASELINE, w)].median_ns
        row = [
            f"{units.ns(cell[(h, w)].median_ns)} ns ({units.speedup(base / cell[(h, w)].median_ns)})"
            for h in handlers
        ]
        lines.append(f"| {w} | " + " | ".join(row) + " |")
    lines += ["", "Peak RSS (vs NumPy's default):", "", lines[0], lines[1]]
    for w in workloads:
        base_rss = max(cell[(BASELINE, w)].peak_rss)
        row = [
            f"{units.size(max(cell[(h, w)].peak_rss))} ({max(cell[(h, w)].peak_rss) / base_rss:.2f}x)"
            for h in handlers
        ]
        lines.append(f"| {w} | " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        print(
            "usage: python -m allocffi.harness.numpy_bench.command --worker HANDLER WORKLOAD ITERATIONS",
            file=sys.stderr,
        )
        sys.exit(2)
