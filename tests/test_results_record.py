"""The one results record: every command writes it, it is validated on load, and ``compare`` and
``report`` work on any command's record.

Small real runs of each command write their ``--json``; each record must load through the one
check, round-trip unchanged, and be rendered by ``report`` (text, Markdown, CSV, a plot when
matplotlib is there) and compared with itself by ``compare``. Then records are mutated, field by
field, and every command that reads them must refuse with exit 2 and one line naming the field,
never a traceback. No timing is asserted.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import run_cli
from support import write_json as write

from allocffi.harness import cli
from allocffi.harness.core import record
from allocffi.harness.core.errors import EXIT_OK, EXIT_USAGE, UsageError
from tests.trace_support import SHIPPED

TINY_COMMANDS: dict[str, list[str]] = {
    "bench": [
        "bench", "--allocators", "libc,bump", "--workloads", "fixed-48", "--repeat", "2", "--ops", "2000",
        "--no-calibrate", "--quiet",
    ],
    "calibrate": [
        "calibrate", "--libraries", "tcmalloc", "--workloads", "fixed-48", "--repeat", "2", "--ops", "2000",
        "--quiet",
    ],
    "trace replay": [
        "trace", "replay", str(SHIPPED / "cc1.trace"), "--allocators", "libc,slab", "--repeat", "2", "-q",
    ],
    "run": ["run", "--allocators", "libc,mimalloc", "--repeat", "2", "-q", "--", "/bin/ls", "/"],
    "numpy-bench": [
        "numpy-bench", "--allocators", "slab", "--workloads", "create-1", "--repeat", "2", "--scale", "0.01",
        "--quiet",
    ],
}  # fmt: skip


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each command's record, from one tiny real run per command (numpy-bench only with NumPy)."""
    out = tmp_path_factory.mktemp("records")
    paths = {}
    for name, argv in TINY_COMMANDS.items():
        if name == "numpy-bench" and not _have("numpy"):
            continue
        path = out / f"{name.replace(' ', '-')}.json"
        end = argv.index("--") if "--" in argv else len(argv)  # options go before a program's own
        code = cli.main([*argv[:end], "--json", str(path), *argv[end:]])
        assert code == EXIT_OK, (name, code)
        paths[name] = path
    return paths


def commands() -> Iterator[str]:
    yield from TINY_COMMANDS


@pytest.mark.parametrize("command", list(commands()))
def test_every_command_writes_a_record_that_loads_and_round_trips(
    saved: dict[str, Path], command: str
) -> None:
    if command not in saved:
        pytest.skip(f"{command} needs an optional package that is not installed")
    data = json.loads(saved[command].read_text())
    assert data["schema"] == record.SCHEMA
    loaded = record.read(saved[command])
    assert loaded.command == command and loaded.argv[0] == "allocffi"
    assert loaded.cells and loaded.baseline_allocator is not None and "cpu" in loaded.machine
    for cell in loaded.cells:
        for metric in cell.metrics.values():
            assert len(metric.samples) == 2 and metric.better in (record.LOWER, record.HIGHER)
    judged = [c for c in loaded.cells if c.allocator != loaded.baseline_allocator]
    assert judged and all(c.verdicts for c in judged)  # every cell against the baseline allocator
    assert record.from_json(json.loads(json.dumps(loaded.to_json())), "again").to_json() == loaded.to_json()


@pytest.mark.parametrize("command", list(commands()))
def test_report_and_compare_work_on_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, saved: dict[str, Path], command: str
) -> None:
    if command not in saved:
        pytest.skip(f"{command} needs an optional package that is not installed")
    path = str(saved[command])
    loaded = record.read(path)
    code, out, err = run_cli(capsys, "report", path)
    assert code == EXIT_OK and "Traceback" not in err, err
    assert all(c.subject.split("/")[-1] in out or c.subject in out for c in loaded.cells)

    md, csv_path, again = tmp_path / "r.md", tmp_path / "r.csv", tmp_path / "again.json"
    argv = ["report", path, "--markdown", str(md), "--csv", str(csv_path), "--json", str(again)]
    plot = tmp_path / "r.png"
    if _have("matplotlib"):
        argv += ["--plot", str(plot)]
    code, out, err = run_cli(capsys, *argv)
    assert code == EXIT_OK and out == "", err
    assert md.read_text().startswith("# allocffi")
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    if command == "bench":  # bench keeps its own flat CSV: one row per (workload, allocator)
        assert len(rows) == len(loaded.cells)
    else:  # one row per (cell, metric)
        assert len(rows) == sum(len(c.metrics) for c in loaded.cells)
    assert record.read(again).cells[0].metrics.keys() == loaded.cells[0].metrics.keys()
    if _have("matplotlib"):
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out, err = run_cli(capsys, "compare", path, path, "--json", str(tmp_path / "c.json"))
    assert code == EXIT_OK, err
    metrics = sum(len(c.metrics) for c in loaded.cells)
    assert f"{metrics} comparisons: 0 better, 0 worse" in out
    assert json.loads((tmp_path / "c.json").read_text())["counts"]["better"] == 0


