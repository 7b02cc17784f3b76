"""Planning and running the engine in fresh child processes.

Every (allocator, workload, repeat) is one child (the C worker ``_engine_worker``,
or ``allocffi.harness.bench.worker`` for a user's workload)
so no heap state, cached mapping or thread cache leaks from one allocator
into another. Within a repeat, all allocators of a workload run back to back
and their order rotates from one repeat to the next: a burst of machine noise
then hits every allocator alike instead of one of them.

Invariants: every allocator of a workload runs the same ``ops`` with the same
seed (so checksums must agree); the child always starts with the
GLIBC_TUNABLES jemalloc needs; a child that crashes, hangs or prints no
result raises ``BenchFailure`` with what it said.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allocffi._startup import child_environment
from allocffi.harness.bench import catalog
from allocffi.harness.bench.worker import describe_record
from allocffi.harness.core import interleave
from allocffi.harness.core.errors import BenchFailure, UsageError

# A child that has not finished after this long is stuck, not slow.
RUN_TIMEOUT_S = 600.0
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RunSpec:
    """One engine run: what the child is told to do."""

    allocator: str  # a competitor name (catalog.py): "jemalloc-arena+reset" is arena mode
    workload: str
    repeat: int  # 0-based; -1 for runs outside the repeats (overhead, calibration)
    ops: int  # > 0, or 0 to run for time_budget_ns
    seed: int
    time_budget_ns: int = 0
    workload_spec: str = ""  # a user's workload (WorkloadSpec.to_json); "" for the engine's own
    direct: bool = False  # the library called without the vtable (calibration; fixed-N only)


@dataclass(frozen=True)
class RunRecord:
    """One engine run and what it measured (the af_bench_result fields)."""

    spec: RunSpec
    result: Mapping[str, Any]

    @property
    def ns_per_op(self) -> float:
        return float(self.result["ns_per_op"])

    @property
    def checksum(self) -> int:
        return int(self.result["checksum"])

    @property
    def ops(self) -> int:
        return int(self.result["ops"])


def _package_root() -> str:
    """The directory that holds the ``allocffi`` package (for PYTHONPATH)."""
    return str(Path(__file__).resolve().parents[3])


def worker_environment() -> dict[str, str]:
    """Child environment: jemalloc's tunable, and this very allocffi importable."""
    env = child_environment()
    paths = [_package_root(), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


# The C worker (csrc/engine/worker/engine_worker.c), built beside this file by setup.py: the same
# run and the same JSON line as the Python worker, without ~70 ms of interpreter start-up.
ENGINE_WORKER = Path(__file__).resolve().parent / "_engine_worker"


def worker_command(spec: RunSpec) -> list[str]:
    """The child's command line: the C worker for the engine's own workloads, the Python worker
    for a user's workload (its spec is JSON) or where the C worker was not built."""
    allocator, mode = catalog.engine_run(spec.allocator, spec.workload)
    args = [
        "--allocator",
        allocator,
        "--workload",
        spec.workload,
        "--ops",
        str(spec.ops),
        "--time-budget-ns",
        str(spec.time_budget_ns),
        "--seed",
        str(spec.seed),
        "--mode",
        mode,
        *(["--direct"] if spec.direct else []),
    ]
    if not spec.workload_spec and os.access(ENGINE_WORKER, os.X_OK):
        return [str(ENGINE_WORKER), *args]
    custom = ["--workload-spec", spec.workload_spec] if spec.workload_spec else []
    return [sys.executable, "-m", "allocffi.harness.bench.worker", *args, *custom]


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            import signal

            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class WorkerRefused(BenchFailure):
    """The worker ran, and the native library refused the run: ``payload`` is its error line."""

    def __init__(self, message: str, payload: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.payload = payload


def run_worker(
    command: Sequence[str],
    env: Mapping[str, str],
    timeout_s: float,
    what: str,
    refusal: str = "the engine refused the run",
) -> dict[str, Any]:
    """Run one worker child and return its JSON result line.

    BenchFailure when it hangs past ``timeout_s``, crashes or prints no result;
    WorkerRefused (a BenchFailure) when it printed an ``{"error": ...}`` line.
    """
    try:
        proc = subprocess.run(
            list(command), env=dict(env), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchFailure(f"{what}: no result after {timeout_s:.0f} s (the worker was stopped)") from exc
    payload = _last_json_line(proc.stdout)
    if proc.returncode == 0 and payload is not None and "error" not in payload:
        return payload
    if payload is not None and "error" in payload:
        raise WorkerRefused(f"{what}: {refusal}: {payload['error']}", payload)
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise BenchFailure(f"{what}: worker failed ({_describe_exit(proc.returncode)}): {tail}")


def run_child(spec: RunSpec, env: Mapping[str, str] | None = None) -> RunRecord:
    """Run one spec in a fresh process and return its record."""
    what = f"{spec.allocator}{' (direct)' if spec.direct else ''} on {spec.workload}"
    payload = run_worker(
        worker_command(spec), env if env is not None else worker_environment(), RUN_TIMEOUT_S, what
    )
    return RunRecord(spec, describe_record(payload))


@dataclass(frozen=True)
class Capabilities:
    """What the native library offers in a child process."""

    available: Mapping[str, bool]  # competitor names too: "jemalloc-arena+reset"
    reasons: Mapping[str, str]  # empty for available allocators
    workloads: Mapping[str, str]  # name -> description, in engine order
    caps: Mapping[str, int] = field(default_factory=dict)  # allocator -> AF_CAP_* bits (available ones)
    shared_refused: Mapping[str, str] = field(default_factory=dict)  # allocator -> why not shared-threads-N

    @property
    def competitors(self) -> list[str]:
        """Every available competitor in catalog order, each NAME+reset after its NAME."""
        return [
            c
            for name in catalog.SELECTABLE
            if self.available.get(name, False)
            for c in catalog.competitors(name, self.caps.get(name, 0))
        ]


def probe(env: Mapping[str, str] | None = None) -> Capabilities:
    """Ask a child which allocators load and which workloads exist."""
    cmd = [sys.executable, "-m", "allocffi.harness.bench.worker", "--probe"]
    try:
        proc = subprocess.run(
            cmd,
            env=dict(env) if env is not None else worker_environment(),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise UsageError(
            "the native library did not answer within a minute"
            " (python -m allocffi.harness.bench.worker --probe)"
        ) from exc
    payload = _last_json_line(proc.stdout)
    if proc.returncode != 0 or payload is None:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        if "allocffi.harness._engine" in proc.stderr or "No module named" in proc.stderr:
            raise UsageError(
                f"the harness's native module allocffi.harness._engine cannot be loaded ({tail}); "
                "build it with `make build`"
            )
        raise UsageError(f"cannot load the native library: {tail}")
    allocators = payload["allocators"]
    available = {name: bool(info["available"]) for name, info in allocators.items()}
    reasons = {name: str(info["reason"]) for name, info in allocators.items()}
    caps = {name: int(info.get("caps", 0)) for name, info in allocators.items() if available[name]}
    shared_refused = dict(payload.get("shared_refused", {}))
    for name, bits in caps.items():
        for extra in catalog.competitors(name, bits)[1:]:
            available[extra], reasons[extra] = True, ""
            # the engine runs a shared instance in free mode only: it cannot be reset under the
            # other threads' blocks
            shared_refused[extra] = shared_refused.get(name) or (
                "arena mode resets the instance, which a shared instance cannot do under the other threads"
            )
    return Capabilities(
        available=available,
        reasons=reasons,
        workloads={w["name"]: w["description"] for w in payload["workloads"]},
        caps=caps,
        shared_refused=shared_refused,
    )


def plan(
    allocators: Sequence[str],
    workloads: Sequence[str],
    ops: Mapping[str, int],
    repeat: int,
    seed: int,
    custom: Mapping[str, str] | None = None,
    runs_on: Callable[[str, str], bool] = catalog.runs_on,
) -> list[RunSpec]:
    """All measured runs, repeat by repeat, allocators rotating within each workload.

    ``custom`` maps a user's workload to its spec JSON; ``runs_on`` says which
    (allocator, workload) pairs run at all.
    """
    custom = custom or {}
    specs: list[RunSpec] = []
    for r in range(repeat):
        for workload in workloads:
            members = [a for a in allocators if runs_on(a, workload)]
            if not members:
                continue
            for allocator in interleave.rotated(members, r):
                spec = RunSpec(allocator, workload, r, ops[workload], seed, 0, custom.get(workload, ""))
                specs.append(spec)
    return specs


def overhead_plan(
    workloads: Sequence[str], ops: Mapping[str, int], seed: int, custom: Mapping[str, str] | None = None
) -> list[RunSpec]:
    """One run of the null allocator per workload: the engine's own cost."""
    custom = custom or {}
    return [RunSpec(catalog.NULL, w, -1, ops[w], seed, 0, custom.get(w, "")) for w in workloads]


Progress = Callable[[RunSpec, RunRecord], None]


def execute(
    specs: Sequence[RunSpec], on_done: Progress | None = None, env: Mapping[str, str] | None = None
) -> Iterator[RunRecord]:
    """Run the specs one after the other (never in parallel: they would share cores)."""
    child_env = dict(env) if env is not None else worker_environment()
    for spec in specs:
        record = run_child(spec, child_env)
        if on_done is not None:
            on_done(spec, record)
        yield record
