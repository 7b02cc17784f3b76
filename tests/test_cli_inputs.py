"""Bad input is refused before any work starts: one line on stderr naming the input and the fix,
exit status 2, and nothing measured or run. One test per case a user met (issue "bad input"),
run in-process through the command line."""

from __future__ import annotations

import json
import math
import os
import re
import struct
from pathlib import Path

import pytest
from support import run_cli

from allocffi.harness.core import children as runner
from allocffi.harness.core import inputs
from allocffi.harness.core.errors import EXIT_OK, EXIT_USAGE, UsageError
from allocffi.harness.trace import replay

GIB = 1 << 30


def one_line_usage_error(code: int, out: str, err: str, *needles: str) -> str:
    """Assert exit 2, nothing on stdout and one line on stderr holding every needle; return it."""
    lines = err.strip().splitlines()
    assert code == EXIT_USAGE, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def workload(name: str = "w", sizes: str = "[{ size = 64 }]", extra: str = "") -> str:
    return f'[[workload]]\nname = "{name}"\nkernel = "pairs"\nops = 100\nsizes = {sizes}\n{extra}'


def bench_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, name: str = "w.toml") -> tuple:
    path = tmp_path / name
    path.write_text(text)
    return (path, *run_cli(capsys, "bench", "--workload-file", str(path), "--allocators", "libc"))


# --------------------------------------------------------------------------
# Workload files
# --------------------------------------------------------------------------


def test_a_workload_file_nested_1000_deep_is_refused_naming_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path, code, out, err = bench_file(capsys, tmp_path, workload(sizes="[" * 1000 + "]" * 1000))
    one_line_usage_error(code, out, err, str(path), "line 5", f"deeper than {inputs.MAX_NESTING} levels")


def test_a_json_workload_file_nested_100000_deep_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path, code, out, err = bench_file(capsys, tmp_path, '{"config": ' + "[" * 100_000, "w.json")
    one_line_usage_error(code, out, err, str(path), "nested deeper")


@pytest.mark.parametrize("name", ["w.toml", "w.json"])
def test_a_5000_digit_integer_is_refused_naming_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    digits = "1" + "0" * 5000
    text = (
        workload(extra=f"threads = {digits}\n")
        if name.endswith(".toml")
        else '{"config": {"workload_specs": [{"name": "w", "ops": ' + digits + "}]}}"
    )
    path, code, out, err = bench_file(capsys, tmp_path, text, name)
    one_line_usage_error(code, out, err, str(path), "more than 64 digits")


def test_brackets_and_digits_inside_strings_and_comments_do_not_count(tmp_path: Path) -> None:
    from allocffi.harness.bench import workload_file

    text = workload(name="ok") + "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ " + "9" * 100 + "\n"
    (tmp_path / "w.toml").write_text(text)
    assert [s.name for s in workload_file.load(tmp_path / "w.toml")] == ["ok"]
    inputs.parse_json(json.dumps({"a": "[" * 100 + "7" * 100, "b": ['\\"[[[']}), "x.json")


@pytest.mark.parametrize("name", ["--help", "-x", ".hidden", "..", "-"])
def test_a_workload_name_that_looks_like_an_option_or_a_hidden_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    path, code, out, err = bench_file(capsys, tmp_path, workload(name=name))
    one_line_usage_error(code, out, err, str(path), "name: must be", "starting with a letter or digit")


def test_weights_whose_sum_is_infinite_are_refused_before_any_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sizes = "[{ size = 64, weight = 1e308 }, { size = 128, weight = 1e308 }]"
    path, code, out, err = bench_file(capsys, tmp_path, workload(sizes=sizes))
    one_line_usage_error(code, out, err, str(path), "sizes: the weights add up to inf", "use smaller ones")


@pytest.mark.parametrize("weight", ["nan", "inf", "-1.0"])
def test_every_weight_is_finite_and_not_negative(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weight: str
) -> None:
    path, code, out, err = bench_file(
        capsys, tmp_path, workload(sizes=f"[{{ size = 64, weight = {weight} }}]")
    )
    one_line_usage_error(code, out, err, str(path), "sizes[0].weight")


