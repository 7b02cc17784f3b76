"""Trace files: bad input, fuzzed files, the shipped traces, memray import.

Every bad file must give one clear line naming the file and the offset, and exit status 2, from
both ``trace info`` and ``trace replay``; never a crash or a traceback. The C reader validates the
whole file before anything is timed; csrc/tests/test_trace.c fuzzes it in C under the sanitizers,
this file fuzzes it through the CLI and the Python layer.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from allocffi.harness.trace import TraceError, native
from tests.trace_support import SHIPPED, cli, replay_rows, trace_bytes

pytestmark = pytest.mark.subprocess

# MALLOC 16 (tag 0, operand in the high nibble when < 15: 16 needs the escape form)
MALLOC_16 = bytes([0xF0, 0x01])
FREE_REF_1 = bytes([0x13])  # TR_FREE, ref 1: the most recent object


def shipped_traces() -> list[Path]:
    return sorted(p for p in SHIPPED.glob("*.trace"))


def small_trace(tmp_path: Path) -> Path:
    path = tmp_path / "small.trace"
    path.write_bytes(trace_bytes(MALLOC_16 + MALLOC_16 + FREE_REF_1, objects=2, calls=3))
    return path


def assert_clean_refusal(result: subprocess.CompletedProcess[str], path: Path, *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_a_hand_written_trace_reads_back(tmp_path: Path) -> None:
    summary = native.summarize(small_trace(tmp_path))
    assert summary["calls"][0] == 2 and summary["calls"][3] == 1
    assert summary["peak_live_bytes"] == 32 and summary["live_bytes_at_end"] == 16


def test_call_names_agree_with_the_c_side() -> None:
    from allocffi.harness._engine import ffi, lib

    assert (
        tuple(ffi.string(lib.af_trace_call_name(i)).decode() for i in range(len(native.CALLS)))
        == native.CALLS
    )
    assert lib.af_trace_call_name(len(native.CALLS)) == ffi.NULL


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("truncated", trace_bytes(MALLOC_16, objects=1, calls=1)[:-2], ("offset",)),
        ("other-format", b"GIF89a, not a trace" * 4, ("offset 0", "not an allocffi trace")),
        ("other-version", trace_bytes(MALLOC_16, objects=1, calls=1, version=7), ("offset 8", "version 7")),
        ("never-allocated", trace_bytes(FREE_REF_1, objects=0, calls=1), ("offset", "never allocated")),
        (
            "double-free",
            trace_bytes(MALLOC_16 + FREE_REF_1 + FREE_REF_1, objects=1, calls=3),
            ("offset 67", "double free"),
        ),
        ("empty", b"", ("offset 0",)),
    ],
)
def test_bad_files_are_refused_with_file_and_offset(
    tmp_path: Path, name: str, content: bytes, words: tuple[str, ...]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert_clean_refusal(cli("trace", "info", str(path)), path, *words)
    assert_clean_refusal(
        cli("trace", "replay", str(path), "--allocators", "libc", "--repeat", "1"), path, *words
    )


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here"
    result = cli("trace", "info", str(path))
    assert_clean_refusal(result, path, "no such trace file")


def test_mutated_files_never_crash_the_reader(tmp_path: Path) -> None:
    """In-process: a crash here would kill pytest itself."""
    source = shipped_traces()[0] if shipped_traces() else small_trace(tmp_path)
    good = source.read_bytes()[:200_000]
    rng = random.Random(1234)
    path = tmp_path / "mutant"
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(200):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        path.unlink(missing_ok=True)
        path.write_bytes(bytes(data))
        try:
            native.summarize(path)
            outcomes["ok"] += 1
        except TraceError as exc:
            assert str(path) in str(exc) and "offset" in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


def test_mutated_files_through_the_cli(tmp_path: Path) -> None:
    good = small_trace(tmp_path).read_bytes()
    rng = random.Random(99)
    for i in range(12):
        data = bytearray(good)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path = tmp_path / f"m{i}"
        path.write_bytes(bytes(data))
        for args in (
            ["info", str(path)],
            ["replay", str(path), "--allocators", "libc", "--repeat", "1", "-q"],
        ):
            result = cli("trace", *args)
            assert result.returncode in (0, 2), result.stderr
            assert "Traceback" not in result.stderr


@pytest.mark.skipif(not shipped_traces(), reason="no shipped traces in bench/traces (make traces)")
def test_shipped_traces_are_small_and_valid() -> None:
    for path in shipped_traces():
        assert path.stat().st_size < 10 * 1024 * 1024
        summary = native.summarize(path)
        assert summary["events"] > 10_000
        assert summary["file_bytes"] / summary["events"] < 4


@pytest.mark.skipif(not shipped_traces(), reason="no shipped traces in bench/traces (make traces)")
def test_every_allocator_replays_a_shipped_trace_with_one_checksum(tmp_path: Path) -> None:
    trace = min(shipped_traces(), key=lambda p: p.stat().st_size)
    report = tmp_path / "r.json"
    result = cli(
        "trace",
        "replay",
        str(trace),
        "--repeat",
        "1",
        "-q",
        "--json",
        str(report),
        "--csv",
        str(tmp_path / "r.csv"),
        "--markdown",
        str(tmp_path / "r.md"),
        "--plot",
        str(tmp_path / "r.png"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["schema"] == "allocffi-results/1" and data["command"]["name"] == "trace replay"
    results = replay_rows(data)
    assert all(r["metrics"]["ns_per_call"]["unit"] == "ns/call" for r in data["results"])
    assert len({r["checksum"] for r in results}) == 1
    by_name = {r["allocator"]: r for r in results}
    assert "libc" in by_name and "slab" in by_name and "bump" in by_name
    assert by_name["bump"]["frees_ignored"] and not by_name["slab"]["frees_ignored"]
    assert {r["peak_live_bytes"] for r in results} == {native.summarize(trace)["peak_live_bytes"]}
    assert (tmp_path / "r.csv").read_text().startswith("trace,allocator,")
    assert "frees ignored" in (tmp_path / "r.md").read_text()
    assert (tmp_path / "r.png").stat().st_size > 0


def require_memray() -> None:
    """Skip without memray, except in CI, which installs it: there a missing memray fails."""
    try:
        import memray  # noqa: F401
    except ImportError:
        if (
            os.environ.get("CI", "").lower() in ("1", "true", "yes")
            or os.environ.get("ALLOCFFI_REQUIRE_ALL") == "1"
        ):
            raise
        pytest.skip("memray not installed (pip install 'allocffi[memray]'; CI installs it)")


def test_memray_capture_imports_and_replays(tmp_path: Path) -> None:
    require_memray()
    capture = tmp_path / "capture.bin"
    code = "import json; [json.dumps({'k': list(range(i))}) for i in range(300)]; b = bytearray(b'x' * 5000)"
    subprocess.run(
        [sys.executable, "-m", "memray", "run", "-q", "-o", str(capture), "-c", code],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "imported.trace"
    result = cli("trace", "import", "memray", str(capture), "-o", str(out))
    assert result.returncode == 0, result.stderr
    import memray as memray_module

    records = list(memray_module.FileReader(str(capture)).get_allocation_records())
    mallocs = sum(1 for r in records if memray_module.AllocatorType(r.allocator).name == "MALLOC")
    summary = native.summarize(out)
    assert summary["calls"][native.CALLS.index("malloc")] == mallocs
    assert summary["events"] > 0
    replay = cli("trace", "replay", str(out), "--allocators", "libc,slab", "--repeat", "1", "-q")
    assert replay.returncode == 0, replay.stderr


def test_memray_import_of_a_bad_file(tmp_path: Path) -> None:
    require_memray()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"nope" * 100)
    result = cli("trace", "import", "memray", str(bad), "-o", str(tmp_path / "x"))
    assert_clean_refusal(result, bad)
