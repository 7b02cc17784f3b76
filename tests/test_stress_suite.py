"""The stress suite (``allocffi run --suite stress``): its C programs and its rows.

Each program runs at 1 and 2 threads at a tiny scale under glibc and under mimalloc, must exit 0 and
print its figure of merit; each must catch the corruption that ``--corrupt`` plants (exit 1), and
reject a bad command line (exit 2). No test asserts a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import require_all
from support import run_cli, run_programs, run_rows

from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_OK, UsageError
from allocffi.harness.run import preload
from allocffi.harness.run.suite import Tool
from allocffi.harness.run.suite.registry import get_suite
from allocffi.harness.run.suite.stress import PROGRAMS_BY_DESIGN, THREAD_COUNTS, StressProgram

DESIGNS = {design.name: design for design in PROGRAMS_BY_DESIGN}
TINY = 1 / 20  # of each program's suite scale: a few tens of milliseconds


def mimalloc() -> str | None:
    path = preload.find_library(preload.SONAMES["mimalloc"])
    if path is None and require_all():
        pytest.fail("libmimalloc.so.2 is not installed (make system-libs installs libmimalloc2.0)")
    return path


def run(
    design: StressProgram, *args: str, preload_library: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # not a sanitizer runtime of ours
    if preload_library:
        env["LD_PRELOAD"] = preload_library
    return subprocess.run(
        [str(design.executable()), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(params=sorted(DESIGNS))
def design(request: pytest.FixtureRequest) -> StressProgram:
    program = DESIGNS[request.param]
    if not os.access(program.executable(), os.X_OK):
        pytest.fail(f"{program.executable()} is not built: run make build")
    return program


@pytest.mark.parametrize("allocator", ["libc", "mimalloc"])
@pytest.mark.parametrize("threads", [1, 2])
def test_program_runs_and_prints_its_figure(design: StressProgram, threads: int, allocator: str) -> None:
    library = None
    if allocator == "mimalloc":
        library = mimalloc()
        if library is None:
            pytest.skip("libmimalloc.so.2 is not installed")
    result = run(design, str(threads), f"{design.scale * TINY:g}", preload_library=library)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{design.name}: {threads} threads")
    figure = design.figure.parse(result.stdout)
    assert figure is not None and figure > 0, last


def test_planted_corruption_is_caught(design: StressProgram) -> None:
    result = run(design, "2", f"{design.scale * TINY:g}", "--corrupt")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith(f"{design.name}: corrupted "), result.stderr
    assert design.figure.parse(result.stdout) is None  # no figure from a failed run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "THREADS and SCALE are required"),
        (["0", "1"], "THREADS 0: give a whole number from 1 to 256"),
        (["2", "-1"], "SCALE -1: give a number > 0"),
        (["2", "1", "--seed", "x"], "--seed x: not an unsigned integer"),
        (["2", "1", "--fast"], "unknown option --fast"),
        (["2", "1", "3"], "unexpected argument 3"),
    ],
)
def test_bad_command_line_exits_2_with_the_usage(args: list[str], message: str) -> None:
    result = run(DESIGNS["larson"], *args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"larson: {message}",
        "usage: larson THREADS SCALE [--seed N] [--corrupt]",
    ]
    assert result.stdout == ""


def test_work_bounded_programs_do_the_same_work_at_every_thread_count() -> None:
    lines = {t: run(DESIGNS["mstress"], str(t), "0.01").stdout for t in (1, 2)}
    # 40,000 operations split among 10 generations of 1 or 2 threads.
    assert "10 rounds, 40000 operations" in lines[1] and "10 rounds, 40000 operations" in lines[2]


def test_suite_rows_one_per_program_and_thread_count(tmp_path: Path) -> None:
    rows = get_suite("stress")
    assert [r.name for r in rows] == [f"{d.name}-t{t}" for d in PROGRAMS_BY_DESIGN for t in THREAD_COUNTS]
    for row in rows:
        design = DESIGNS[row.name.rsplit("-t", 1)[0]]
        # A program that stops on time declares its throughput as its score; the others are timed.
        assert (row.score is not None) == design.stops_on_time
        if row.score is not None:
            assert row.score.higher_is_better
        assert row.prepare(tmp_path)[1:] == [
            row.name.rsplit("-t", 1)[1],
            f"{design.scale:g}",
        ]


def test_an_unbuilt_program_is_a_usage_error_that_says_how_to_build() -> None:
    with pytest.raises(UsageError, match=r"/no/_stress_x is not built \(build allocffi: make build"):
        Tool("/no/_stress_x", package="").path()


def test_suite_row_runs_with_its_allocation_count_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    allocators = "libc,mimalloc" if mimalloc() else "libc"
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "run", "--suite", "stress", "--programs", "larson-t2", "--allocators", allocators,
        "--repeat", "1", "--json", str(report),
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(report.read_text())
    (program,) = run_programs(data)
    assert program["allocations_counted"] >= program["min_allocations"]
    assert all(r["preload_verified"] for r in run_rows(data))
    assert "larson-t2" in out


def test_a_corrupting_program_fails_its_run(capsys: pytest.CaptureFixture[str]) -> None:
    larson = str(DESIGNS["larson"].executable())
    code, _, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "1", "--", larson, "1", "0.02", "--corrupt"
    )
    assert code == EXIT_FAILURE
    assert "exit status 1: larson: corrupted block" in err