def test_a_one_gib_size_runs_end_to_end_on_null_libc_and_slab(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = f'[[workload]]\nname = "one-gib"\nkernel = "pairs"\nops = 8\nsizes = [{{ size = {GIB} }}]\n'
    path = tmp_path / "big.toml"
    path.write_text(text)
    report = tmp_path / "big.json"
    code, _, err = run_cli(
        capsys, "bench", "--workload-file", str(path), "--allocators", "libc,slab", "--repeat", "1",
        "--no-calibrate", "--quiet", "--json", str(report),
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(report.read_text())
    assert {r["allocator"] for r in data["results"]} == {"libc", "slab"}
    assert all(r["details"]["bench"]["bytes_per_op"] == GIB for r in data["results"])
    bench = data["details"]["bench"]
    assert bench["engine_overhead_ns_per_op"]["one-gib"] > 0  # the null allocator ran it too
    assert bench["checksums_agree"]


@pytest.mark.parametrize(("name", "needle"), [(b"--help", b"start with a letter"), (b"w", b"finite")])
def test_the_engine_refuses_an_option_like_name_and_infinite_weights_on_its_own(
    name: bytes, needle: bytes
) -> None:
    from allocffi.harness._engine import ffi, lib

    entries = ffi.new("af_size_entry[]", [{"min": 64, "max": 64, "weight": 1e308}] * 2)
    c_name = ffi.new("char[]", name)
    spec = ffi.new(
        "af_workload_spec *", {"name": c_name, "kernel": 0, "sizes": entries, "size_count": 2, "phase": 10}
    )
    allocator = ffi.new("char[]", b"libc")
    config = ffi.new("af_bench_config *", {"allocator": allocator, "ops": 10, "spec": spec})
    err = ffi.new("af_error *")
    assert lib.af_bench_run(config, ffi.new("af_bench_result *"), err) == lib.AF_ERR_INVALID
    assert needle in ffi.string(err.message)


# --------------------------------------------------------------------------
# allocffi run: what it preloads, and numbers
# --------------------------------------------------------------------------


def marker_program(marker: Path) -> list[str]:
    """A measured program that leaves a file behind: its absence proves nothing ran."""
    return ["--", "/bin/sh", "-c", f"touch {marker}"]


@pytest.mark.parametrize(
    ("library", "needle"),
    [
        ("/bin/ls", "/bin/ls is a program, not a shared library"),
        ("/etc/hostname", "is not an ELF file"),
        ("/dev/null", "is a device: give the path of a regular file"),
        ("/no/such.so", "No such file or directory; check the path"),
    ],
)
def test_run_refuses_a_library_that_cannot_serve_malloc_before_running(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, library: str, needle: str
) -> None:
    marker = tmp_path / "ran"
    code, out, err = run_cli(capsys, "run", "--allocators", f"mimalloc={library}", *marker_program(marker))
    one_line_usage_error(code, out, err, "--allocators mimalloc", needle)
    assert not marker.exists()


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "1e400", "999999999"])
def test_run_refuses_a_timeout_that_is_not_a_finite_positive_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    marker = tmp_path / "ran"
    code, out, err = run_cli(capsys, "run", "--timeout", value, *marker_program(marker))
    one_line_usage_error(code, out, err, "argument --timeout: expected a number > 0 and <= 604800")
    assert not marker.exists()


