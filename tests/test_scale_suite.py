"""The scale suite (live-* workloads): selection, names, curves over N, and the
engine's live-set kernel on real allocators."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocffi.harness._engine import ffi, lib
from allocffi.harness.bench import catalog, targets
from allocffi.harness.bench import results as report
from allocffi.harness.bench.command import BenchOptions, check_options, select
from allocffi.harness.bench.scaling import growth, parse_live_name, scale_series, write_scale_plot
from allocffi.harness.core import stats
from allocffi.harness.core.children import Capabilities, RunRecord, RunSpec
from allocffi.harness.core.errors import UsageError

ENGINE_WORKLOADS = [
    ffi.string(lib.af_bench_workload_name(i)).decode() for i in range(lib.af_bench_workload_count())
]
SCALE = [w for w in ENGINE_WORKLOADS if catalog.is_scale_workload(w)]

CAPS = Capabilities(
    available={"libc": True, "large": True, "slab": True},
    reasons={},
    workloads={"fixed-48": "d", "live-64-1e3-random": "d", "live-large-1e3-random": "d"},
)


def test_the_engine_has_the_live_set_family_with_default_ops() -> None:
    for n in ("1e3", "1e4", "1e5", "1e6"):
        assert f"live-64-{n}-random" in SCALE and f"live-64-{n}-inorder" in SCALE
    assert {"live-mixed-1e6-random", "live-large-1e3-random"} <= set(SCALE)
    for w in SCALE:
        name = parse_live_name(w)
        assert name is not None and name.order in ("random", "inorder"), w
        assert catalog.DEFAULT_OPS[w] % name.live == 0, f"{w}: default ops are not whole phases"
        assert catalog.DEFAULT_OPS[w] >= 3 * name.live, f"{w}: fewer than three phases"


def test_default_run_leaves_the_scale_suite_out_and_scale_selects_only_it() -> None:
    assert select(BenchOptions(), CAPS).workloads == ["fixed-48"]
    assert select(BenchOptions(scale=True), CAPS).workloads == ["live-64-1e3-random", "live-large-1e3-random"]
    assert select(BenchOptions(workloads=["live-64-1e3-random"]), CAPS).workloads == ["live-64-1e3-random"]
    with pytest.raises(UsageError, match="exclude each other"):
        check_options(BenchOptions(scale=True, workloads=["fixed-48"]))


def test_the_region_cache_runs_only_the_large_live_sets() -> None:
    assert not catalog.runs_on("large", "live-64-1e6-random")
    assert not catalog.runs_on("large", "live-mixed-1e6-random")
    assert catalog.runs_on("large", "live-large-1e3-random")
    assert catalog.runs_on("large", "fixed-48")
    assert catalog.runs_on("slab", "live-64-1e6-random")


def test_names_parse_and_others_do_not() -> None:
    assert parse_live_name("live-64-1e6-random") == ("64", 1_000_000, "random")
    assert parse_live_name("live-large-1e2-inorder") == ("large", 100, "inorder")
    assert parse_live_name("fixed-48") is None
    assert parse_live_name("live-64-many-random") is None
    assert parse_live_name("live-64-1e3") is None


def _record(allocator: str, workload: str, ns: float) -> RunRecord:
    ops = 1000
    result = {
        "elapsed_ns": int(ns * ops),
        "ops": ops,
        "ns_per_op": ns,
        "checksum": 1,
        "bytes_requested": 64 * ops,
        "threads": 1,
        "stats": {"allocs": ops},
        "rss_before_bytes": 1 << 20,
        "rss_after_bytes": 2 << 20,
        "peak_rss_bytes": 4 << 20,
        "minor_faults": 0,
        "major_faults": 0,
        "user_ns": int(ns * ops),
        "sys_ns": 0,
    }
    return RunRecord(RunSpec(allocator, workload, 0, ops, 0), result)


def _scale_report() -> report.BenchReport:
    runs = [
        _record(a, f"live-64-{n}-random", ns * k)
        for a, k in (("slab", 1.0), ("libc", 3.0))
        for n, ns in (("1e3", 2.0), ("1e5", 4.0), ("1e6", 8.0))
    ] + [_record("slab", "fixed-48", 5.0)]
    results = stats.aggregate(runs)
    return report.BenchReport(
        date="2026-01-01T00:00:00+00:00",
        command="allocffi bench --scale",
        machine={},
        config={},
        results=results,
        overhead={},
        targets=targets.check_all(results, {}),
    )


def test_series_group_by_sizes_and_order_with_n_ascending_and_growth() -> None:
    series = scale_series(_scale_report().results)
    assert list(series) == [("64", "random")]
    assert series[("64", "random")]["slab"] == [(1000, 2.0), (100_000, 4.0), (1_000_000, 8.0)]
    assert growth(series[("64", "random")]["libc"]) == pytest.approx(4.0)
    assert growth([(1000, 2.0)]) is None


def test_scale_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "scale.png"
    write_scale_plot(_scale_report(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("workload", ["live-64-1e3-random", "live-64-1e3-inorder", "live-large-1e2-random"])
def test_live_kernel_checksums_agree_across_allocators(workload: str) -> None:
    checksums = {}
    for allocator in ("slab", "libc", "bump"):
        names = (ffi.new("char[]", workload.encode()), ffi.new("char[]", allocator.encode()))
        config = ffi.new(
            "af_bench_config *", {"workload": names[0], "allocator": names[1], "ops": 2500, "seed": 3}
        )
        out = ffi.new("af_bench_result *")
        err = ffi.new("af_error *")
        assert lib.af_bench_run(config, out, err) == lib.AF_OK, ffi.string(err.message)
        assert out.ops == 2500
        checksums[allocator] = out.checksum
    assert len(set(checksums.values())) == 1, checksums


def test_scale_targets_are_checked_on_a_scale_run_and_not_run_otherwise() -> None:
    runs = [
        _record("slab", "live-64-1e5-random", 10.0),
        _record("libc", "live-64-1e5-random", 30.0),
        _record("mimalloc", "live-64-1e5-random", 11.0),
    ]
    outcomes = {o.label: o for o in targets.check_all(stats.aggregate(runs), {})}
    label = "slab live-64-1e5-random: no slower than 1.2x fastest of libc/mimalloc/jemalloc/tcmalloc"
    assert outcomes[label].status == targets.NOT_RUN  # jemalloc and tcmalloc did not run
    runs += [_record("jemalloc", "live-64-1e5-random", 20.0), _record("tcmalloc", "live-64-1e5-random", 8.5)]
    outcomes = {o.label: o for o in targets.check_all(stats.aggregate(runs), {})}
    assert outcomes[label].status == targets.MET  # 10 ns is 1.18x tcmalloc's 8.5
    assert "vs tcmalloc" in outcomes[label].measured
    large = "large live-large-1e3-random: no slower than 2x fastest of slab/libc/mimalloc/jemalloc/tcmalloc"
    assert outcomes[large].status == targets.NOT_RUN
