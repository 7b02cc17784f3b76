"""The C engine worker prints exactly what the Python worker prints, and the runner uses it.

The harness starts one child per (allocator, workload, repeat); for the engine's own workloads
that child is ``allocffi/harness/core/_engine_worker`` (no interpreter start-up), for a user's workload
the Python worker. Both must give the same record, so reports cannot depend on which ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from allocffi.harness._engine import ffi
from allocffi.harness.core import children
from allocffi.harness.core.children import ENGINE_WORKER, RunSpec

ARGS = ["--workload", "mixed", "--ops", "20000", "--time-budget-ns", "0", "--seed", "7", "--mode", "auto"]


def struct_keys(ctype: Any) -> dict[str, Any]:
    """Field names of a cffi struct type, nested structs as dicts."""
    return {
        name: struct_keys(field.type) if field.type.kind == "struct" else None for name, field in ctype.fields
    }


def record_keys(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record_keys(v) if isinstance(v, dict) else None for k, v in record.items()}


def run(command: list[str]) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        command, env=children.worker_environment(), capture_output=True, text=True, timeout=120, check=False
    )
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def c_worker(*args: str) -> list[str]:
    return [str(ENGINE_WORKER), *args]


def py_worker(*args: str) -> list[str]:
    return [sys.executable, "-m", "allocffi.harness.bench.worker", *args]


def test_the_c_worker_is_built() -> None:
    assert os.access(ENGINE_WORKER, os.X_OK), f"{ENGINE_WORKER} is missing: run `make build`"


@pytest.mark.parametrize("allocator", ["libc", "slab", "bump"])
def test_both_workers_print_the_same_record(allocator: str) -> None:
    c_code, c_record = run(c_worker("--allocator", allocator, *ARGS))
    py_code, py_record = run(py_worker("--allocator", allocator, *ARGS))
    assert (c_code, py_code) == (0, 0)
    expected = {**struct_keys(ffi.typeof("af_bench_result")), "process_peak_rss_bytes": None}
    assert record_keys(c_record) == expected
    assert record_keys(py_record) == expected
    for key in ("checksum", "ops", "bytes_requested", "threads", "touch", "shared", "mode"):
        assert c_record[key] == py_record[key], key
    for key in ("allocs", "frees", "resets", "peak_bytes_in_use"):
        assert c_record["stats"][key] == py_record["stats"][key], key


def test_direct_and_arena_modes_reach_the_engine() -> None:
    code, direct = run(c_worker("--allocator", "libc", *ARGS[:-2], "--workload", "fixed-48", "--direct"))
    assert code == 0 and direct["ops"] == 20000
    code, arena = run(c_worker("--allocator", "jemalloc-arena", *ARGS[:-2], "--mode", "arena"))
    assert code == 0 and arena["mode"] == 2 and arena["stats"]["resets"] > 0


def test_a_refused_run_is_a_json_error_and_exit_1() -> None:
    code, record = run(c_worker("--allocator", "no-such", *ARGS))
    assert code == 1 and "unknown allocator 'no-such'" in record["error"]


@pytest.mark.parametrize(
    "args",
    [
        ["--workload", "fixed-48"],
        ["--allocator", "libc", "--workload", "fixed-48", "--ops", "-1"],
        ["--allocator", "libc", "--workload", "fixed-48", "--mode", "fast"],
        ["--allocator", "libc", "--workload", "fixed-48", "--bogus", "1"],
        ["--allocator"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    proc = subprocess.run(c_worker(*args), capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "usage: _engine_worker" in proc.stderr and proc.stdout == ""


def test_the_runner_picks_the_worker_by_workload() -> None:
    named = children.worker_command(RunSpec("jemalloc-arena+reset", "fixed-48", 0, 1000, 1))
    assert named[0] == str(ENGINE_WORKER)
    assert named[named.index("--allocator") + 1] == "jemalloc-arena"
    assert named[named.index("--mode") + 1] == "arena"
    custom = children.worker_command(RunSpec("libc", "mine", 0, 1000, 1, 0, '{"name": "mine"}'))
    assert (
        custom[:3] == [sys.executable, "-m", "allocffi.harness.bench.worker"] and "--workload-spec" in custom
    )


def test_records_name_their_mode_touch_and_sharing() -> None:
    record = children.run_child(RunSpec("mimalloc-heap+reset", "large-pages", 0, 200, 3))
    assert (record.result["mode"], record.result["touch"]) == ("arena", "pages")
    assert record.result["sharing"] == "one thread"
