"""The child process of the harness: one engine run, one JSON line.

    python -m allocffi.bench.worker --allocator X --workload Y --ops N --seed S
    python -m allocffi.bench.worker --allocator X --workload-spec JSON --ops N
    python -m allocffi.bench.worker --probe

A run prints the fields of ``af_bench_result`` (``stats`` as a nested
object; ``touch`` as its policy name, plus ``sharing``) as one JSON line on
stdout and exits 0. When the engine refuses the run it prints
``{"error": ...}`` and exits 1. ``--workload-spec`` runs a user's workload
(the JSON of ``workload_file.WorkloadSpec.to_json``) instead of a named one.
``--probe`` prints which allocators this process can load (and why not), the
engine's workloads with their descriptions, and why an allocator cannot run
shared-threads-N.

Invariant: the worker does nothing but the run between loading the library
and printing, so the numbers are those of a fresh process. The parent must
start it with GLIBC_TUNABLES from ``allocffi._startup.child_environment`` from allocffi._startup (jemalloc).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from allocffi.bench import catalog, workload_file
from allocffi.bench.catalog import MMAP, NULL, SELECTABLE
from allocffi.bench.errors import UsageError

EXIT_ENGINE_ERROR = 1
# The workload name the probe asks about for every shared-threads-N.
SHARED_PROBE = b"shared-threads-2"


def _load() -> tuple[Any, Any]:
    from allocffi._native import ffi, lib

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
            "kernel": workload_file.KERNELS.index(spec.kernel),
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
    spec: workload_file.WorkloadSpec | None = None,
) -> dict[str, Any]:
    """Run the engine once in this process (``spec``: a user's workload); RuntimeError on refusal."""
    ffi, lib = _load()
    workload_c = ffi.new("char[]", workload.encode())
    allocator_c = ffi.new("char[]", allocator.encode())
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
        },
    )
    result = ffi.new("af_bench_result *")
    err = ffi.new("af_error *")
    status = lib.af_bench_run(config, result, err)
    del keep_alive
    if status != 0:
        message = _error_text(ffi, err) or str(ffi.string(lib.af_status_text(status)).decode())
        raise RuntimeError(f"[{status}] {message}")
    record: dict[str, Any] = cdata_to_python(ffi, result[0])
    record["touch"] = catalog.TOUCH_POLICIES[record["touch"]]
    record["sharing"] = catalog.sharing(bool(record.pop("shared")), int(record["threads"]))
    record["process_peak_rss_bytes"] = process_peak_rss()
    return record


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
        allocators[name] = {"available": status == 0, "reason": reason}
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
        prog="python -m allocffi.bench.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--probe", action="store_true", help="print availability and workloads, then exit")
    parser.add_argument("--allocator")
    parser.add_argument("--workload")
    parser.add_argument("--ops", type=int, default=0)
    parser.add_argument("--time-budget-ns", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workload-spec", help="a user's workload as JSON (instead of a named one)")
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe()), flush=True)
        return 0
    if not args.allocator or not args.workload:
        parser.error("--allocator and --workload are required (or --probe)")
    try:
        spec = workload_file.from_json(args.workload_spec) if args.workload_spec else None
        record = run_once(args.allocator, args.workload, args.ops, args.time_budget_ns, args.seed, spec)
    except (RuntimeError, ValueError, UsageError) as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return EXIT_ENGINE_ERROR
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