def test_run_refuses_a_preload_of_its_own_that_defines_malloc(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    code, out, err = run_cli(
        capsys, "run", "--allocators", "libc", "--env", "LD_PRELOAD=libc.so.6", *marker_program(marker)
    )
    one_line_usage_error(code, out, err, "--env LD_PRELOAD: libc.so.6 defines malloc", "--allocators")
    assert not marker.exists()


@pytest.mark.parametrize("key", ["ALLOCFFI_PROBE_FILE", "ALLOCFFI_COUNT_FILE"])
def test_run_refuses_to_have_its_own_variables_set(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str
) -> None:
    marker = tmp_path / "ran"
    code, out, err = run_cli(capsys, "run", "--env", f"{key}=/tmp/x", *marker_program(marker))
    one_line_usage_error(code, out, err, f"--env {key}: allocffi run sets this variable itself")
    assert not marker.exists()


def test_run_keeps_a_preload_that_is_not_an_allocator_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    code, _, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "1", "--no-sample",
        "--env", "LD_PRELOAD=libm.so.6", *marker_program(marker),
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert "note: --env LD_PRELOAD=libm.so.6 is kept in every run, loaded after the probe" in err
    assert marker.exists()


# --------------------------------------------------------------------------
# allocffi trace replay
# --------------------------------------------------------------------------


def empty_trace(path: Path, threads: int) -> Path:
    """A valid trace header recording ``threads`` threads and no call (csrc/trace/format.h)."""
    path.write_bytes(
        b"AFTRACE\n" + struct.pack("<IIIIQQQQII", 1, 0, 1, 0, 0, 0, 0, 0, threads, 0) + bytes([0x0F])
    )
    return path


def test_a_threaded_replay_of_more_than_1024_threads_is_refused_before_any_worker(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = empty_trace(tmp_path / "t.trace", replay.REPLAY_MAX_THREADS + 1)
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "trace", "replay", str(trace), "--threads", "threads", "--allocators", "libc",
        "--json", str(report),
    )  # fmt: skip
    one_line_usage_error(code, out, err, "1025 recorded threads", "at most 1024", "use --threads serial")
    assert not report.exists()
    code, _, err = run_cli(capsys, "trace", "info", str(trace))
    assert code == EXIT_OK, err  # serial replays and info still take it


def test_the_replay_engine_has_the_same_thread_limit(tmp_path: Path) -> None:
    from allocffi.harness.trace import native

    trace = empty_trace(tmp_path / "t.trace", replay.REPLAY_MAX_THREADS + 1)
    with pytest.raises(native.TraceError, match=f"replays at most {replay.REPLAY_MAX_THREADS}"):
        native.replay_once(trace, "libc", "ends", "threads")


def test_a_thread_bound_allocator_in_a_threaded_replay_is_refused_saying_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if not runner.probe().available.get("mimalloc-heap"):
        pytest.skip("mimalloc-heap is not available here")
    trace = empty_trace(tmp_path / "t.trace", 2)
    code, out, err = run_cli(
        capsys, "trace", "replay", str(trace), "--allocators", "mimalloc-heap", "--threads", "threads"
    )
    one_line_usage_error(
        code, out, err, "mimalloc-heap is bound to the thread that created it", "use --threads serial"
    )


# --------------------------------------------------------------------------
# Numbers on every command
# --------------------------------------------------------------------------

NUMBERS = [
    (["bench", "--noise-threshold", "nan"], "--noise-threshold: expected a number >= 0 and < 1"),
    (["bench", "--noise-threshold", "1"], "--noise-threshold: expected a number >= 0 and < 1"),
    (["compare", "a.json", "b.json", "--noise-threshold", "-0.1"], "--noise-threshold"),
    (["bench", "--repeat", "0"], "--repeat: expected an integer from 1 to 10000"),
    (["bench", "--repeat", "1" + "0" * 5000], "--repeat: expected an integer from 1 to 10000"),
    (["bench", "--ops", "-5"], "--ops: expected an integer from 1 to 4611686018427387904"),
    (["bench", "--time-budget", "inf"], "--time-budget: expected a number > 0"),
    (["bench", "--time-budget", "0"], "--time-budget: expected a number > 0"),
    (["bench", "--seed", str(2**64)], "--seed: expected an integer from 0 to 18446744073709551615"),
    (["run", "--repeat", "nan", "--", "true"], "--repeat: expected an integer"),
    (["numpy-bench", "--scale", "nan"], "--scale: expected a number > 0 and <= 1000"),
    (["numpy-bench", "--scale", "-1"], "--scale: expected a number > 0 and <= 1000"),
    (["calibrate", "--ops", "0"], "--ops: expected an integer from 1"),
    (["calibrate", "--seed", "x"], "--seed: expected an integer"),
    (["trace", "replay", "t.trace", "--repeat", "100000"], "--repeat: expected an integer from 1 to 10000"),
]


@pytest.mark.parametrize(("argv", "needle"), NUMBERS, ids=[" ".join(a)[:60] for a, _ in NUMBERS])
def test_every_number_is_finite_and_in_range(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    one_line_usage_error(code, out, err, f"argument {needle}")


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("noise_threshold", math.nan, "--noise-threshold: expected a number >= 0 and < 1 (got nan)"),
        ("repeat", 0, "--repeat: expected an integer from 1 to 10000 (got 0)"),
        ("time_budget_s", math.inf, "--time-budget: expected a number > 0"),
        ("seed", -1, "--seed: expected an integer from 0"),
    ],
)
def test_the_python_api_checks_the_same_ranges(field: str, value: float, needle: str) -> None:
    from allocffi.harness.bench.command import BenchOptions, check_options

    with pytest.raises(UsageError, match=re.escape(needle)):
        check_options(BenchOptions(**{field: value}))


# --------------------------------------------------------------------------
# Paths: every output checked, every input read safely, before anything runs
# --------------------------------------------------------------------------

