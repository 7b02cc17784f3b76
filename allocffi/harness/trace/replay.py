"""``allocffi trace replay``: a trace replayed in C on every allocator, each run a fresh process.

Every (trace, allocator, repeat) runs in its own ``allocffi.harness.trace.worker`` child, as ``allocffi
bench`` does, with the allocators' order rotating from one repeat to the next. A result per
(trace, allocator) holds the median ns per replayed call over the repeats, the peak RSS the replay
added above its own tables (median), the trace's ideal (peak live bytes) and their ratio, minor
faults, and the verdict of ``compare_samples`` against libc's repeats.

Invariants: every allocator of one trace replays the same calls, so their checksums must agree
(the null baseline excepted: it hands out one buffer for everything); a disagreement fails the
run (exit 1). An allocator that is bound to its creating thread cannot run ``--threads threads``
and is reported as skipped, never silently dropped.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from allocffi.harness.bench import catalog
from allocffi.harness.core import arguments, children, interleave
from allocffi.harness.core.errors import UsageError
from allocffi.harness.core.significance import compare_samples
from allocffi.harness.trace import files, native
from allocffi.interface import Capability

AF_ERR_THREAD = 9  # af_status: the allocator is bound to its creating thread
REPLAY_TIMEOUT_S = 900.0
# Threads mode starts one thread per recorded thread, at most this many (REPLAY_MAX_THREADS of
# csrc/engine/replay.c, which refuses more on its own; checked here so nothing runs first).
REPLAY_MAX_THREADS = 1024


@dataclass(frozen=True)
class ReplaySpec:
    trace: str
    allocator: str
    repeat: int


@dataclass
class ReplayResult:
    """One (trace, allocator) over its repeats."""

    trace: str
    allocator: str
    ns_per_event: float  # median over repeats
    samples: list[float]
    events: int  # calls replayed per run
    checksum: int
    peak_live_bytes: int  # the ideal: the trace's peak of live requested bytes
    heap_peak_rss_bytes: int  # median of (peak RSS during the replay - RSS before it)
    peak_rss_bytes: int  # median of the worker's peak RSS (tables and interpreter included)
    rss_vs_ideal: float  # heap_peak_rss_bytes / peak_live_bytes
    minor_faults: int
    threads: int
    frees_ignored: bool
    os_bytes: int  # ours: bytes mapped at the end (median); the bump arena's footprint
    capacity_bytes: int  # bump: bytes of its chunks
    verdict: str = ""  # vs libc, from compare_samples
    ratio_vs_libc: float | None = None
    heap_samples: list[float] = field(default_factory=list)  # heap peak RSS of each repeat
    fault_samples: list[float] = field(default_factory=list)  # minor faults of each repeat

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReplayOutcome:
    results: list[ReplayResult]
    skipped: dict[str, str] = field(default_factory=dict)  # allocator -> why
    mismatches: list[str] = field(default_factory=list)


def worker_command(spec: ReplaySpec, touch: str, mode: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "allocffi.harness.trace.worker",
        "--trace",
        spec.trace,
        "--allocator",
        spec.allocator,
        "--touch",
        touch,
        "--mode",
        mode,
    ]


class SkipAllocator(Exception):
    """The allocator cannot run this replay (thread-bound in threads mode)."""


def run_child(spec: ReplaySpec, touch: str, mode: str, env: Mapping[str, str]) -> dict[str, Any]:
    what = f"{spec.allocator} replaying {spec.trace}"
    try:
        return children.run_worker(
            worker_command(spec, touch, mode), env, REPLAY_TIMEOUT_S, what, "the replay was refused"
        )
    except children.WorkerRefused as exc:
        if exc.payload.get("code") == AF_ERR_THREAD:
            raise SkipAllocator(str(exc.payload["error"])) from exc
        raise


def plan(traces: Sequence[str], allocators: Sequence[str], repeat: int) -> list[ReplaySpec]:
    specs: list[ReplaySpec] = []
    for r in range(repeat):
        for trace in traces:
            specs.extend(ReplaySpec(trace, a, r) for a in interleave.rotated(allocators, r))
    return specs


def _median_int(values: Sequence[int]) -> int:
    return int(statistics.median(values))


def summarize(trace: str, allocator: str, runs: Sequence[Mapping[str, Any]]) -> ReplayResult:
    samples = [float(r["ns_per_event"]) for r in runs]
    first = runs[0]
    heaps = [max(0, int(r["peak_rss_bytes"]) - int(r["rss_before_bytes"])) for r in runs]
    faults = [int(r["minor_faults"]) for r in runs]
    heap = _median_int(heaps)
    ideal = int(first["peak_live_bytes"])
    return ReplayResult(
        trace=trace,
        allocator=allocator,
        ns_per_event=statistics.median(samples),
        samples=samples,
        events=int(first["events"]),
        checksum=int(first["checksum"]),
        peak_live_bytes=ideal,
        heap_peak_rss_bytes=heap,
        peak_rss_bytes=_median_int(
            [int(r.get("process_peak_rss_bytes") or r["peak_rss_bytes"]) for r in runs]
        ),
        rss_vs_ideal=heap / ideal if ideal else 0.0,
        minor_faults=_median_int(faults),
        threads=int(first["threads"]),
        frees_ignored=bool(first["frees_ignored"]),
        os_bytes=_median_int([int(r["stats"]["os_bytes"]) for r in runs]),
        capacity_bytes=_median_int([int(r["stats"]["capacity_bytes"]) for r in runs]),
        heap_samples=[float(h) for h in heaps],
        fault_samples=[float(f) for f in faults],
    )


def fill_verdicts(results: Sequence[ReplayResult]) -> None:
    """Each allocator against libc on the same trace (lower ns/event is better)."""
    base = {r.trace: r for r in results if r.allocator == catalog.BASELINE}
    for r in results:
        libc = base.get(r.trace)
        if libc is None or r is libc:
            continue
        verdict = compare_samples(libc.samples, r.samples)
        r.ratio_vs_libc = verdict.ratio
        r.verdict = verdict.label


def checksum_mismatches(
    results: Sequence[ReplayResult], runs: Mapping[tuple[str, str], list[int]]
) -> list[str]:
    problems = []
    for trace in dict.fromkeys(r.trace for r in results):
        seen: dict[int, list[str]] = {}
        for (t, allocator), sums in runs.items():
            if t != trace or allocator == catalog.NULL:
                continue
            for s in set(sums):
                seen.setdefault(s, []).append(allocator)
        if len(seen) > 1:
            parts = "; ".join(f"{s:#x}: {', '.join(names)}" for s, names in seen.items())
            problems.append(f"{trace}: allocators disagree on the checksum ({parts})")
    return problems


Progress = Callable[[ReplaySpec, Mapping[str, Any] | None], None]


def replay(
    path: str | Path,
    allocators: Sequence[str],
    repeat: int,
    touch: str,
    mode: str,
    on_done: Progress | None = None,
) -> ReplayOutcome:
    """Validate the traces, then run every (trace, allocator, repeat) in a fresh worker."""
    arguments.REPEAT.check("--repeat", repeat)
    traces = [str(p) for p in files.resolve(path)]
    for trace in traces:
        summary = native.summarize(trace)  # a bad file is a usage error before anything runs
        if mode == "threads" and summary["threads"] > REPLAY_MAX_THREADS:
            raise UsageError(
                f"{trace}: {summary['threads']} recorded threads; --threads threads replays at most "
                f"{REPLAY_MAX_THREADS} (one thread each): use --threads serial"
            )
    env = children.worker_environment()
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    for spec in plan(traces, allocators, repeat):
        if spec.allocator in skipped:
            continue
        try:
            payload = run_child(spec, touch, mode, env)
        except SkipAllocator as exc:
            skipped[spec.allocator] = str(exc)
            continue
        runs.setdefault((spec.trace, spec.allocator), []).append(payload)
        if on_done is not None:
            on_done(spec, payload)
    results = [summarize(t, a, rs) for (t, a), rs in runs.items()]
    order = {a: i for i, a in enumerate(allocators)}
    results.sort(key=lambda r: (traces.index(r.trace), order[r.allocator]))
    fill_verdicts(results)
    sums = {key: [int(r["checksum"]) for r in rs] for key, rs in runs.items()}
    return ReplayOutcome(results, skipped, checksum_mismatches(results, sums))


def selectable() -> tuple[str, ...]:
    return (*catalog.ALLOCATORS, catalog.MMAP, catalog.NULL)


def choose_allocators(
    requested: Sequence[str] | None, mode: str = "serial"
) -> tuple[list[str], dict[str, str]]:
    """The allocators to run (requested, or every available one) and the ones left out with why.

    A requested allocator that cannot run here is a UsageError, and so is a thread-bound one
    (mimalloc-heap) in threads mode: it can only allocate on the thread that created it.
    """
    names = selectable()
    if requested:
        unknown = [a for a in requested if a not in names]
        if unknown:
            raise UsageError(f"unknown allocator {', '.join(unknown)}; valid: {', '.join(names)}")
    caps = children.probe()
    wanted = list(dict.fromkeys(requested)) if requested else list(catalog.ALLOCATORS)
    missing = {a: caps.reasons.get(a, "unavailable") for a in wanted if not caps.available.get(a, False)}
    if requested and missing:
        name, why = next(iter(missing.items()))
        raise UsageError(f"allocator {name} is not available here: {why}")
    if mode == "threads":
        for name in wanted:
            if name not in missing and caps.caps.get(name, 0) & Capability.THREAD_BOUND.value:
                if requested:
                    raise UsageError(
                        f"allocator {name} is bound to the thread that created it, so it cannot replay "
                        "--threads threads: use --threads serial, or leave it out"
                    )
                missing[name] = "bound to the thread that created it: replays only with --threads serial"
    chosen = [a for a in wanted if a not in missing]
    if not chosen:
        raise UsageError(
            "no allocator can run this replay: " + "; ".join(f"{a}: {w}" for a, w in missing.items())
        )
    return chosen, missing