# --------------------------------------------------------------------------
# Synthetic records: the check, field by field
# --------------------------------------------------------------------------


def cell(subject: str, allocator: str, ns: list[float], score: list[float]) -> dict[str, Any]:
    return {
        "subject": subject,
        "allocator": allocator,
        "variant": "",
        "metrics": {
            "wall": {"unit": "s", "better": "lower", "samples": ns},
            "score": {"unit": "points", "better": "higher", "samples": score},
        },
        "verdicts": {},
        "details": {"run": {"exit_status": 0}},
    }


def run_record(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": record.SCHEMA,
        "command": {"name": "run", "argv": ["allocffi", "run", "--", "prog"], "config": {"repeat": 5}},
        "date": "2026-01-01T00:00:00+00:00",
        "machine": {"cpu": "Test CPU", "cores": 2},
        "load": {"before": {"load_average": [0.1, 0.1, 0.1], "cpus": 2, "usable_cpus": 2}},
        "baseline_allocator": "libc",
        "partial": False,
        "warnings": [],
        "details": {},
        "results": [
            cell("prog", "libc", [1.00, 1.01, 1.02, 0.99, 1.00], [100, 101, 99, 100, 100]),
            cell("prog", "mimalloc", [0.50, 0.51, 0.50, 0.49, 0.50], [150, 151, 149, 150, 152]),
        ],
    }
    data.update(extra)
    return data


