"""The ``allocffi`` command line: usage errors (one line, exit 2, nothing run),
``allocffi list``, and a tiny real end-to-end benchmark with every report file
and a baseline comparison."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from allocffi.harness import cli
from allocffi.harness.bench import results as report
from allocffi.harness.core import record
from allocffi.harness.core.errors import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse errors and --help
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_usage_error(code: int, err: str, *needles: str) -> None:
    assert code == EXIT_USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["bench", "--allocators", "libc,dlmalloc"], ["unknown allocator 'dlmalloc'", "choose from bump"]),
        (["bench", "--allocators", "null"], ["not a competitor"]),
        (["bench", "--repeat", "0"], ["argument --repeat: expected an integer from 1 to 10000 (got '0')"]),
        (["bench", "--ops", "10", "--time-budget", "1"], ["not allowed with argument"]),
        (["bench", "--repeat", "many"], ["argument --repeat: expected an integer", "(got 'many')"]),
        (["bench", "--allocators", ","], ["comma-separated"]),
        (["frobnicate"], ["invalid choice"]),
        ([], ["required"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    code, out, err = run_main(capsys, *argv)
    assert_one_line_usage_error(code, err, *needles)
    assert out == ""


def test_unwritable_report_path_fails_before_running(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    json_path = tmp_path / "ok.json"
    code, out, err = run_main(
        capsys,
        "bench",
        "--workloads",
        "fixed-48",
        "--json",
        str(json_path),
        "--markdown",
        str(blocker / "r.md"),
    )
    assert_one_line_usage_error(code, err, "--markdown", "a-file/r.md", "is a file, not a directory")
    assert out == "" and not json_path.exists()


def test_unreadable_baseline_fails_before_running(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_main(capsys, "bench", "--baseline", str(tmp_path / "nope.json"))
    assert_one_line_usage_error(code, err, "cannot read baseline", "nope.json")


def test_unknown_workload_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "bench", "--workloads", "fixed-48,fixed-47")
    assert_one_line_usage_error(code, err, "unknown workload 'fixed-47'", "fixed-48")


def test_list_shows_allocators_and_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "list")
    assert code == EXIT_OK
    assert "Allocators:" in out and "Workloads:" in out
    assert "libc" in out and "the reference for speedups" in out and "engine overhead" in out
    assert "fixed-48" in out and "large-cycle" in out


def test_end_to_end_bench_writes_every_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    paths = {ext: tmp_path / f"report.{ext}" for ext in ("json", "csv", "md")}
    code, out, err = run_main(
        capsys, "bench", "--allocators", "libc,bump", "--workloads", "fixed-48",
        "--repeat", "2", "--ops", "2000",
        "--json", str(paths["json"]), "--csv", str(paths["csv"]), "--markdown", str(paths["md"]),
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert "fixed-48" in out and "Checksums agree" in out

    data = json.loads(paths["json"].read_text())
    assert data["schema"] == record.SCHEMA and data["details"]["bench"]["checksums_agree"] is True
    assert data["command"]["config"]["ops"] == {"fixed-48": 2000} and data["command"]["config"]["repeat"] == 2
    assert data["command"]["argv"][:4] == ["allocffi", "bench", "--allocators", "libc,bump"]
    assert set(data["details"]["bench"]["engine_overhead_ns_per_op"]) == {"fixed-48"}
    cells = {c["allocator"]: c for c in data["results"]}
    assert cells["bump"]["verdicts"]["ns_per_op"]["versus"] == "libc" and cells["libc"]["verdicts"] == {}
    records = {r.allocator: r for r in report.read_json(paths["json"]).results}
    assert set(records) == {"libc", "bump"}
    for r in records.values():
        assert r.workload == "fixed-48" and r.ops == 2000 and r.repeats == 2 and len(r.samples) == 2
        assert r.ns_per_op_min <= r.ns_per_op <= r.ns_per_op_max
        assert r.peak_rss_bytes > 0 and r.bytes_per_op == 48.0
    assert records["libc"].checksum == records["bump"].checksum
    assert records["libc"].speedup == 1.0 and records["bump"].speedup_vs == "libc"
    assert records["bump"].speedup == pytest.approx(records["libc"].ns_per_op / records["bump"].ns_per_op)

    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert sorted(r["allocator"] for r in rows) == ["bump", "libc"]
    markdown = paths["md"].read_text()
    assert (
        "## Median ns/op" in markdown
        and "## Speedup vs libc" in markdown
        and "| fixed-48 | 2,000 |" in markdown
    )

    # Against itself: every pair is compared (the verdict depends on this machine's noise).
    again = tmp_path / "again.json"
    code, out, _ = run_main(
        capsys, "bench", "--allocators", "libc,bump", "--workloads", "fixed-48",
        "--repeat", "2", "--ops", "2000",
        "--no-overhead", "--quiet", "--baseline", str(paths["json"]), "--json", str(again),
    )  # fmt: skip
    assert code == EXIT_OK and out == ""
    comparison = json.loads(again.read_text())["details"]["bench"]["comparison"]
    assert sorted(c["allocator"] for c in comparison) == ["bump", "libc"]
    assert all(c["verdict"] == "too few repeats" for c in comparison)  # 2 vs 2 repeats prove nothing
    # Against a baseline 1000x faster: a regression, and --fail-on-regression says so.
    for cell in data["results"]:
        metric = cell["metrics"]["ns_per_op"]
        metric["samples"] = [min(metric["samples"]) / 1000 * (1 + i / 100) for i in range(5)]
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps(data))
    code, _, err = run_main(
        capsys, "bench", "--allocators", "libc", "--workloads", "fixed-48", "--repeat", "4", "--ops", "2000",
        "--no-overhead", "--quiet", "--baseline", str(fast), "--fail-on-regression",
    )  # fmt: skip
    assert code == EXIT_REGRESSION
    assert "regression: fixed-48 libc: " in err and "x slower [" in err


def test_time_budget_sizes_the_workload_for_its_slowest_allocator(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report_path = tmp_path / "budget.json"
    code, _, err = run_main(
        capsys, "bench", "--allocators", "libc,bump", "--workloads", "fixed-48", "--repeat", "1",
        "--time-budget", "0.005", "--no-overhead", "--quiet", "--json", str(report_path),
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(report_path.read_text())
    ops = data["command"]["config"]["ops"]["fixed-48"]
    assert data["command"]["config"]["time_budget_s"] == 0.005 and ops >= 1000  # whole rounds of the workload
    assert {r["details"]["bench"]["ops"] for r in data["results"]} == {ops}
    assert data["details"]["bench"]["checksums_agree"]


def test_module_entry_point_runs_the_same_cli() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(cli.__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "allocffi", "bench", "--workloads", "no-such-workload"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE and proc.stdout == ""
    assert proc.stderr.strip() == (
        "allocffi bench: error: unknown workload 'no-such-workload'; choose from "
        + proc.stderr.split("choose from ")[1].strip()
    )
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    help_text = subprocess.run(
        [sys.executable, "-m", "allocffi", "bench", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    for option in (
        "--allocators",
        "--workloads",
        "--repeat",
        "--ops",
        "--time-budget",
        "--seed",
        "--json",
        "--csv",
        "--markdown",
        "--plot",
        "--baseline",
        "--fail-on-regression",
        "--quiet",
    ):
        assert option in help_text


# --- allocffi numpy-bench ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["numpy-bench", "--workloads", "nope"], ["unknown NumPy workload 'nope'", "choose from"]),
        (["numpy-bench", "--allocators", "dlmalloc"], ["unknown allocator 'dlmalloc'"]),
        (["numpy-bench", "--repeat", "0"], ["argument --repeat: expected an integer from 1"]),
        (["numpy-bench", "--scale", "x"], ["argument --scale: expected a number > 0 and <= 1000 (got 'x')"]),
    ],
)
def test_numpy_bench_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    code, out, err = run_main(capsys, *argv)
    assert_one_line_usage_error(code, err, *needles)
    assert out == ""


@pytest.mark.subprocess
def test_numpy_bench_runs_and_reports(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from conftest import require_numpy

    require_numpy()
    report = tmp_path / "numpy.json"
    code, _, err = run_main(
        capsys, "numpy-bench", "--allocators", "slab,bump", "--workloads", "create-1,temporaries",
        "--repeat", "1", "--scale", "0.01", "--json", str(report), "--quiet",
    )  # fmt: skip
    assert code == EXIT_OK, err
    saved = record.read(report)  # validated
    assert saved.command == "numpy-bench" and saved.baseline_allocator == "numpy"
    assert {(c.allocator, c.subject) for c in saved.cells} == {
        (h, w) for h in ("numpy", "slab", "bump") for w in ("create-1", "temporaries")
    }
    for cell in saved.cells:
        assert cell.metrics["ns_per_op"].median > 0 and cell.metrics["peak_rss"].median > 0
        assert cell.metrics["ns_per_op"].unit == "ns/op" and cell.metrics["peak_rss"].unit == "B"
        if cell.allocator != "numpy":  # against NumPy's default handler, from the samples
            assert cell.verdicts["ns_per_op"].ratio > 0 and cell.verdicts["peak_rss"].ratio > 0
