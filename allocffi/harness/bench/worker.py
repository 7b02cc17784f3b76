"""The Python child process of the harness: one engine run, one JSON line.

    python -m allocffi.harness.bench.worker --allocator X --workload Y --ops N --seed S --mode auto|free|arena
    python -m allocffi.harness.bench.worker --allocator X --workload-spec JSON --ops N --mode auto|free|arena
    python -m allocffi.harness.bench.worker --probe

The engine's own workloads run in the C worker (csrc/engine/worker/engine_worker.c,
``allocffi/harness/core/_engine_worker``), which prints the same line without an
interpreter's start-up; this worker runs a user's workloads (``--workload-spec``,
the JSON of ``workload_file.WorkloadSpec.to_json``), answers ``--probe``, and
stands in for the C worker where it was not built. X is an allocator name (the
runner turns a competitor such as ``jemalloc-arena+reset`` into X and a mode);
``--direct`` runs the calibration loop instead (the library called without
allocffi's vtable; fixed-N only).

A run prints the fields of ``af_bench_result`` under their C names (``stats``
as a nested object), plus ``process_peak_rss_bytes``, as one JSON line on stdout
and exits 0; ``describe_record`` (called by the parent) names the touch policy,
mode and sharing and adds ``rss_per_live_byte``. When the engine refuses the run
it prints ``{"error": ...}`` and exits 1. ``--probe`` prints which allocators this
process can load (and why not) with their AF_CAP_* bits, the engine's workloads
with their descriptions, and why an allocator cannot run shared-threads-N.

Invariant: the worker does nothing but the run between loading the library
and printing, so the numbers are those of a fresh process. The parent must
start it with GLIBC_TUNABLES from ``allocffi._startup.child_environment`` (jemalloc).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from allocffi.harness.bench import catalog
from allocffi.harness.bench.catalog import ENGINE_MODES, MMAP, NULL, SELECTABLE
from allocffi.harness.core.errors import UsageError

if TYPE_CHECKING:  # the worker imports the workload-file reader only for a user's workload
    from allocffi.harness.bench import workload_file

EXIT_ENGINE_ERROR = 1
# The workload name the probe asks about for every shared-threads-N.
SHARED_PROBE = b"shared-threads-2"


def _load() -> tuple[Any, Any]:
    from allocffi.harness._engine import ffi, lib

    return ffi, lib


def cdata_to_python(ffi: Any, value: Any) -> Any:
    """Convert a cffi struct (recursively) to a dict; leave scalars alone."""
    if not isinstance(value, ffi.CData):
        return value
    ctype = ffi.typeof(value)
    if ctype.kind != "struct":
        raise TypeError(f"unexpected field type {ctype.cname} in af_bench_result")
    return {name: cdata_to_python(ffi, getattr(value, name)) for name, _field in ctype.fields}


def _error_text(ffi: Any, err: Any) -> str:
    return str(ffi.string(err.message).decode("utf-8", "replace"))


def spec_to_c(ffi: Any, spec: workload_file.WorkloadSpec) -> tuple[Any, list[Any]]:
    """An ``af_workload_spec *`` for the spec, and the cdata that must outlive it."""
    from allocffi.harness.bench.workload_file import KERNELS

    entries = ffi.new("af_size_entry[]", len(spec.sizes))
    for entry, size in zip(entries, spec.sizes, strict=True):
        entry.min, entry.max, entry.weight = size.min, size.max, size.weight
        entry.median = size.median or 0.0
        entry.sigma = size.sigma or 0.0
    name = ffi.new("char[]", spec.name.encode())
    c_spec = ffi.new(
        "af_workload_spec *",
        {
            "name": name,
            "kernel": KERNELS.index(spec.kernel),
            "sizes": entries,
            "size_count": len(spec.sizes),
            "live": spec.live or 0,
            "phase": spec.phase,
            "touch": catalog.TOUCH_POLICIES.index(spec.touch),
            "threads": spec.threads or 0,
        },
    )
    return c_spec, [entries, name]


def run_once(
    allocator: str,
    workload: str,
    ops: int,
    time_budget_ns: int,
    seed: int,
    mode: str = "auto",
    spec: workload_file.WorkloadSpec | None = None,
    direct: bool = False,
) -> dict[str, Any]:
    """Run the engine once in this process (``mode``: one of ENGINE_MODES; ``spec``: a user's
    workload; ``direct``: the calibration loop instead); RuntimeError on refusal."""
    ffi, lib = _load()
    workload_c = ffi.new("char[]", workload.encode())
    allocator_c = ffi.new("char[]", allocator.encode())
    result = ffi.new("af_bench_result *")
    err = ffi.new("af_error *")
    reset_peak_rss()
    if direct:
        status = lib.af_calibrate_direct(allocator_c, workload_c, ops, seed, result, err)
    else:
        c_spec, keep_alive = spec_to_c(ffi, spec) if spec is not None else (ffi.NULL, [])
        config = ffi.new(
            "af_bench_config *",
            {
                "workload": workload_c,
                "allocator": allocator_c,
                "ops": ops,
                "time_budget_ns": time_budget_ns,
                "seed": seed,
                "spec": c_spec,
                "mode": ENGINE_MODES.index(mode),
            },
        )
        status = lib.af_bench_run(config, result, err)
        del keep_alive
    if status != 0:
        message = _error_text(ffi, err) or str(ffi.string(lib.af_status_text(status)).decode())
        raise RuntimeError(f"[{status}] {message}")
    record: dict[str, Any] = cdata_to_python(ffi, result[0])
    record["process_peak_rss_bytes"] = process_peak_rss()
    return record


def describe_record(record: dict[str, Any]) -> dict[str, Any]:
    """A worker's raw line (either worker) as the harness keeps it: the touch policy, mode and
    sharing by name, and rss_per_live_byte."""
    described = dict(record)
    described["touch"] = catalog.TOUCH_POLICIES[int(record["touch"])]
    described["sharing"] = catalog.sharing(bool(described.pop("shared")), int(record["threads"]))
    described["mode"] = ENGINE_MODES[int(record["mode"])]  # the mode the run used: free or arena
    described["rss_per_live_byte"] = rss_per_live_byte(described)
    return described


def reset_peak_rss() -> None:
    """Start this process's peak RSS (VmHWM) afresh, so it is the run's peak (Linux >= 4.0;
    best effort: where /proc/self/clear_refs cannot be written the peak includes start-up)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def rss_per_live_byte(record: dict[str, Any]) -> float | None:
    """(peak RSS - RSS before the run) / the peak of live bytes (requested sizes), or None when
    nothing was live or the peak RSS is unknown: how much memory the allocator kept resident
    per byte the workload held at most."""
    peak_live = int(record["stats"]["peak_bytes_in_use"])
    peak_rss = record.get("process_peak_rss_bytes") or record.get("peak_rss_bytes")
    if peak_live <= 0 or not peak_rss:
        return None
    return max(0, int(peak_rss) - int(record["rss_before_bytes"])) / peak_live


