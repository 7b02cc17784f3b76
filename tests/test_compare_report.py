"""``allocffi compare`` and ``allocffi report`` on saved runs, and the verdict-based reports.

The runs here are synthetic JSON files whose outcome is known: nothing is
timed, so no test depends on this machine's speed or noise.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from support import run_cli
from support import write_json as write

from allocffi.harness.bench import comparison, heatmap
from allocffi.harness.bench import results as report
from allocffi.harness.core import machine, record, significance
from allocffi.harness.core.errors import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE

MACHINE: dict[str, Any] = {
    "cpu": "Test CPU",
    "cores": 2,
    "memory_bytes": 2**30,
    "kernel": "Linux 6",
    "python": "CPython 3.11",
    "allocffi": "0.1.0",
    "cffi": "1.17",
    "engine": "0123456789abcdef",
    "libraries": {"jemalloc": "5.3.0-1", "libc": "2.36"},
}
QUIET_LOAD: dict[str, Any] = {
    "before": {"load_average": [0.2, 0.2, 0.2], "cpus": 2, "usable_cpus": 2},
    "after": {"load_average": [1.1, 0.5, 0.3], "cpus": 2, "usable_cpus": 2},
    "highest_load_during": 1.3,
}


def result(allocator: str, workload: str, samples: list[float]) -> dict[str, Any]:
    """A bench cell of a results record."""
    return {
        "subject": workload,
        "allocator": allocator,
        "variant": "",
        "metrics": {"ns_per_op": {"unit": "ns/op", "better": "lower", "samples": samples}},
        "details": {"bench": {"ops": 1000, "checksum": 7, "peak_rss_bytes": 1 << 20}},
    }


def legacy_result(allocator: str, workload: str, samples: list[float]) -> dict[str, Any]:
    """A result of a bench report of schema allocffi-bench/1 or /2 (before the results record)."""
    ordered = sorted(samples)
    return {
        "allocator": allocator,
        "workload": workload,
        "ns_per_op": ordered[len(ordered) // 2],
        "ns_per_op_min": ordered[0],
        "ns_per_op_max": ordered[-1],
        "repeats": len(samples),
        "ops": 1000,
        "checksum": 7,
        "samples": samples,
        "peak_rss_bytes": 1 << 20,
    }


def jitter(center: float, n: int = 5) -> list[float]:
    """n samples within 1% of center: tight repeats."""
    return [center * (1 + (i - n // 2) / 200) for i in range(n)]


def run_record(cells: dict[tuple[str, str], list[float]], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": record.SCHEMA,
        "command": {
            "name": "bench",
            "argv": ["allocffi", "bench", "--repeat", "5"],
            "config": {"repeat": 5, "seed": 0},
        },
        "date": "2026-01-01T00:00:00+00:00",
        "partial": False,
        "machine": copy.deepcopy(MACHINE),
        "load": copy.deepcopy(QUIET_LOAD),
        "warnings": [],
        "baseline_allocator": "libc",
        "details": {"bench": {"engine_overhead_ns_per_op": {"fixed-48": 1.5}, "checksums_agree": True}},
        "results": [result(a, w, s) for (a, w), s in cells.items()],
    }
    data.update(extra)
    return data


BASE_CELLS = {
    ("libc", "fixed-48"): jitter(20.0),
    ("bump", "fixed-48"): jitter(4.0),
    ("mimalloc", "fixed-48"): jitter(40.0),
    ("libc", "large-cycle"): jitter(100.0),
    ("mmap", "large-cycle"): jitter(100000.0),
    ("bump", "large-cycle"): jitter(50.0),
}


# --------------------------------------------------------------------------
# allocffi compare
# --------------------------------------------------------------------------


def test_a_run_compared_with_itself_has_no_significant_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "a.json", run_record(BASE_CELLS))
    code, out, err = run_cli(capsys, "compare", path, path)
    assert code == EXIT_OK, err
    assert "6 comparisons: 0 better, 0 worse, 6 no significant change" in out
    assert "warning" not in out


def test_a_shifted_run_gets_verdicts_with_ratio_interval_and_p(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = write(tmp_path, "old.json", run_record(BASE_CELLS))
    cells = dict(BASE_CELLS)
    cells[("bump", "fixed-48")] = jitter(8.0)  # 2x slower
    cells[("mimalloc", "fixed-48")] = jitter(20.0)  # 2x faster
    cells[("libc", "fixed-48")] = jitter(20.4)  # +2%: inside the noise floor
    new = write(tmp_path, "new.json", run_record(cells))
    out_json = tmp_path / "c.json"
    code, out, _ = run_cli(capsys, "compare", old, new, "--json", str(out_json))
    assert code == EXIT_OK
    lines = {tuple(line.split()[:2]): line for line in out.splitlines() if line.startswith("fixed-48")}
    assert "2.00x slower [" in lines[("fixed-48", "bump")] and "p=0.008" in lines[("fixed-48", "bump")]
    assert "2.00x faster [" in lines[("fixed-48", "mimalloc")]
    assert "no significant change (1.02x" in lines[("fixed-48", "libc")]
    data = json.loads(out_json.read_text())
    assert data["schema"] == "allocffi-compare/2"
    assert data["counts"] == {"better": 1, "worse": 1, "no significant change": 4, "too few repeats": 0}
    bump = next(c for c in data["comparison"] if c["allocator"] == "bump" and c["subject"] == "fixed-48")
    assert bump["metric"] == "ns_per_op" and bump["unit"] == "ns/op" and bump["better"] == "lower"
    assert bump["verdict"] == "worse" and bump["ratio_low"] <= bump["ratio"] == 2.0 <= bump["ratio_high"]
    assert bump["p_value"] == pytest.approx(2 / 252)

    code, _, err = run_cli(capsys, "compare", old, new, "--fail-on-regression")
    assert code == EXIT_REGRESSION and "regression: fixed-48/bump ns_per_op: 2.00x slower" in err


def test_compare_json_to_stdout_keeps_stdout_valid_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "a.json", run_record(BASE_CELLS))
    code, out, err = run_cli(capsys, "compare", path, path, "--json", "-")
    assert code == EXIT_OK
    assert len(json.loads(out)["comparison"]) == 6
    assert "comparisons: " in err  # the table went to stderr


def test_nothing_in_common_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    old = write(tmp_path, "old.json", run_record({("libc", "fixed-48"): jitter(20.0)}))
    new = write(tmp_path, "new.json", run_record({("bump", "pool-64"): jitter(20.0)}))
    code, out, err = run_cli(capsys, "compare", old, new)
    assert code == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and "no (allocator, workload) in common: nothing to compare" in err


def test_runs_from_different_machines_libraries_and_engines_warn(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = write(tmp_path, "old.json", run_record(BASE_CELLS))
    other = run_record(BASE_CELLS)
    other["machine"]["cpu"] = "Other CPU"
    other["machine"]["libraries"]["jemalloc"] = "5.3.0-2"
    other["machine"]["engine"] = "fedcba9876543210"
    new = write(tmp_path, "new.json", other)
    code, out, _ = run_cli(capsys, "compare", old, new)
    assert code == EXIT_OK
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert any("different machine: cpu Test CPU vs Other CPU" in w for w in warnings)
    assert any("different library versions: jemalloc 5.3.0-1 vs 5.3.0-2" in w for w in warnings)
    assert any("different engine build: engine 0123456789abcdef vs fedcba9876543210" in w for w in warnings)


def test_a_busy_or_interrupted_run_warns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    old = write(tmp_path, "old.json", run_record(BASE_CELLS))
    busy = run_record(BASE_CELLS, partial=True)
    busy["load"]["highest_load_during"] = 4.5
    new = write(tmp_path, "new.json", busy)
    code, out, _ = run_cli(capsys, "compare", old, new)
    assert code == EXIT_OK
    assert "warning: new run: the machine was busy during the runs: 1-minute load average 4.50" in out
    assert "warning: new run was interrupted" in out


def test_busy_threshold_counts_other_processes_only() -> None:
    record = copy.deepcopy(QUIET_LOAD)
    assert machine.busy_reason(record) is None  # 1.3 during = the benchmark's own child + 0.3
    record["highest_load_during"] = 2.01  # one more than half of 2 CPUs from others
    assert "busy during the runs" in (machine.busy_reason(record) or "")
    record["before"]["load_average"] = [1.5, 1, 1]
    assert "busy before the runs" in (machine.busy_reason(record) or "")
    assert machine.busy_reason(None) is None


def test_files_from_before_the_speedup_fields_still_load(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    legacy = {
        "schema": "allocffi-bench/1",
        "machine": {"cpu": "Test CPU", "cores": 2},
        "config": {"repeat": 3},
        "results": [
            {**legacy_result("libc", "fixed-48", [20.0, 21.0, 22.0]), "speedup_vs_libc": 1.0},
            {"allocator": "bump", "workload": "fixed-48", "ns_per_op": 5.0, "speedup_vs_libc": 4.0},
        ],
    }
    path = write(tmp_path, "legacy.json", legacy)
    loaded = report.read_json(path)
    bump = next(r for r in loaded.results if r.allocator == "bump")
    assert bump.speedup == pytest.approx(21.0 / 5.0) and bump.speedup_vs == "libc"
    assert bump.speedup_verdict == significance.TOO_FEW  # one median, no repeats
    code, out, _ = run_cli(capsys, "compare", path, path)
    assert code == EXIT_OK and "too few repeats" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "top level: expected an object, got [1, 2]"),
        ('{"x": 1}', "schema null is not one this allocffi reads"),
        ('{"schema": "allocffi-compare/1", "results": []}', 'schema "allocffi-compare/1" is not one'),
        ('{"results": [{"allocator": "a"}]}', "results[0].subject: expected a non-empty string"),
        (
            '{"results": [{"allocator": "a", "workload": "w", "ns_per_op": -1}]}',
            "results[0].metrics.ns_per_op.samples[0]: expected a number >= 0, got -1",
        ),
        (
            '{"results": [{"allocator": "a", "workload": "w", "ns_per_op": "fast"}]}',
            'results[0].metrics.ns_per_op.samples[0]: expected a finite number, got "fast"',
        ),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (
            '{"results": [{"allocator": "a", "workload": "w", "ns_per_op": NaN}]}',
            "results[0].metrics.ns_per_op.samples[0]: expected a finite number, got nan",
        ),
        ('{"results": [{"allocator": ["libc"], "workload": "w", "ns_per_op": 1}]}', "results[0].allocator"),
    ],
)
def test_a_file_that_is_not_a_run_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    good = write(tmp_path, "good.json", run_record(BASE_CELLS))
    for argv in (["compare", good, str(bad)], ["report", str(bad)]):
        code, out, err = run_cli(capsys, *argv)
        assert code == EXIT_USAGE and out == "", err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "compare", good, str(tmp_path / "missing.json"))
    assert code == EXIT_USAGE and "cannot read run" in err


# --------------------------------------------------------------------------
# allocffi report
# --------------------------------------------------------------------------


def test_report_redraws_every_file_of_a_saved_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "run.json", run_record(BASE_CELLS))
    code, out, err = run_cli(capsys, "report", path)
    assert code == EXIT_OK, err
    assert "vs libc" in out and "Speedup vs libc" in out and "Targets" not in out
    md, csv_path, png, again = (tmp_path / n for n in ("r.md", "r.csv", "r.png", "again.json"))
    code, out, err = run_cli(
        capsys, "report", path, "--markdown", str(md), "--csv", str(csv_path), "--plot", str(png),
        "--json", str(again),
    )  # fmt: skip
    assert code == EXIT_OK and out == "", err
    text = md.read_text()
    assert "## Speedup vs libc" in text and "## Targets" not in text
    assert "| fixed-48 | 1.00x | 5.00x | **0.50x** |" in text  # mimalloc: 2x slower, significant
    assert len(csv_path.read_text().splitlines()) == 1 + len(BASE_CELLS)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.read_json(again).results == report.read_json(path).results


def test_targets_only_when_asked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "run.json", run_record(BASE_CELLS))
    code, out, _ = run_cli(capsys, "report", path, "--targets")
    assert code == EXIT_OK
    assert "Targets:" in out and "met    bump fixed-48: >= 4x faster than libc: 5.00x vs libc" in out


def test_baseline_allocator_sets_what_speedups_are_against(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "run.json", run_record(BASE_CELLS))
    code, out, _ = run_cli(capsys, "report", path, "--baseline-allocator", "bump")
    assert code == EXIT_OK
    assert "vs bump" in out and "Speedup vs bump" in out
    matrix = out[out.index("Speedup vs bump") :]
    row = next(line for line in matrix.splitlines() if line.startswith("fixed-48"))
    assert row.split()[1:4] == ["0.20x*", "1.00x", "0.10x*"]  # libc, bump, mimalloc
    code, _, err = run_cli(capsys, "report", path, "--baseline-allocator", "tcmalloc")
    assert code == EXIT_USAGE and "has no results for it" in err


def test_without_libc_speedups_are_against_the_first_allocator(tmp_path: Path) -> None:
    cells = {k: v for k, v in BASE_CELLS.items() if k[0] != "libc"}
    loaded = report.read_json(write(tmp_path, "run.json", run_record(cells, baseline_allocator="libc")))
    assert loaded.baseline_allocator == "bump"  # mmap is a reference, never the default
    assert all(r.speedup is not None for r in loaded.results if r.workload == "fixed-48")
    assert "| fixed-48 | 1.00x | **0.10x** |" in report.to_markdown(loaded)


@pytest.mark.parametrize(
    ("mimalloc", "bold"),
    [
        (jitter(40.0), True),  # 2x slower, 5 tight repeats
        (jitter(40.0, 2), False),  # 2x slower, but 2 repeats prove nothing
        ([10.0, 60.0, 20.0, 50.0, 15.0], False),  # median 20: as fast as libc, within the noise
        (jitter(20.6), False),  # 3% slower: inside the 5% noise floor
    ],
)
def test_slower_is_bold_only_when_significant(tmp_path: Path, mimalloc: list[float], bold: bool) -> None:
    cells = {("libc", "fixed-48"): jitter(20.0), ("mimalloc", "fixed-48"): mimalloc}
    loaded = report.read_json(write(tmp_path, "run.json", run_record(cells)))
    row = next(
        line for line in report.to_markdown(loaded).splitlines() if line.startswith("| fixed-48 | 1.00x")
    )
    assert ("**" in row) == bold, row


def test_the_plot_keeps_references_out_of_the_colour_scale(tmp_path: Path) -> None:
    loaded = report.read_json(write(tmp_path, "run.json", run_record(BASE_CELLS)))
    # mmap is 1000x slower than libc; the widest competitor is bump at 5x faster.
    assert heatmap.colour_limit(loaded) == pytest.approx(math.log2(5.0))


def test_report_refuses_a_plot_format_before_reading_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(
        capsys, "report", str(tmp_path / "missing.json"), "--plot", str(tmp_path / "p.txt")
    )
    assert code == EXIT_USAGE and "'.txt' is not one it writes; use .png, .svg or .pdf" in err


def test_change_round_trips_through_json() -> None:
    verdict = significance.Verdict(2.0, 1.8, 2.2, 0.008, 0.95, significance.SLOWER)
    change = comparison.Change("bump", "fixed-48", 4.0, 8.0, verdict, ops_changed=False)
    assert comparison.Change.from_dict(json.loads(json.dumps(change.to_dict()))) == change


def test_a_field_only_one_run_records_is_not_a_difference() -> None:
    older = {k: v for k, v in MACHINE.items() if k != "engine"}
    older["libraries"] = {"jemalloc": "5.3.0-1"}  # no libc entry yet
    assert machine.differences(older, MACHINE) == []
    assert machine.differences({**MACHINE, "kernel": "Linux 7"}, MACHINE) == [
        "different machine: kernel Linux 7 vs Linux 6"
    ]


def test_run_warnings_name_a_busy_machine_and_wide_cells(tmp_path: Path) -> None:
    cells = {("libc", "fixed-48"): jitter(20.0), ("bump", "fixed-48"): [4.0, 4.1, 9.0, 4.2, 4.3]}
    busy = run_record(cells)
    busy["load"]["before"]["load_average"] = [3.0, 2.0, 1.0]
    loaded = report.read_json(write(tmp_path, "run.json", busy))
    warnings = report.run_warnings(loaded)
    assert len(warnings) == 2
    assert warnings[0].startswith(
        "the machine was busy before the runs: 1-minute load average 3.00 on 2 CPUs"
    )
    assert warnings[1].startswith("1 of 2 cells spread more than 20%") and "fixed-48/bump 119%" in warnings[1]
    quiet = report.read_json(write(tmp_path, "quiet.json", run_record(BASE_CELLS)))
    assert report.run_warnings(quiet) == []


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"baseline_allocator": "dlmalloc"}, "unknown --baseline-allocator 'dlmalloc'"),
        ({"baseline_allocator": "libc", "allocators": ["bump"]}, "is not among --allocators bump: add it"),
        ({"json_path": "-", "markdown_path": "-"}, "--json, --markdown: only one output can be '-'"),
        ({"plot_path": "-"}, "--plot needs a file name"),
    ],
)
def test_bench_options_for_reports_are_checked_before_running(opts: dict[str, Any], message: str) -> None:
    from allocffi.harness.bench.command import BenchOptions, check_options
    from allocffi.harness.core.errors import UsageError

    with pytest.raises(UsageError, match=message):
        check_options(BenchOptions(**opts))
