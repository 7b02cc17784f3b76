"""The real-program suite's programs that take a scale (z3, lua, gs, rocksdb): inputs, commands and
a short run of each.

Each program is run at a small scale through the same harness as ``allocffi run --suite real``:
its allocation count checked against its bound (scaled alike), then one run under glibc and one
under mimalloc (when installed), each verified by the preload probe. In CI mode a missing
program fails the test: CI installs them all.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from conftest import require_all

from allocffi.harness.core.errors import UsageError
from allocffi.harness.run import preload
from allocffi.harness.run.command import Harness
from allocffi.harness.run.programs import Program, RunOptions
from allocffi.harness.run.suite import (
    MIN_ALLOCATION_FRACTION,
    SuiteProgram,
    gs_pdf,
    lua_gc,
    rocksdb_fill,
    z3_bitvectors,
)
from allocffi.harness.run.suite.registry import get_suite

# Each module with the scale its short run uses (a fraction of a second of work each).
SCALED = {
    "z3": (z3_bitvectors, 0.05),
    "lua": (lua_gc, 0.05),
    "gs": (gs_pdf, 0.05),
    "rocksdb": (rocksdb_fill, 0.05),
}


@pytest.fixture(autouse=True)
def _own_preload_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_PRELOAD", raising=False)  # the harness's preloads only


def short_version(name: str) -> SuiteProgram:
    """The program at its test scale; skips (fails in CI mode) when its tool is not installed."""
    module, scale = SCALED[name]
    program: SuiteProgram = module.program(scale)
    try:
        for tool in program.tools:
            tool.path()
    except UsageError as missing:
        if require_all():
            pytest.fail(f"CI installs every suite program: {missing}")
        pytest.skip(str(missing))
    return program


def inputs(program: SuiteProgram, workdir: Path) -> dict[str, bytes]:
    workdir.mkdir()
    program.write_inputs(workdir)
    return {p.name: p.read_bytes() for p in sorted(workdir.iterdir())}


@pytest.mark.parametrize("name", list(SCALED))
def test_the_suite_runs_the_full_scale_program(name: str) -> None:
    module: ModuleType = SCALED[name][0]
    (in_suite,) = get_suite("real", [name])
    assert in_suite is module.PROGRAM
    assert in_suite.allocations >= 1_000_000
    assert in_suite.min_allocations == int(MIN_ALLOCATION_FRACTION * in_suite.allocations)


@pytest.mark.parametrize("name", list(SCALED))
def test_inputs_are_generated_the_same_every_time(name: str, tmp_path: Path) -> None:
    module, scale = SCALED[name]
    first, second = (
        inputs(module.program(scale), tmp_path / "a"),
        inputs(module.program(scale), tmp_path / "b"),
    )
    assert first == second
    assert all(first.values())  # no empty input file
    full = inputs(module.PROGRAM, tmp_path / "full")
    assert full.keys() == first.keys()
    if full:  # rocksdb has no input file: db_bench draws its keys from the --seed on its command line
        assert full != first  # the scale changes the input


def test_generated_problem_and_document_are_well_formed() -> None:
    problem = z3_bitvectors.generate_problem(0.1)
    assert problem.count("(check-sat)") == problem.count("(push 1)") == problem.count("(pop 1)") == 9
    assert problem.count("(") == problem.count(")")
    pdf = gs_pdf.generate_pdf(0.1)
    startxref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    assert pdf[startxref:].startswith(b"xref\n") and pdf.endswith(b"%%EOF\n")
    table = pdf[startxref:].split(b"\n")
    count = int(table[1].split()[1])
    for number, entry in enumerate(table[3 : 2 + count], start=1):  # entry 0 is the free list's head
        assert pdf[int(entry[:10]) :].startswith(b"%d 0 obj\n" % number)


@pytest.mark.parametrize("name", list(SCALED))
def test_short_run_is_counted_and_verified_under_each_allocator(name: str, tmp_path: Path) -> None:
    suite_program = short_version(name)
    workdir = tmp_path / name
    argv = suite_program.prepare(workdir)
    program = Program(
        name, argv, dict(suite_program.env), str(workdir), suite_program.description, suite_program
    )
    harness = Harness(RunOptions(suite="real", repeat=1), tmp_path)
    names = (
        ["libc", "mimalloc"]
        if preload.find_library(preload.SONAMES["mimalloc"]) or require_all()
        else ["libc"]
    )
    allocators, _ = preload.resolve_allocators(names)

    harness.count_allocations(program, allocators[0])
    assert not program.problems, program.problems
    assert program.allocations_counted is not None
    assert program.allocations_counted >= suite_program.min_allocations > 10_000
    for allocator in allocators:
        sample = harness.measure(program, allocator, 0)
        assert sample.ok, sample.problems
        assert sample.verification.processes >= 1


def test_rocksdb_score_is_read_from_db_bench_output(tmp_path: Path) -> None:
    program = short_version("rocksdb")
    assert program.score is rocksdb_fill.SCORE
    run = subprocess.run(program.prepare(tmp_path), capture_output=True, text=True, timeout=120, check=True)
    score = program.score.parse(run.stdout)
    assert score is not None and score > 0, run.stdout
    assert rocksdb_fill.SCORE.parse("readrandom : 1.0 micros/op 999 ops/sec") is None  # fillrandom's only