def process_peak_rss() -> int | None:
    """VmHWM of this process: its own peak RSS.

    Unlike getrusage's ru_maxrss, which survives fork+exec and so starts at the
    parent's RSS, the high-water mark belongs to the process image.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def probe() -> dict[str, Any]:
    """What this process can run: allocator availability and the workloads."""
    ffi, lib = _load()
    allocators = {}
    for name in (*SELECTABLE, NULL):
        err = ffi.new("af_error *")
        status = lib.af_available(name.encode(), err)
        reason = (
            "" if status == 0 else (_error_text(ffi, err) or ffi.string(lib.af_status_text(status)).decode())
        )
        caps = 0
        if status == 0:
            instance = lib.af_create(name.encode(), err)
            if instance == ffi.NULL:
                status, reason = err.code or 1, _error_text(ffi, err)
            else:
                caps = int(lib.af_caps(instance))
                lib.af_destroy(instance)
        allocators[name] = {"available": status == 0, "reason": reason, "caps": caps}
    # Why an allocator cannot run shared-threads-N: the engine's own answer.
    shared_refused = {}
    for name, info in allocators.items():
        if not info["available"]:
            continue
        err = ffi.new("af_error *")
        workload_c, allocator_c = ffi.new("char[]", SHARED_PROBE), ffi.new("char[]", name.encode())
        config = ffi.new("af_bench_config *", {"workload": workload_c, "allocator": allocator_c})
        if lib.af_bench_check(config, err) != 0:
            shared_refused[name] = _error_text(ffi, err)
    workloads = []
    for index in range(lib.af_bench_workload_count()):
        workloads.append(
            {
                "name": ffi.string(lib.af_bench_workload_name(index)).decode(),
                "description": ffi.string(lib.af_bench_workload_description(index)).decode(),
            }
        )
    return {"allocators": allocators, "workloads": workloads, "mmap": MMAP, "shared_refused": shared_refused}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m allocffi.harness.bench.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--probe", action="store_true", help="print availability and workloads, then exit")
    parser.add_argument("--allocator")
    parser.add_argument("--workload")
    parser.add_argument("--ops", type=int, default=0)
    parser.add_argument("--time-budget-ns", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=ENGINE_MODES, default="auto", help="the engine's run mode")
    parser.add_argument("--workload-spec", help="a user's workload as JSON (instead of a named one)")
    parser.add_argument("--direct", action="store_true", help="the calibration loop, without the vtable")
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe()), flush=True)
        return 0
    if not args.allocator or not args.workload:
        parser.error("--allocator and --workload are required (or --probe)")
    try:
        spec = None
        if args.workload_spec:
            from allocffi.harness.bench.workload_file import from_json

            spec = from_json(args.workload_spec)
        record = run_once(
            args.allocator,
            args.workload,
            args.ops,
            args.time_budget_ns,
            args.seed,
            args.mode,
            spec,
            args.direct,
        )
    except (RuntimeError, ValueError, UsageError) as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return EXIT_ENGINE_ERROR
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