LONG_NAME = "x" * 300  # longer than any file system's name limit (255 bytes)


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--json", ".", "is a directory: give a file name inside it"),
        ("--markdown", ".", "is a directory: give a file name inside it"),
        ("--csv", "/proc/r.csv", "does not take new files"),
        ("--json", f"{LONG_NAME}.json", "the file name is longer than the 255 bytes"),
        ("--plot", "x.bmp", "'.bmp' is not one it writes; use .png, .svg or .pdf"),
        ("--plot", "-", "--plot needs a file name"),
        ("--json", "missing-dir/r.json", "the directory missing-dir does not exist; create it first"),
    ],
)
@pytest.mark.parametrize("command", ["run", "trace-replay"])
def test_run_and_replay_check_every_output_before_running(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    value: str,
    needle: str,
    command: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "ran"
    if command == "run":
        argv = ["run", "--allocators", "libc", "--repeat", "1", option, value, *marker_program(marker)]
    else:
        trace = empty_trace(tmp_path / "t.trace", 1)
        argv = ["trace", "replay", str(trace), "--allocators", "libc", "--repeat", "1", option, value]
    code, out, err = run_cli(capsys, *argv)
    one_line_usage_error(code, out, err, option, needle)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bench", "--workloads", "fixed-48", "--json", "."], "--json . is a directory"),
        (["bench", "--workloads", "fixed-48", "--csv", f"{LONG_NAME}.csv"], "the file name is longer"),
        (["compare", "a.json", "b.json", "--json", "."], "--json . is a directory"),
        (["report", "a.json", "--markdown", "."], "--markdown . is a directory"),
        (["calibrate", "--json", f"{LONG_NAME}.json"], "the file name is longer"),
        (["numpy-bench", "--json", "."], "--json . is a directory"),
        (["numpy-bench", "--markdown", "-", "--json", "-"], "only one output can be '-'"),
        (["trace", "record", "-o", LONG_NAME, "--", "/bin/true"], "the file name is longer"),
        (["trace", "record", "-o", ".", "--", "/bin/true"], "-o . is a directory"),
        (["trace", "import", "memray", "nope.bin", "-o", "t"], "cannot read memray capture nope.bin"),
    ],
)
def test_every_command_checks_its_outputs_before_it_starts(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    needle: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    one_line_usage_error(code, out, err, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even a trace


def test_a_long_trace_record_prefix_is_refused_before_the_program_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    code, out, err = run_cli(
        capsys, "trace", "record", "-o", str(tmp_path / LONG_NAME), *marker_program(marker)
    )
    one_line_usage_error(code, out, err, "the file name is longer", "use a shorter name")
    assert not marker.exists()


def reading_commands(path: str) -> list[list[str]]:
    """Every command that reads a file the user names, reading ``path``."""
    return [
        ["compare", path, path],
        ["report", path],
        ["bench", "--workload-file", path],
        ["bench", "--workloads", "fixed-48", "--baseline", path],
        ["trace", "info", path],
        ["trace", "replay", path],
    ]


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("fifo", "is a FIFO: give the path of a regular file"),
        ("/dev/zero", "is a device: give the path of a regular file"),
        ("directory", "directory"),
        ("long", "File name too long; use a shorter path"),
        ("missing", "no such"),
    ],
)
def test_every_reading_command_refuses_what_is_not_a_readable_file_without_blocking(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, index: int, kind: str, needle: str
) -> None:
    if kind == "fifo":
        path = str(tmp_path / "pipe")
        os.mkfifo(path)  # no writer: opening it for reading would block forever
    elif kind == "directory":
        path = str(tmp_path)
    elif kind == "long":
        path = str(tmp_path / LONG_NAME)
    elif kind == "missing":
        path = str(tmp_path / "missing.json")
    else:
        path = kind
    code, out, err = run_cli(capsys, *reading_commands(path)[index])
    one_line_usage_error(code, out, err.lower(), needle.lower())


def test_a_report_that_is_not_utf8_is_refused_naming_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(b'{\n"schema": "\xff\xfe"}')
    code, out, err = run_cli(capsys, "report", str(path))
    one_line_usage_error(code, out, err, "line 2: not UTF-8 text")


def test_a_results_file_is_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from allocffi.harness.core import outputs

    target = tmp_path / "r.json"
    target.write_text("old")
    target.chmod(0o640)
    outputs.write_atomically(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", fail)
    with pytest.raises(UsageError, match=r"cannot write --json .*r\.json: No space left on device"):
        outputs.write_atomically(target, "newer", "--json")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left
