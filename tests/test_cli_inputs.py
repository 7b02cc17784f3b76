"""Bad input is refused before any work starts: one line on stderr naming the input and the fix,
exit status 2, and nothing measured or run. One test per case a user met (issue "bad input"),
run in-process through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_cli

from allocffi.bench import inputs
from allocffi.bench.errors import EXIT_OK, EXIT_USAGE

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
    from allocffi.bench import workload_file

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
    assert all(r["bytes_per_op"] == GIB for r in data["results"])
    assert data["engine_overhead_ns_per_op"]["one-gib"] > 0  # the null allocator ran it too
    assert data["checksums_agree"]


@pytest.mark.parametrize(("name", "needle"), [(b"--help", b"start with a letter"), (b"w", b"finite")])
def test_the_engine_refuses_an_option_like_name_and_infinite_weights_on_its_own(
    name: bytes, needle: bytes
) -> None:
    from allocffi._native import ffi, lib

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
