"""A user's own workloads (``allocffi bench --workload-file``), threads-N for
any N, shared-threads-N and the touch policies, through the harness and the
command line: valid files run in the engine (checksums agree, the spec is in
the report and repeats from it), every kind of malformed file is one line on
stderr with exit status 2 naming the file, the table and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_cli

from allocffi.harness.bench import catalog, workload_file
from allocffi.harness.bench import results as report
from allocffi.harness.bench.command import BenchOptions, select
from allocffi.harness.bench.workload_file import SizeEntry, WorkloadFileError, WorkloadSpec
from allocffi.harness.core import children
from allocffi.harness.core.children import RunSpec
from allocffi.harness.core.errors import EXIT_OK, EXIT_USAGE, UsageError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bench" / "workloads" / "example.toml"

GOOD = """
[[workload]]
name = "nodes"
kernel = "replace"
live = 64
phase = 500
sizes = [
  { size = 48, weight = 3 },
  { min = 64, max = 256 },
  { lognormal = { median = 1000, sigma = 1.0 }, min = 100, max = 20000, weight = 0.5 },
]

[[workload]]
name = "pages.v2"
kernel = "pairs"
touch = "pages"
threads = 2
ops = 300
sizes = [{ min = 8192, max = 65536 }]
"""


def write(tmp_path: Path, text: str, name: str = "w.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------
# Loading and checking
# --------------------------------------------------------------------------


def test_a_valid_file_gives_checked_specs_with_defaults(tmp_path: Path) -> None:
    nodes, pages = workload_file.load(write(tmp_path, GOOD))
    assert nodes == WorkloadSpec(
        "nodes",
        "replace",
        (SizeEntry(48, 48, 3.0), SizeEntry(64, 256, 1.0), SizeEntry(100, 20000, 0.5, 1000.0, 1.0)),
        phase=500,
        live=64,
    )
    assert nodes.touch == "ends" and nodes.threads is None and nodes.ops is None
    assert pages.touch == "pages" and pages.threads == 2 and pages.ops == 300 and pages.phase == 1000
    assert pages.live is None


def test_to_dict_is_the_normalised_form_and_loads_back(tmp_path: Path) -> None:
    specs = workload_file.load(write(tmp_path, GOOD))
    for spec in specs:
        assert workload_file.check_table("x", 0, spec.to_dict()) == spec
        assert workload_file.from_json(spec.to_json()) == spec
    report = {"config": {"workload_specs": [s.to_dict() for s in specs]}}
    assert workload_file.load(write(tmp_path, json.dumps(report), "run.json")) == specs


def test_the_example_file_is_valid() -> None:
    names = [spec.name for spec in workload_file.load(EXAMPLE)]
    assert names == ["parser-nodes", "request-burst", "image-buffers"]


MALFORMED = [
    # (what, file text, needles in the one error line after the file name)
    ("missing key", '[[workload]]\nname = "a"\nsizes = [{size = 8}]\n', ["workload[0]", "kernel: missing"]),
    (
        "missing key in the second table",
        GOOD + '[[workload]]\nname = "c"\nkernel = "pairs"\n',
        ['workload[2] ("c")', "sizes: missing"],
    ),
    (
        "wrong type",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nphase = "10"\nsizes = [{size = 8}]\n',
        ["workload[0]", "phase: must be an integer (got str '10')"],
    ),
    (
        "a bool is not an integer",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nphase = true\nsizes = [{size = 8}]\n',
        ["phase: must be an integer"],
    ),
    (
        "unknown kernel",
        '[[workload]]\nname = "a"\nkernel = "pairz"\nsizes = [{size = 8}]\n',
        ["kernel: unknown kernel 'pairz'; choose from pairs, replace, burst, pressure"],
    ),
    (
        "unknown key",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nlve = 3\nsizes = [{size = 8}]\n',
        ["lve: unknown key"],
    ),
    (
        "unknown key in a size",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{size = 8}, {size = 9, wieght = 2}]\n',
        ["sizes[1].wieght: unknown key"],
    ),
    (
        "unknown top-level key",
        'title = "x"\n[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{size = 8}]\n',
        ["title: unknown top-level key"],
    ),
    (
        "min > max",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{min = 100, max = 50}]\n',
        ["sizes[0].min: min 100 > max 50"],
    ),
    (
        "negative size",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{size = -8}]\n',
        ["sizes[0].size: must be in [8, 1073741824] (got -8)"],
    ),
    (
        "size below the tag",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{min = 1, max = 8}]\n',
        ["sizes[0].min: must be in [8,"],
    ),
    (
        "negative weight",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{size = 8, weight = -1}]\n',
        ["sizes[0].weight: must not be negative"],
    ),
    (
        "zero weight sum",
        '[[workload]]\nname = "a"\nkernel = "pairs"\n'
        "sizes = [{size = 8, weight = 0}, {size = 16, weight = 0}]\n",
        ["sizes: the weights add up to 0"],
    ),
    (
        "infinite weight",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{size = 8, weight = inf}]\n',
        ["sizes[0].weight: must be finite"],
    ),
    (
        "size and a range together",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{size = 8, max = 16}]\n',
        ["sizes[0].max: not allowed with size"],
    ),
    (
        "no sizes",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = []\n',
        ["sizes: must be a list of 1 to"],
    ),
    (
        "a size that is not a table",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [8]\n',
        ["sizes[0]: must be a table"],
    ),
    (
        "log-normal median outside the range",
        '[[workload]]\nname = "a"\nkernel = "pairs"\n'
        "sizes = [{lognormal = {median = 5000, sigma = 1}, min = 8, max = 4096}]\n",
        ["sizes[0].lognormal.median: must lie in [min, max]"],
    ),
    (
        "log-normal sigma 0",
        '[[workload]]\nname = "a"\nkernel = "pairs"\n'
        "sizes = [{lognormal = {median = 50, sigma = 0}, min = 8, max = 4096}]\n",
        ["sizes[0].lognormal.sigma: must be in (0, 10]"],
    ),
    (
        "log-normal without sigma",
        '[[workload]]\nname = "a"\nkernel = "pairs"\n'
        "sizes = [{lognormal = {median = 50}, min = 8, max = 4096}]\n",
        ["sizes[0].lognormal.sigma: missing"],
    ),
    (
        "log-normal without a range",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{lognormal = {median = 50, sigma = 1}}]\n',
        ["sizes[0].min: missing"],
    ),
    (
        "bad touch",
        '[[workload]]\nname = "a"\nkernel = "pairs"\ntouch = "some"\nsizes = [{size = 8}]\n',
        ["touch: unknown touch policy 'some'; choose from ends, pages, all"],
    ),
    (
        "replace without live",
        '[[workload]]\nname = "a"\nkernel = "replace"\nsizes = [{size = 8}]\n',
        ["live: missing"],
    ),
    (
        "live on another kernel",
        '[[workload]]\nname = "a"\nkernel = "burst"\nlive = 4\nsizes = [{size = 8}]\n',
        ["live: only kernel replace"],
    ),
    (
        "zero phase",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nphase = 0\nsizes = [{size = 8}]\n',
        ["phase: must be in [1, 16777216] (got 0)"],
    ),
    (
        "threads out of range",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nthreads = 300\nsizes = [{size = 8}]\n',
        ["threads: must be in [1, 256] (got 300)"],
    ),
    (
        "negative ops",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nops = -5\nsizes = [{size = 8}]\n',
        ["ops: must be in [1,"],
    ),
    (
        "bad name",
        '[[workload]]\nname = "my workload"\nkernel = "pairs"\nsizes = [{size = 8}]\n',
        ["name: must be 1 to 64 letters"],
    ),
    (
        "duplicate name",
        '[[workload]]\nname = "a"\nkernel = "pairs"\nsizes = [{size = 8}]\n'
        '[[workload]]\nname = "a"\nkernel = "burst"\nsizes = [{size = 8}]\n',
        ['workload[1] ("a")', "name: 'a' is already the name of workload[0]"],
    ),
    (
        "name of a built-in workload",
        '[[workload]]\nname = "fixed-48"\nkernel = "pairs"\nsizes = [{size = 8}]\n',
        ["name: 'fixed-48' is a built-in workload"],
    ),
    (
        "name of a threads workload",
        '[[workload]]\nname = "shared-threads-7"\nkernel = "pairs"\nsizes = [{size = 8}]\n',
        ["name: 'shared-threads-7' is a built-in workload"],
    ),
    ("bad TOML syntax", '[[workload]]\nname = "a\n', ["not valid TOML", "line 2"]),
    ("no workload tables", "# nothing\n", ["workload: missing (add at least one [[workload]] table)"]),
    ("a workload that is not a table", "workload = [1]\n", ["workload[0]: must be a table"]),
]


@pytest.mark.parametrize(("what", "text", "needles"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_every_malformed_file_is_one_line_exit_2_with_file_table_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, what: str, text: str, needles: list[str]
) -> None:
    path = write(tmp_path, text)
    code, out, err = run_cli(capsys, "bench", "--workload-file", str(path), "--allocators", "libc")
    assert code == EXIT_USAGE, what
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and out == "", err
    assert lines[0].startswith(f"allocffi bench: error: {path}: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("missing.toml", None, "No such file or directory; check the path"),
        ("run.json", '{"config": {}}', "config.workload_specs is missing"),
        ("broken.json", '{"config": ', "not valid JSON"),
        ("bad-spec.json", '{"config": {"workload_specs": [{"name": "a"}]}}', "workload[0]"),
    ],
)
def test_unusable_files_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: str | None, needle: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    code, _, err = run_cli(capsys, "bench", "--workload-file", str(path))
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert str(path) in err and needle in err, err


# --------------------------------------------------------------------------
# The engine checks specs too
# --------------------------------------------------------------------------


def test_the_engine_refuses_a_bad_spec_on_its_own() -> None:
    from allocffi.harness._engine import ffi, lib

    entry = ffi.new("af_size_entry[]", [{"min": 100, "max": 50, "weight": 1.0}])
    name = ffi.new("char[]", b"raw")
    spec = ffi.new(
        "af_workload_spec *", {"name": name, "kernel": 0, "sizes": entry, "size_count": 1, "phase": 10}
    )
    allocator = ffi.new("char[]", b"libc")
    config = ffi.new("af_bench_config *", {"allocator": allocator, "ops": 10, "spec": spec})
    result = ffi.new("af_bench_result *")
    err = ffi.new("af_error *")
    assert lib.af_bench_run(config, result, err) == lib.AF_ERR_INVALID
    assert ffi.string(err.message).decode() == "workload spec 'raw': sizes[0]: min 100 > max 50"
    spec.kernel = 9
    assert lib.af_bench_check(config, err) == lib.AF_ERR_INVALID
    assert "unknown kernel 9" in ffi.string(err.message).decode()


# --------------------------------------------------------------------------
# Running a file
# --------------------------------------------------------------------------


def test_a_workload_file_runs_in_the_engine_and_repeats_from_its_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, GOOD)
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    common = ["--allocators", "libc,slab,bump", "--repeat", "1", "--no-overhead", "--quiet", "--seed", "5"]
    code, _, err = run_cli(capsys, "bench", "--workload-file", str(path), *common, "--json", str(first))
    assert code == EXIT_OK, err
    data = json.loads(first.read_text())
    config = data["command"]["config"]
    assert data["details"]["bench"]["checksums_agree"] and config["workloads"] == ["nodes", "pages.v2"]
    assert config["workload_file"] == str(path)
    specs = {s["name"]: s for s in config["workload_specs"]}
    assert specs["pages.v2"]["ops"] == 300 and specs["nodes"]["ops"] >= 1  # the ops that ran
    rows = {(r.workload, r.allocator): r for r in report.read_json(first).results}
    assert rows[("pages.v2", "slab")].touch == "pages" and rows[("nodes", "libc")].touch == "ends"
    assert rows[("pages.v2", "libc")].threads == 2
    assert rows[("pages.v2", "libc")].sharing == catalog.PER_THREAD_INSTANCES
    assert rows[("nodes", "bump")].sharing == catalog.ONE_THREAD

    code, _, err = run_cli(capsys, "bench", "--workload-file", str(first), *common, "--json", str(second))
    assert code == EXIT_OK, err
    again = json.loads(second.read_text())
    assert again["command"]["config"]["workload_specs"] == config["workload_specs"]
    assert {(r.workload, r.allocator): r.checksum for r in report.read_json(second).results} == {
        key: row.checksum for key, row in rows.items()
    }


def test_a_spec_runs_through_the_worker_like_a_named_workload() -> None:
    fixed = WorkloadSpec("my-48", "pairs", (SizeEntry(48, 48),))
    records = [
        children.run_child(RunSpec(a, "my-48", 0, 3000, 4, 0, fixed.to_json())) for a in ("libc", "slab")
    ]
    named = children.run_child(RunSpec("libc", "fixed-48", 0, 3000, 4))
    assert {r.checksum for r in records} == {named.checksum}  # same operations as fixed-48
    assert all(r.result["touch"] == "ends" for r in records)


# --------------------------------------------------------------------------
# threads-N, shared-threads-N, touch variants
# --------------------------------------------------------------------------


def test_thread_names_parse_for_any_n() -> None:
    assert catalog.thread_count("threads-3") == 3 and catalog.thread_count("shared-threads-256") == 256
    assert catalog.thread_count("threads-0") == 0 and catalog.thread_count("threads-x") is None
    assert catalog.thread_count("mixed") is None and catalog.is_shared("shared-threads-2")
    catalog.check_workload_name("threads-17", ["mixed"])
    catalog.check_workload_name("shared-threads-1", ["mixed"])
    for bad in ("threads-0", "threads-257", "shared-threads-0", "shared-threads-300"):
        with pytest.raises(UsageError, match=r"must be in \[1, 256\]"):
            catalog.check_workload_name(bad, ["mixed"])
    assert catalog.default_ops("threads-9") == catalog.DEFAULT_THREADS_OPS


@pytest.mark.parametrize("name", ["threads-0", "threads-300", "shared-threads-0", "shared-threads-257"])
def test_out_of_range_thread_counts_are_usage_errors(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, err = run_cli(capsys, "bench", "--workloads", name)
    assert code == EXIT_USAGE and out == "" and len(err.strip().splitlines()) == 1
    assert f"'{name}'" in err and "[1, 256]" in err


def test_threads_n_and_shared_threads_n_run_for_any_n(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "threads.json"
    code, _, err = run_cli(
        capsys, "bench", "--workloads", "threads-3,shared-threads-3", "--allocators", "libc,slab",
        "--repeat", "1", "--ops", "3000", "--quiet", "--json", str(path),
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(path.read_text())
    rows = {(r.workload, r.allocator): r for r in report.read_json(path).results}
    assert rows[("threads-3", "slab")].sharing == catalog.PER_THREAD_INSTANCES
    assert rows[("shared-threads-3", "slab")].sharing == catalog.SHARED_INSTANCE
    assert all(r.threads == 3 for r in rows.values()) and data["details"]["bench"]["checksums_agree"]
    # the same streams: sharing an instance does not change what is computed
    assert rows[("threads-3", "libc")].checksum == rows[("shared-threads-3", "libc")].checksum


def test_an_allocator_that_cannot_share_is_refused_when_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "bench", "--workloads", "shared-threads-2", "--allocators", "libc,bump")
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert "bump cannot run shared-threads-2" in err and "free reclaims nothing" in err


def test_the_probe_reports_why_an_allocator_cannot_share() -> None:
    caps = children.probe()
    assert "thread that created it" in caps.shared_refused.get("mimalloc-heap", "thread that created it")
    assert "free reclaims nothing" in caps.shared_refused["bump"]
    assert not {"libc", "slab", "large", "null"} & set(caps.shared_refused)


def test_a_default_run_skips_refused_pairs_with_the_reason() -> None:
    caps = children.Capabilities(
        available={"libc": True, "bump": True, "slab": True, "null": True},
        reasons={},
        workloads={"mixed": "d", "shared-threads-2": "d"},
        shared_refused={"bump": "its free reclaims nothing"},
    )
    sel = select(BenchOptions(workloads=["mixed", "shared-threads-4"]), caps)
    assert sel.refused == {("bump", "shared-threads-4"): "its free reclaims nothing"}
    assert sel.runs("bump", "mixed") and sel.runs("slab", "mixed")
    assert not sel.runs("bump", "shared-threads-4")
    ops = {"mixed": 10, "shared-threads-4": 10}
    plan = children.plan(sel.allocators, sel.workloads, ops, 1, 0, None, sel.runs)
    assert ("bump", "shared-threads-4") not in {(s.allocator, s.workload) for s in plan}
    assert ("slab", "shared-threads-4") in {(s.allocator, s.workload) for s in plan}


def test_pages_variants_are_listed_and_report_their_policy() -> None:
    caps = children.probe()
    for name in ("large-pages", "oversize-pages", "large-cycle-pages"):
        assert name in caps.workloads and name in catalog.DEFAULT_OPS
    record = children.run_child(RunSpec("libc", "large-pages", 0, 40, 0))
    plain = children.run_child(RunSpec("libc", "large", 0, 40, 0))
    assert record.result["touch"] == "pages" and plain.result["touch"] == "ends"
    assert record.result["bytes_requested"] == plain.result["bytes_requested"]
    assert record.checksum != plain.checksum  # the page words are read back too


def test_workload_file_errors_are_usage_errors() -> None:
    assert issubclass(WorkloadFileError, UsageError)


def test_list_says_any_thread_count_works(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "list")
    assert code == EXIT_OK
    assert "threads-N and shared-threads-N run for any 1 <= N <= 256" in out and "--workload-file" in out
    assert "shared-threads-2" in out and "large-cycle-pages" in out
