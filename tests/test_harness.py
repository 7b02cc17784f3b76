"""The benchmark harness (allocffi.harness.bench): planning, statistics, checksums,
reports, baseline comparison and targets with synthetic records, plus the
real worker (one child process per run) on tiny runs."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from allocffi._startup import child_environment
from allocffi.harness import compare
from allocffi.harness.bench import catalog, comparison, targets
from allocffi.harness.bench import results as report
from allocffi.harness.bench.command import BenchOptions, Selection, check_options, select
from allocffi.harness.core import children, machine, outputs, record, stats, units
from allocffi.harness.core.children import RunRecord, RunSpec
from allocffi.harness.core.errors import BenchFailure, UsageError
from allocffi.harness.core.stats import Result

# --------------------------------------------------------------------------
# Synthetic records
# --------------------------------------------------------------------------


def fake_run(
    allocator: str, workload: str, ns: float, checksum: int = 0xABC, repeat: int = 0, ops: int = 1000
) -> RunRecord:
    result: dict[str, Any] = {
        "elapsed_ns": int(ns * ops),
        "ops": ops,
        "ns_per_op": ns,
        "checksum": checksum,
        "bytes_requested": 48 * ops,
        "threads": 1,
        "stats": {"allocs": ops},
        "rss_before_bytes": 10 << 20,
        "rss_after_bytes": (10 << 20) + 4096 * (repeat + 1),
        "peak_rss_bytes": 20 << 20,
        "minor_faults": 7 + repeat,
        "major_faults": 0,
        "user_ns": int(ns * ops),
        "sys_ns": 0,
    }
    return RunRecord(RunSpec(allocator, workload, repeat, ops, 0), result)


def fake_result(
    allocator: str, workload: str, median: float, low: float, high: float, ops: int = 1000
) -> Result:
    return Result(
        allocator, workload, median, low, high, repeats=3, ops=ops, checksum=1, samples=[low, median, high]
    )


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------


def test_the_catalog_names_are_the_c_registry_names() -> None:
    """catalog.py writes the names out (a harness process does not load the library for them)."""
    import allocffi
    from allocffi._native import lib

    assert catalog.ALLOCATORS == allocffi.ALLOCATOR_NAMES
    assert (catalog.CAP_FREE, catalog.CAP_RESET) == (lib.AF_CAP_FREE, lib.AF_CAP_RESET)


def test_plan_interleaves_allocators_and_rotates_their_order() -> None:
    specs = children.plan(
        ["libc", "bump", "slab"], ["fixed-48", "mixed"], {"fixed-48": 10, "mixed": 20}, 3, 7
    )
    assert len(specs) == 3 * 2 * 3
    first_repeat = [(s.workload, s.allocator) for s in specs if s.repeat == 0]
    assert first_repeat == [(w, a) for w in ("fixed-48", "mixed") for a in ("libc", "bump", "slab")]
    firsts = [next(s.allocator for s in specs if s.repeat == r) for r in range(3)]
    assert firsts == ["libc", "bump", "slab"]  # each allocator leads one repeat
    assert all(s.ops == {"fixed-48": 10, "mixed": 20}[s.workload] and s.seed == 7 for s in specs)


def test_plan_runs_mmap_only_on_large_block_workloads() -> None:
    workloads = ["fixed-48", "large-cycle", "large", "oversize", "mixed"]
    workloads += ["large-pages", "oversize-pages", "large-cycle-pages"]
    specs = children.plan(["libc", "mmap"], workloads, dict.fromkeys(workloads, 5), 1, 0)
    assert {s.workload for s in specs if s.allocator == "mmap"} == set(catalog.MMAP_WORKLOADS)
    assert {s.workload for s in specs if s.allocator == "libc"} == set(workloads)


def test_overhead_plan_is_one_null_run_per_workload() -> None:
    specs = children.overhead_plan(["a", "b"], {"a": 1, "b": 2}, 3)
    assert [(s.allocator, s.workload, s.ops) for s in specs] == [("null", "a", 1), ("null", "b", 2)]


def test_child_environment_adds_the_static_tls_tunable_and_keeps_others() -> None:
    env = child_environment({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0", "X": "1"})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.tcache_count=0:glibc.rtld.optional_static_tls=16384"
    assert env["X"] == "1"
    mine = child_environment({"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=32768"})
    assert mine["GLIBC_TUNABLES"] == "glibc.rtld.optional_static_tls=32768"


# --------------------------------------------------------------------------
# Statistics and checksums
# --------------------------------------------------------------------------


def test_summarize_takes_median_min_max_and_memory_medians() -> None:
    runs = [fake_run("bump", "fixed-48", ns, repeat=i) for i, ns in enumerate([3.0, 9.0, 4.0])]
    r = stats.summarize("bump", "fixed-48", runs)
    assert (r.ns_per_op, r.ns_per_op_min, r.ns_per_op_max) == (4.0, 3.0, 9.0)
    assert r.samples == [3.0, 9.0, 4.0] and r.repeats == 3 and r.ops == 1000
    assert r.rss_growth_bytes == 2 * 4096 and r.minor_faults == 8 and r.peak_rss_bytes == 20 << 20
    assert r.bytes_per_op == 48.0


def test_speedup_is_libc_median_over_this_median() -> None:
    runs = [
        fake_run("libc", "w", 20.0),
        fake_run("bump", "w", 5.0),
        fake_run("slab", "w", 40.0),
        fake_run("slab", "v", 1.0),
    ]
    by_key = {(r.allocator, r.workload): r for r in stats.aggregate(runs)}
    assert by_key[("libc", "w")].speedup == pytest.approx(1.0)
    assert by_key[("bump", "w")].speedup == pytest.approx(4.0)
    assert by_key[("slab", "w")].speedup == pytest.approx(0.5)
    assert by_key[("slab", "w")].speedup_vs == "libc"
    assert by_key[("slab", "v")].speedup is None  # libc did not run on v
    assert by_key[("slab", "v")].speedup_vs is None


def test_equal_checksums_pass_and_a_differing_one_is_reported() -> None:
    good = [fake_run(a, "w", 1.0, checksum=0x55, repeat=r) for a in ("libc", "bump") for r in range(2)]
    assert stats.checksum_mismatches(good) == []
    bad = [*good, fake_run("slab", "w", 1.0, checksum=0x66), fake_run("libc", "v", 1.0, checksum=0x1)]
    mismatches = stats.checksum_mismatches(bad)
    assert [m.workload for m in mismatches] == ["w"]
    assert mismatches[0].describe() == "w: 0x55: libc, bump; 0x66: slab"


def test_one_repeat_disagreeing_with_the_others_is_a_mismatch() -> None:
    runs = [fake_run("libc", "w", 1.0, checksum=c, repeat=i) for i, c in enumerate([5, 5, 6])]
    runs.append(fake_run("bump", "w", 1.0, checksum=5))
    (mismatch,) = stats.checksum_mismatches(runs)
    assert mismatch.describe() == "w: 0x5/0x6: libc; 0x5: bump"
    same_change = [
        fake_run(a, "w", 1.0, checksum=c, repeat=i) for a in ("libc", "bump") for i, c in enumerate([5, 6])
    ]
    (mismatch,) = stats.checksum_mismatches(same_change)
    assert "changed between repeats (0x5, 0x6)" in mismatch.describe()


# --------------------------------------------------------------------------
# Baseline comparison
# --------------------------------------------------------------------------


def test_a_change_is_judged_on_the_repeats() -> None:
    old = fake_result("a", "w", 10.0, 9.9, 10.1)
    slower = comparison.classify(old, fake_result("a", "w", 20.0, 19.8, 20.2))
    assert slower.label == comparison.TOO_FEW  # 3 vs 3 repeats can never reach 95%
    assert slower.ratio == pytest.approx(2.0)
    five = Result(
        "a", "w", 10.0, 9.8, 10.2, repeats=5, ops=1000, checksum=1, samples=[9.8, 9.9, 10, 10.1, 10.2]
    )
    doubled = Result(**{**five.to_dict(), "samples": [2 * x for x in five.samples], "ns_per_op": 20.0})
    change = comparison.classify(five, doubled)
    assert change.label == comparison.SLOWER and change.describe().startswith("2.00x slower [")
    assert comparison.regressions([change, comparison.classify(doubled, five)]) == [change]


def test_compare_matches_pairs_and_flags_changed_ops() -> None:
    old = [fake_result("a", "w", 10, 10, 10, ops=100), fake_result("b", "w", 10, 10, 10)]
    new = [fake_result("a", "w", 10, 10, 10, ops=200), fake_result("c", "w", 1, 1, 1)]
    changes = comparison.compare(old, new)
    assert [(c.allocator, c.ops_changed) for c in changes] == [("a", True)]
    assert "[ops differ]" in changes[0].describe()


def test_baseline_round_trips_through_the_json_report(tmp_path: Path) -> None:
    rep = sample_report()
    path = tmp_path / "base.json"
    report.write_json(rep, path)
    loaded = compare.load_baseline(path).results
    assert [(r.allocator, r.workload, r.ns_per_op) for r in loaded] == [
        (r.allocator, r.workload, r.ns_per_op) for r in rep.results
    ]
    assert not any(c.significant for c in comparison.compare(loaded, rep.results))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"x": 1}', "schema null is not one this allocffi reads"),
        ('{"results": [{"allocator": "a"}]}', "results\\[0\\].subject: expected a non-empty string"),
    ],
)
def test_a_bad_baseline_is_a_usage_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        compare.load_baseline(path)
    with pytest.raises(UsageError, match="cannot read baseline"):
        compare.load_baseline(tmp_path / "missing.json")


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


def test_targets_met_missed_and_not_run() -> None:
    results = [
        fake_result("bump", "fixed-48", 2.0, 2, 2),
        fake_result("mimalloc", "fixed-48", 12.0, 12, 12),
        fake_result("jemalloc", "fixed-48", 10.0, 10, 10),
        fake_result("tcmalloc", "fixed-48", 3.0, 3, 3),  # fastest reference: bump is only 1.5x faster
        fake_result("libc", "fixed-48", 20.0, 20, 20),
    ]
    outcomes = {o.label: o for o in targets.check_all(results, {"fixed-48": 1.0})}
    vs_fast = outcomes["bump fixed-48: >= 2x faster than fastest of mimalloc/jemalloc/tcmalloc"]
    assert vs_fast.status == targets.MISSED and "1.50x vs tcmalloc" in vs_fast.measured
    assert outcomes["bump fixed-48: >= 4x faster than libc"].status == targets.MET
    assert (
        outcomes["slab pool-64: >= 1.5x faster than fastest of libc/mimalloc/jemalloc/tcmalloc"].status
        == targets.NOT_RUN
    )
    assert outcomes["engine overhead (null allocator, fixed-48) < 2 ns/op"].status == targets.MET


def test_no_slower_than_target_accepts_up_to_the_bound() -> None:
    target = targets.SpeedupTarget("large", "large-cycle", ("libc",), 1.0 / 1.5)
    assert target.label == "large large-cycle: no slower than 1.5x libc"
    ok = {
        ("large", "large-cycle"): fake_result("large", "large-cycle", 40, 40, 40),
        ("libc", "large-cycle"): fake_result("libc", "large-cycle", 30, 30, 30),
    }
    assert targets.check_speedup(target, ok).status == targets.MET
    ok[("large", "large-cycle")] = fake_result("large", "large-cycle", 50, 50, 50)
    assert targets.check_speedup(target, ok).status == targets.MISSED


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------


def sample_report() -> report.BenchReport:
    runs = [
        fake_run(a, w, ns, repeat=r)
        for r in range(2)
        for w, base in (("fixed-48", 20.0), ("large-cycle", 30.0))
        for a, ns in (("libc", base), ("bump", base / 5), ("mimalloc", base * 2 + r))
    ]
    results = stats.aggregate(runs)
    return report.BenchReport(
        date="2025-01-01T00:00:00+00:00",
        command="allocffi bench --repeat 2",
        machine={
            "cpu": "Test CPU",
            "cores": 2,
            "memory_bytes": 2**30,
            "kernel": "Linux 6",
            "python": "CPython 3",
            "libraries": {"mimalloc": "2.0.9-3"},
        },
        config={"repeat": 2, "seed": 0, "ops": {"fixed-48": 1000, "large-cycle": 1000}},
        results=results,
        overhead={"fixed-48": 1.25, "large-cycle": 3.5},
        targets=targets.check_all(results, {"fixed-48": 1.25}),
    )


RECORD_FIELDS = {  # a bench Result's fields, flat in the CSV
    "allocator": str,
    "workload": str,
    "ns_per_op": float,
    "ns_per_op_min": float,
    "ns_per_op_max": float,
    "repeats": int,
    "ops": int,
    "peak_rss_bytes": int,
    "rss_growth_bytes": int,
    "minor_faults": int,
    "checksum": int,
    "samples": list,
    "bytes_per_op": float,
}
CELL_DETAILS = {  # what a bench cell keeps under details.bench, by type
    "ops": int,
    "peak_rss_bytes": int,
    "rss_growth_bytes": int,
    "minor_faults": int,
    "checksum": int,
    "bytes_per_op": float,
}


def check_cell_schema(cell: dict[str, Any]) -> None:
    assert isinstance(cell["allocator"], str) and isinstance(cell["subject"], str)
    metric = cell["metrics"]["ns_per_op"]
    assert metric["unit"] == "ns/op" and metric["better"] == "lower"
    assert metric["samples"] and all(isinstance(x, float) for x in metric["samples"])
    for name, kind in CELL_DETAILS.items():
        assert isinstance(cell["details"]["bench"][name], kind), (name, cell["details"]["bench"][name])
    for verdict in cell["verdicts"].values():
        assert verdict["low"] <= verdict["ratio"] <= verdict["high"]


def test_json_report_schema(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    report.write_json(sample_report(), path)
    data = json.loads(path.read_text())
    assert data["schema"] == record.SCHEMA
    for key in ("date", "machine", "command", "details", "results"):
        assert key in data
    bench = data["details"]["bench"]
    for key in ("engine_overhead_ns_per_op", "targets"):
        assert key in bench
    assert bench["checksums_agree"] is True and bench["comparison"] is None
    assert len(data["results"]) == 6
    for cell in data["results"]:
        check_cell_schema(cell)
    libc = [c for c in data["results"] if c["allocator"] == "libc"]
    assert all(c["verdicts"] == {} for c in libc)  # the baseline is not judged against itself
    loaded = report.read_json(path).results
    for r in loaded:
        assert r.ns_per_op_min <= r.ns_per_op <= r.ns_per_op_max and len(r.samples) == r.repeats
        assert r.speedup is None or isinstance(r.speedup, float)
    assert all(r.speedup == 1.0 and r.speedup_vs == "libc" for r in loaded if r.allocator == "libc")


def test_csv_has_one_flat_row_per_result(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    rep = sample_report()
    report.write_csv(rep, path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == len(rep.results)
    assert set(RECORD_FIELDS) <= set(rows[0])
    mimalloc = next(r for r in rows if r["allocator"] == "mimalloc" and r["workload"] == "fixed-48")
    assert mimalloc["samples"] == "40.0000;41.0000"
    assert float(mimalloc["ns_per_op"]) == pytest.approx(40.5)


def test_markdown_has_header_tables_slow_marks_overhead_and_targets(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    report.write_markdown(sample_report(), path)
    text = path.read_text()
    for needle in (
        "Test CPU, 2 cores, 1.0 GiB",
        "mimalloc 2.0.9-3",
        "`allocffi bench --repeat 2`",
        "## Median ns/op",
        "## Speedup vs libc",
        "## Targets",
        "Engine overhead (null allocator",
        "1.25 ns/op on fixed-48",
    ):
        assert needle in text, needle
    # 2 repeats cannot show a significant difference: nothing is bold
    assert "| fixed-48 | 1.00x | 5.00x | 0.49x |" in text
    assert "| fixed-48 | 1,000 | 20.0 | 4.00 | 40.5 |" in text
    assert "met: bump fixed-48: >= 4x faster than libc" in text


def test_markdown_reports_mismatches_and_baseline_changes() -> None:
    rep = sample_report()
    rep.mismatches = stats.checksum_mismatches(
        [fake_run("libc", "w", 1, checksum=1), fake_run("bump", "w", 1, checksum=2)]
    )
    slower = [
        Result(
            **{
                **r.to_dict(),
                "ns_per_op": r.ns_per_op * 3,
                "ns_per_op_min": r.ns_per_op * 3,
                "ns_per_op_max": r.ns_per_op * 3,
                "samples": [x * 3 for x in r.samples],
            }
        )
        for r in rep.results
    ]
    rep.changes = comparison.compare(rep.results, slower)
    text = report.to_markdown(rep)
    assert "CHECKSUM MISMATCH" in text and "w: 0x1: libc; 0x2: bump" in text
    assert "## Compared with the baseline run" in text and "6 cells compared: 0 faster, 0 slower" in text
    assert "too few repeats (3.00x" in text


def test_check_output_leaves_existing_files_alone_and_creates_nothing(tmp_path: Path) -> None:
    existing = tmp_path / "keep.md"
    existing.write_text("old")
    outputs.check_output(existing, "--markdown")
    assert existing.read_text() == "old"
    outputs.check_output(tmp_path / "r.json", "--json")
    assert sorted(tmp_path.iterdir()) == [existing]


def test_check_output_refuses_impossible_paths(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match=r"--json .*file/r\.json: .*file is a file, not a directory"):
        outputs.check_output(blocker / "r.json", "--json")
    with pytest.raises(UsageError, match="is a directory: give a file name inside it"):
        outputs.check_output(tmp_path, "--csv")
    with pytest.raises(UsageError, match="sub does not exist; create it first"):
        outputs.check_output(tmp_path / "sub" / "r.json", "--json")


# --------------------------------------------------------------------------
# Options, selection, formatting, machine
# --------------------------------------------------------------------------


CAPS = children.Capabilities(
    available={"libc": True, "bump": True, "jemalloc": False, "mmap": True, "null": True},
    reasons={"jemalloc": "install libjemalloc2"},
    workloads={"fixed-48": "d1", "large": "d2"},
)


def test_select_defaults_to_every_available_allocator_and_reports_skipped() -> None:
    sel = select(BenchOptions(), CAPS)
    assert sel == Selection(["bump", "libc", "mmap"], ["fixed-48", "large"], sel.skipped)
    assert sel.skipped["jemalloc"] == "install libjemalloc2"


def test_select_refuses_unavailable_and_unknown_names() -> None:
    with pytest.raises(UsageError, match="'jemalloc' is not available here: install libjemalloc2"):
        select(BenchOptions(allocators=["libc", "jemalloc"]), CAPS)
    with pytest.raises(UsageError, match="unknown workload 'nope'; choose from fixed-48, large"):
        select(BenchOptions(workloads=["nope"]), CAPS)
    assert select(BenchOptions(allocators=["libc", "libc"], workloads=["large"]), CAPS).allocators == ["libc"]
    with pytest.raises(UsageError, match=r"no selected allocator runs on fixed-48 \(mmap runs only on large"):
        select(BenchOptions(allocators=["mmap"]), CAPS)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (BenchOptions(allocators=["dlmalloc"]), "unknown allocator 'dlmalloc'"),
        (BenchOptions(allocators=["null"]), "not a competitor"),
        (BenchOptions(repeat=0), "--repeat"),
        (BenchOptions(ops=0), "--ops"),
        (BenchOptions(time_budget_s=-1.0), "--time-budget"),
        (BenchOptions(ops=5, time_budget_s=1.0), "exclude each other"),
    ],
)
def test_bad_options_are_usage_errors(opts: BenchOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_options(opts)


def test_units() -> None:
    assert [units.ns(v) for v in (1.234, 12.34, 1234.5, None)] == ["1.23", "12.3", "1,234", "-"]
    assert [units.speedup(v) for v in (0.5, 12.34, 250.0)] == ["0.50x", "12.3x", "250x"]
    assert [units.size(v) for v in (100, 2048, -3 * 2**20)] == ["100 B", "2.0 KiB", "-3.0 MiB"]


def test_machine_parsing() -> None:
    assert machine.cpu_model("processor\t: 0\nmodel name\t: Fancy CPU @ 3GHz\n") == "Fancy CPU @ 3GHz"
    assert machine.memory_bytes("MemTotal:       1024 kB\n") == 1024 * 1024
    info = machine.describe()
    assert info["cores"] == os.cpu_count() and isinstance(info["libraries"], dict)
    assert "cores" in machine.one_line(info)


# --------------------------------------------------------------------------
# The real worker (one child process per run)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def caps() -> children.Capabilities:
    return children.probe()


def test_probe_lists_engine_workloads_and_allocators(caps: children.Capabilities) -> None:
    assert "fixed-48" in caps.workloads and all(caps.workloads.values())
    assert caps.available["libc"] and caps.available["bump"] and caps.available["null"]
    assert set(catalog.SELECTABLE) <= set(caps.available)


def test_same_seed_same_checksum_twice_and_across_allocators(caps: children.Capabilities) -> None:
    names = [a for a in ("libc", "bump", "slab", "mimalloc") if caps.available.get(a)]
    records = [children.run_child(RunSpec(a, "mixed", 0, 3000, 11)) for a in [names[0], *names]]
    assert len({r.checksum for r in records}) == 1
    assert all(r.ops == 3000 and r.ns_per_op > 0 for r in records)
    other = children.run_child(RunSpec("libc", "mixed", 0, 3000, 12))
    assert other.checksum != records[0].checksum  # the seed really changes the stream


def test_worker_record_has_every_result_field() -> None:
    record = children.run_child(RunSpec("bump", "fixed-48", 0, 2000, 0))
    for name in (
        "elapsed_ns",
        "ops",
        "ns_per_op",
        "checksum",
        "bytes_requested",
        "threads",
        "stats",
        "rss_before_bytes",
        "rss_after_bytes",
        "peak_rss_bytes",
        "minor_faults",
        "user_ns",
    ):
        assert name in record.result
    assert record.result["stats"]["allocs"] >= 2000
    assert record.result["bytes_requested"] == 48 * 2000


def test_engine_refusal_is_a_bench_failure_with_its_message() -> None:
    with pytest.raises(BenchFailure, match="no-such-workload"):
        children.run_child(RunSpec("libc", "no-such-workload", 0, 10, 0))
