"""Both modes of the allocators that can free and reset: the catalog derives the ``+reset``
competitors from capabilities, a quick ``allocffi bench`` runs both, and every result row says
its mode and carries the calibration and the memory figures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from support import run_cli

import allocffi
from allocffi._native import lib
from allocffi.harness.bench import catalog
from allocffi.harness.bench import results as report
from allocffi.harness.core import children
from allocffi.harness.core.errors import EXIT_OK, EXIT_USAGE
from tests.conftest import ensure_available

FREE, RESET = lib.AF_CAP_FREE, lib.AF_CAP_RESET


def test_modes_follow_capabilities() -> None:
    assert catalog.modes(FREE | RESET) == ["free", "arena"]
    assert catalog.modes(FREE) == ["free"]
    assert catalog.modes(RESET | lib.AF_CAP_TRIM) == ["arena"]
    assert catalog.competitors("x", FREE | RESET) == ["x", "x+reset"]
    assert catalog.competitors("x", RESET) == ["x"]
    assert catalog.split_competitor("jemalloc-arena+reset") == ("jemalloc-arena", "arena")
    assert catalog.split_competitor("bump") == ("bump", None)


def test_the_probe_offers_both_modes_exactly_for_free_and_reset_allocators() -> None:
    caps = children.probe()
    competitors = caps.competitors
    for name in allocffi.ALLOCATOR_NAMES:
        if not caps.available[name]:
            continue
        with allocffi.open(name) as a:
            flags = a.capabilities
        both = allocffi.Capability.FREE in flags and allocffi.Capability.RESET in flags
        assert (name + catalog.RESET_SUFFIX in competitors) == both, name
        if both:
            assert competitors.index(name + catalog.RESET_SUFFIX) == competitors.index(name) + 1
    for name in ("mimalloc-heap", "jemalloc-arena"):
        if caps.available[name]:
            assert f"{name}+reset" in competitors and caps.available[f"{name}+reset"]
    assert "bump+reset" not in competitors and "libc+reset" not in competitors


def test_a_reset_name_of_an_allocator_without_both_modes_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(capsys, "bench", "--allocators", "libc+reset", "--workloads", "fixed-48")
    assert code == EXIT_USAGE and "no separate arena mode" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "bench", "--allocators", "mmap+reset", "--workloads", "large")
    assert code == EXIT_USAGE and "unknown allocator 'mmap+reset'" in err


def test_quick_bench_runs_both_modes_and_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ensure_available("jemalloc-arena")
    ensure_available("tcmalloc")
    paths = {ext: tmp_path / f"r.{ext}" for ext in ("json", "csv", "md")}
    code, out, err = run_cli(
        capsys, "bench", "--allocators", "libc,bump,tcmalloc,jemalloc-arena,jemalloc-arena+reset",
        "--workloads", "fixed-48,mixed", "--repeat", "1", "--ops", "3000",
        "--json", str(paths["json"]), "--csv", str(paths["csv"]), "--markdown", str(paths["md"]),
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(paths["json"].read_text())
    results = report.read_json(paths["json"]).results
    modes = {(r.allocator, r.workload): r.mode for r in results}
    for workload in ("fixed-48", "mixed"):
        assert modes[("jemalloc-arena", workload)] == "free"
        assert modes[("jemalloc-arena+reset", workload)] == "arena"
        assert modes[("bump", workload)] == "arena" and modes[("libc", workload)] == "free"
    for r in results:
        assert r.peak_live_bytes > 0
        assert r.rss_per_live_byte is None or r.rss_per_live_byte >= 0
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert {row["mode"] for row in rows} == {"free", "arena"}
    # the short calibration of the same run: the selected system libraries, libc as reference
    calibration = data["details"]["bench"]["calibration"]  # a calibrate record of its own
    assert calibration["command"]["name"] == "calibrate"
    assert calibration["command"]["config"]["libraries"] == ["libc", "tcmalloc"]
    assert calibration["command"]["config"]["workloads"] == ["fixed-48", "fixed-256"]
    assert "## Calibration" in paths["md"].read_text() and "Calibration" in out
    # the Markdown says what each row measures: touch and sharing per workload, mode per competitor
    markdown = paths["md"].read_text()
    assert "| fixed-48 | ends | one thread | 1 |" in markdown
    assert "jemalloc-arena: free, jemalloc-arena+reset: arena" in markdown


def test_no_calibrate_leaves_it_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "bench", "--allocators", "libc", "--workloads", "fixed-48", "--repeat", "1", "--ops", "1000",
        "--no-calibrate", "--no-overhead", "--json", str(path),
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert json.loads(path.read_text())["details"]["bench"]["calibration"] is None


def test_arena_mode_competitors_are_refused_on_shared_instances() -> None:
    caps = children.probe()
    for name in ("mimalloc-heap", "jemalloc-arena"):
        if caps.available[name]:
            assert "+reset" not in name and f"{name}+reset" in caps.shared_refused
