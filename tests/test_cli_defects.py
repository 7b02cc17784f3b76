"""The command-line defects, each checked in a real child process as a user meets it:
a plot format refused before anything runs, a closed pipe, ``--json -``, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from allocffi.harness import cli
from allocffi.harness.bench import results as report
from allocffi.harness.core import record
from allocffi.harness.core.errors import EXIT_OK, EXIT_USAGE

pytestmark = pytest.mark.subprocess

PACKAGE_ROOT = str(Path(cli.__file__).resolve().parents[2])
TINY = ["--allocators", "libc,bump", "--workloads", "fixed-48", "--ops", "2000"]


def allocffi(*argv: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    return subprocess.Popen(
        [sys.executable, "-m", "allocffi", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,  # type: ignore[call-overload]
    )


def test_an_unwritable_plot_format_fails_before_anything_runs(tmp_path: Path) -> None:
    json_path = tmp_path / "r.json"
    proc = allocffi("bench", *TINY, "--json", str(json_path), "--plot", str(tmp_path / "out.txt"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_USAGE and out == ""
    assert err.strip().splitlines() == [
        f"allocffi bench: error: --plot {tmp_path / 'out.txt'}: the format comes from the extension "
        "and '.txt' is not one it writes; use .png, .svg or .pdf"
    ]
    assert not json_path.exists()


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # Like `allocffi list | head -1`: the reader is gone before the lines are written.
    proc = allocffi("list")
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""
    assert proc.returncode in (EXIT_OK, cli.EXIT_BROKEN_PIPE)


def test_json_dash_writes_the_report_to_stdout_and_the_tables_to_stderr(tmp_path: Path) -> None:
    proc = allocffi("bench", *TINY, "--repeat", "2", "--no-overhead", "--json", "-", cwd=str(tmp_path))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_OK, err
    data = json.loads(out)  # stdout is the JSON alone
    assert {r.allocator for r in record.from_json(data, "stdout").cells} == {"libc", "bump"}
    assert data["partial"] is False and data["load"]["before"]["cpus"] >= 1
    assert "Speedup vs libc" in err
    assert not (tmp_path / "-").exists()


def test_ctrl_c_writes_the_completed_runs_marked_partial(tmp_path: Path) -> None:
    json_path = tmp_path / "partial.json"
    md_path = tmp_path / "partial.md"
    proc = allocffi(
        "bench",
        *TINY,
        "--repeat",
        "500",
        "--no-overhead",
        "--json",
        str(json_path),
        "--markdown",
        str(md_path),
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # the plain progress prints a line per finished repeat
        if line.startswith("[repeat 2/500]") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == cli.EXIT_INTERRUPTED, err
    assert "interrupted after" in err and "marked partial" in err and "Traceback" not in err
    data = json.loads(json_path.read_text())
    assert data["partial"] is True
    repeats = {r.allocator: r.repeats for r in report.read_json(json_path).results}
    assert set(repeats) == {"libc", "bump"} and all(2 <= n < 500 for n in repeats.values())
    assert "**PARTIAL" in md_path.read_text()


def test_baseline_with_nothing_in_common_fails_before_running(tmp_path: Path) -> None:
    baseline = tmp_path / "base.json"
    baseline.write_text(
        json.dumps({"results": [{"allocator": "slab", "workload": "pool-64", "ns_per_op": 3.0}]})
    )
    proc = allocffi("bench", *TINY, "--baseline", str(baseline))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_USAGE and out == ""
    assert len(err.strip().splitlines()) == 1 and "nothing to compare" in err
    assert "[repeat" not in err
