"""Helpers shared by the trace tests: building the test programs, running the CLI, writing traces."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "trace_programs"
SHIPPED = ROOT / "bench" / "traces"


def build_program(name: str, out_dir: Path) -> Path:
    """Compile tests/trace_programs/NAME.c without optimisation, so the compiler keeps every call."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build the trace test programs")
    exe = out_dir / name
    subprocess.run(
        [cc, "-O0", "-fno-builtin", "-pthread", "-o", str(exe), str(PROGRAMS / f"{name}.c")],
        check=True,
        capture_output=True,
    )
    return exe


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m allocffi ARGS`` in a child, from the source tree."""
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "allocffi", *args],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout,
    )


def info_json(path: Path | str) -> dict[str, Any]:
    result = cli("trace", "info", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def own_counts(process: dict[str, Any]) -> dict[str, int]:
    """The program's own calls: every call minus those libc and the loader made."""
    return {c: n - process["runtime_calls"][c] for c, n in process["counts"].items()}


def trace_bytes(events: bytes, *, objects: int, calls: int, threads: int = 1, version: int = 1) -> bytes:
    """A trace file around hand-encoded events (format.h)."""
    header = b"AFTRACE\n" + struct.pack("<IIIIQQQQII", version, 0, 1, 0, 0, calls, objects, 0, threads, 0)
    return header + events + bytes([0x0F])  # TR_EXT END


def replay_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells of a `trace replay` results record, each with its allocator and its details."""
    return [{"allocator": c["allocator"], **c["details"]["trace replay"]} for c in data["results"]]
