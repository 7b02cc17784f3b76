"""``allocffi calibrate`` and the short calibration of ``allocffi bench``: usage errors (one
line, exit 2), the plan (interleaved), the arithmetic of a row and its flag on synthetic
figures, and quick real runs with the JSON they write. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import run_cli

from allocffi.harness import calibrate
from allocffi.harness.core import children
from allocffi.harness.core import record as results_record
from allocffi.harness.core.errors import EXIT_OK, EXIT_USAGE


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--repeat", "0"], "argument --repeat: expected an integer from 1 to 10000 (got '0')"),
        (["--ops", "0"], "argument --ops: expected an integer from 1"),
        (["--libraries", "libc,dlmalloc"], "unknown library 'dlmalloc'"),
        (["--libraries", "bump"], "unknown library 'bump'"),
        (["--workloads", "mixed"], "calibration runs fixed-48, fixed-256, fixed-4096, not 'mixed'"),
        (["--seed", "-1"], "argument --seed: expected an integer from 0 to 18446744073709551615"),
        (["--repeat", "x"], "(got 'x')"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run_cli(capsys, "calibrate", *argv)
    assert code == EXIT_USAGE and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err


def test_unwritable_json_fails_before_running(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run_cli(capsys, "calibrate", "--json", str(blocker / "c.json"))
    assert code == EXIT_USAGE and out == "" and "--json" in err and "is a file, not a directory" in err


def test_plan_interleaves_libraries_and_loops_and_rotates() -> None:
    specs = calibrate.plan(["libc", "jemalloc"], ["fixed-48"], {"fixed-48": 10}, 3, 0)
    assert len(specs) == 2 * 2 * 3
    firsts = [(s.allocator, s.direct) for s in specs if s.repeat >= 0][::4]
    assert firsts == [("libc", True), ("libc", False), ("jemalloc", True)]  # rotated by one per repeat
    for r in range(3):
        members = {(s.allocator, s.direct) for s in specs if s.repeat == r}
        assert members == {("libc", True), ("libc", False), ("jemalloc", True), ("jemalloc", False)}


def record(allocator: str, direct: bool, ns: float, checksum: int = 7) -> children.RunRecord:
    spec = children.RunSpec(allocator, "fixed-48", 0, 1000, 0, direct=direct)
    return children.RunRecord(spec, {"ns_per_op": ns, "checksum": checksum, "ops": 1000})


CONFIG: dict[str, Any] = {
    "libraries": ["libc", "jemalloc", "tcmalloc"],
    "workloads": ["fixed-48"],
    "repeat": 1,
}


def test_rows_compare_each_loop_with_glibcs_same_loop_and_flag_beyond_15_percent() -> None:
    records = [
        record("libc", True, 10.0),
        record("libc", False, 12.0),
        record("jemalloc", True, 5.0),  # 2.0x direct
        record("jemalloc", False, 8.0),  # 1.5x through allocffi: -25%, flagged
        record("tcmalloc", True, 4.0),  # 2.5x direct
        record("tcmalloc", False, 5.0),  # 2.4x: -4%, fine
    ]
    data = calibrate.summarize(records, CONFIG, {}).to_json()
    rows = {r["library"]: r for r in data["rows"]}
    assert rows["libc"]["direct_speedup_vs_libc"] == 1.0 and rows["libc"]["engine_speedup_vs_libc"] == 1.0
    assert rows["jemalloc"]["wrapper_ns_per_op"] == pytest.approx(3.0)
    assert rows["jemalloc"]["direct_speedup_vs_libc"] == pytest.approx(2.0)
    assert rows["jemalloc"]["engine_speedup_vs_libc"] == pytest.approx(1.5)
    assert rows["jemalloc"]["speedup_change"] == pytest.approx(-0.25) and rows["jemalloc"]["flagged"]
    assert rows["tcmalloc"]["speedup_change"] == pytest.approx(-0.04) and not rows["tcmalloc"]["flagged"]
    assert data["flagged"] == ["jemalloc fixed-48"] and data["checksums_agree"]
    assert rows["jemalloc"]["spread"] == 0.0  # one sample per loop
    text = "\n".join(calibrate.text_lines(data))
    assert "FLAGGED" in text and "jemalloc fixed-48" in text
    assert any("-25% FLAGGED" in line for line in calibrate.markdown_lines(data))


def test_the_spread_of_the_noisier_loop_is_reported_and_caveats_the_flags() -> None:
    records = [
        record("libc", True, 10.0),
        record("libc", True, 10.0),
        record("libc", False, 10.0),
        record("libc", False, 10.0),
        record("jemalloc", True, 5.0),
        record("jemalloc", True, 5.0),
        record("jemalloc", False, 4.0),  # median 6, spread (8 - 4) / 6
        record("jemalloc", False, 8.0),
    ]
    data = calibrate.summarize(records, {**CONFIG, "libraries": ["libc", "jemalloc"]}, {}).to_json()
    row = next(r for r in data["rows"] if r["library"] == "jemalloc")
    assert row["spread"] == pytest.approx(4 / 6) and row["flagged"]
    assert "noise" in calibrate.summary_line(data)


def test_a_checksum_disagreement_is_reported() -> None:
    records = [record("libc", True, 10.0), record("libc", False, 12.0, checksum=8)]
    data = calibrate.summarize(records, {**CONFIG, "libraries": ["libc"]}, {}).to_json()
    assert data["checksums_agree"] is False


def test_quick_calibration_writes_its_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    code, out, err = run_cli(
        capsys, "calibrate", "--libraries", "tcmalloc", "--workloads", "fixed-48,fixed-256",
        "--repeat", "2", "--ops", "3000", "--json", str(path),
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert "Calibration" in out and "tcmalloc" in out
    saved = json.loads(path.read_text())
    assert saved["schema"] == results_record.SCHEMA and saved["command"]["name"] == calibrate.COMMAND
    assert saved["details"]["calibrate"]["tolerance"] == calibrate.TOLERANCE
    assert saved["command"]["argv"][:2] == ["allocffi", "calibrate"] and "cpu" in saved["machine"]
    assert {c["subject"] for c in saved["results"]} == {"fixed-48", "fixed-256"}
    data = calibrate.from_record(results_record.read(path)).to_json()  # the derived figures, from the samples
    assert data["config"]["libraries"] == ["libc", "tcmalloc"]  # libc joins as the reference
    assert data["config"]["ops"] == {"fixed-48": 3000, "fixed-256": 3000}
    assert data["checksums_agree"] is True
    assert {(r["library"], r["workload"]) for r in data["rows"]} == {
        (lib, w) for lib in ("libc", "tcmalloc") for w in ("fixed-48", "fixed-256")
    }
    for r in data["rows"]:
        assert len(r["direct_samples"]) == 2 and len(r["engine_samples"]) == 2
        assert r["wrapper_ns_per_op"] == pytest.approx(r["engine_ns_per_op"] - r["direct_ns_per_op"])
        assert r["flagged"] == (abs(r["speedup_change"]) > calibrate.TOLERANCE)
        samples = r["direct_samples"] + r["engine_samples"]
        assert 0.0 <= r["spread"] <= (max(samples) - min(samples)) / min(samples)
        if r["library"] == "libc":
            assert r["direct_speedup_vs_libc"] == 1.0 and r["engine_speedup_vs_libc"] == 1.0
    assert data["flagged"] == [f"{r['library']} {r['workload']}" for r in data["rows"] if r["flagged"]]


def test_json_to_stdout_keeps_the_table_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "calibrate", "--libraries", "libc", "--workloads", "fixed-48",
        "--repeat", "1", "--ops", "1000", "--json", "-",
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert json.loads(out)["schema"] == results_record.SCHEMA
    assert "Calibration" in err