def test_two_runs_of_one_program_are_compared_metric_by_metric(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = write(tmp_path, "old.json", run_record())
    changed = run_record()
    changed["results"][1]["metrics"]["wall"]["samples"] = [1.0, 1.01, 1.0, 0.99, 1.0]  # 2x slower
    changed["results"][1]["metrics"]["score"]["samples"] = [300, 301, 299, 300, 302]  # 2x the score
    new = write(tmp_path, "new.json", changed)
    code, out, err = run_cli(capsys, "compare", old, new, "--fail-on-regression")
    assert code == 3, err  # wall got worse beyond noise
    lines = {tuple(line.split()[1:3]): line for line in out.splitlines() if line.startswith("prog")}
    assert "2.00x slower [" in lines[("mimalloc", "wall")]
    assert "higher: better" in lines[("mimalloc", "score")]  # higher is better for a score
    assert "4 comparisons: 1 better, 1 worse, 2 no significant change" in out
    assert "regression: prog/mimalloc wall: 2.00x slower" in err


def test_report_judges_each_metric_in_its_own_direction(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "run.json", run_record())
    code, out, _ = run_cli(capsys, "report", path)
    assert code == EXIT_OK
    rows = {tuple(line.split()[1:3]): line for line in out.splitlines() if line.startswith("prog")}
    assert rows[("mimalloc", "wall")].endswith("0.50x (better)")  # half the time
    assert rows[("mimalloc", "score")].endswith("1.50x (better)")  # half again the score
    assert rows[("libc", "wall")].endswith("baseline")
    code, out, _ = run_cli(capsys, "report", path, "--baseline-allocator", "mimalloc")
    assert code == EXIT_OK
    rows = {tuple(line.split()[1:3]): line for line in out.splitlines() if line.startswith("prog")}
    assert rows[("libc", "wall")].endswith("2.00x (worse)")


def test_records_of_different_commands_are_compared_with_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = run_record()
    old["command"]["name"] = "bench"
    code, out, _ = run_cli(
        capsys, "compare", write(tmp_path, "a.json", old), write(tmp_path, "b.json", run_record())
    )
    assert code == EXIT_OK and "warning: different commands: bench vs run" in out


def leaves(value: Any, path: str = "") -> Iterator[str]:
    """The path of every leaf of a JSON value, as the check names it."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path


def replaced(data: Any, path: str, new: Any) -> Any:
    """A copy of ``data`` with the leaf at ``path`` (as leaves() spells it) set to ``new``."""
    out = copy.deepcopy(data)
    parts = path.replace("[", ".[").split(".")
    node = out
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = new
    else:
        node[last] = new
    return out


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("results[1].metrics.wall.samples[2]", "fast", 'expected a finite number, got "fast"'),
        ("results[1].metrics.wall.samples[2]", -1, "expected a number >= 0, got -1"),
        ("results[0].allocator", ["libc"], "expected a non-empty string"),
        ("results[0].metrics.score.better", "more", "expected one of 'lower', 'higher'"),
        ("results[0].metrics.score.unit", 3, "expected a string"),
        ("results[0].metrics.score.samples", [], "expected at least one sample"),
        ("results[0].verdicts", {"wall": {"label": "meh"}}, "verdicts.wall.label: expected one of"),
        ("partial", "no", "expected true or false"),
        ("load", {"before": {"load_average": ["high"]}}, "load.before.load_average[0]: expected a finite"),
        ("load", {"before": {"cpus": 1.5}}, "load.before.cpus: expected an integer"),
        ("command", {"argv": []}, "command.name: expected a non-empty string"),
        ("warnings", [7], "warnings[0]: expected a string"),
        ("schema", "allocffi-results/99", 'schema "allocffi-results/99" is not one this allocffi reads'),
        ("results", [None], "results[0]: expected an object, got null"),
    ],
)  # fmt: skip
def test_a_bad_field_is_one_line_naming_it_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, path: str, value: Any, message: str
) -> None:
    bad = write(tmp_path, "bad.json", replaced(run_record(), path, value))
    good = write(tmp_path, "good.json", run_record())
    for argv in (["report", bad], ["compare", good, bad], ["compare", bad, good]):
        code, out, err = run_cli(capsys, *argv)
        assert code == EXIT_USAGE and out == "", err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
        assert path.split("[")[0].split(".")[0] in err  # the field is named by its path
    with pytest.raises(UsageError, match=r"bad\.json"):
        record.read(bad)


def test_a_bad_field_of_the_bench_details_is_named_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, saved: dict[str, Path]
) -> None:
    """Bench reads its own details back (the overhead line, each cell's ops): they are checked too."""
    data = json.loads(saved["bench"].read_text())
    data["details"]["bench"]["engine_overhead_ns_per_op"]["fixed-48"] = "cheap"
    data["results"][1]["details"]["bench"]["ops"] = 2.5
    code, out, err = run_cli(capsys, "report", write(tmp_path, "bad.json", data))
    assert code == EXIT_USAGE and out == "" and err.count("\n") == 1, err
    assert "results[1].details.bench.ops: expected an integer, got 2.5" in err
    del data["results"][1]["details"]["bench"]["ops"]
    code, out, err = run_cli(capsys, "report", write(tmp_path, "bad.json", data))
    assert code == EXIT_USAGE and err.count("\n") == 1, err
    assert 'details.bench.engine_overhead_ns_per_op.fixed-48: expected a finite number, got "cheap"' in err


def test_two_cells_with_one_key_are_refused(tmp_path: Path) -> None:
    data = run_record()
    data["results"].append(copy.deepcopy(data["results"][0]))
    with pytest.raises(UsageError, match=r"results\[2\]: a second cell for prog/libc"):
        record.read(write(tmp_path, "twice.json", data))


BAD_VALUES: list[Any] = ["fast", -1, 1e309, None]


def test_every_leaf_replaced_by_a_bad_value_ends_in_exit_0_or_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """No mutation of a record ever reaches a traceback: each field is checked, or not read."""
    original = run_record()
    good = write(tmp_path, "good.json", original)
    for path in leaves(original):
        for value in BAD_VALUES:
            text = json.dumps(replaced(original, path, value)).replace("1e+309", "1e309")
            mutated = tmp_path / "m.json"
            mutated.write_text(text)
            for argv in (["report", str(mutated)], ["compare", good, str(mutated)]):
                code, _, err = run_cli(capsys, *argv)
                assert code in (EXIT_OK, EXIT_USAGE, 3), (path, value, err)
                assert "Traceback" not in err and (code != EXIT_USAGE or err.count("\n") == 1), (
                    path,
                    value,
                    err,
                )


def test_every_leaf_of_a_bench_record_replaced_ends_in_exit_0_or_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, saved: dict[str, Path]
) -> None:
    """The same for what bench reads back from its own details (each cell's, the record's)."""
    original = json.loads(saved["bench"].read_text())
    paths = [
        p
        for p in leaves(original)
        if p.startswith(("results[1]", "details.bench", "load", "baseline_allocator"))
    ]
    for path in paths:
        for value in BAD_VALUES:
            mutated = tmp_path / "m.json"
            mutated.write_text(json.dumps(replaced(original, path, value)).replace("1e+309", "1e309"))
            code, _, err = run_cli(capsys, "report", str(mutated))
            assert code in (EXIT_OK, EXIT_USAGE), (path, value, err)
            assert "Traceback" not in err and (code == EXIT_OK or err.count("\n") == 1), (path, value, err)
