"""``allocffi run``: launching and measuring, the preload check, statistics, failures, Ctrl-C,
bad input, and one program of the real-program suite.

The preload check is proven on tests/data/known_alloc.c, a program that names its own allocator
from symbols only that library defines: every run the harness calls verified must be one where
the program saw the intended allocator, and a wrong library or a cleared environment must fail
loudly. No test asserts a timing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_all
from support import run_cli, run_programs, run_rows

from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from allocffi.harness.core.measure import LAUNCHER, LaunchError, ProcessRun, run_measured
from allocffi.harness.run import preload
from allocffi.harness.run import results as run_report
from allocffi.harness.run.programs import Program, RunOptions, Sample

KNOWN_ALLOC_SOURCE = Path(__file__).with_name("data") / "known_alloc.c"
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _own_preload_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands under test get the harness's preloads only (not, e.g., a sanitizer runtime the
    # test process itself was started with).
    monkeypatch.delenv("LD_PRELOAD", raising=False)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


@pytest.fixture(scope="module")
def known_alloc(tmp_path_factory: pytest.TempPathFactory) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler: install build-essential")
    exe = tmp_path_factory.mktemp("known") / "known_alloc"
    subprocess.run(
        [cc, "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(KNOWN_ALLOC_SOURCE)], check=True
    )
    return str(exe)


def installed(name: str) -> bool:
    return preload.allocator_library(name) is not None


def no_process_left(pid: int) -> bool:
    """True when pid is gone or a zombie (an init that does not reap is not our orphan)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


# --------------------------------------------------------------------------
# launch.py
# --------------------------------------------------------------------------


def test_launcher_is_built() -> None:
    assert os.access(LAUNCHER, os.X_OK), (
        "make build compiles csrc/run/launcher.c into allocffi/harness/core/_launcher"
    )


def test_run_measured_reports_rusage_and_an_rss_curve_of_the_tree() -> None:
    # A child of a shell holds 64 MiB for a while: the curve sums the tree, ru_maxrss sees it.
    code = "x = bytearray(64 << 20); x[::4096] = b'y' * len(x[::4096]); import time; time.sleep(0.4)"
    run = run_measured(["sh", "-c", f'/usr/bin/python3 -c "{code}"; exit 0'], env=clean_env())
    assert run.exit_code == 0 and not run.timed_out
    assert run.wall_s > 0.3 and run.user_s > 0
    assert run.minor_faults > 64 * MiB // 4096 // 2
    assert run.voluntary_switches >= 1
    assert run.max_rss_bytes > 64 * MiB
    assert run.peak_sampled_rss_bytes > 64 * MiB
    assert len(run.rss_curve) >= 10
    assert any("python3" in p.exe for p in run.processes)  # the sampler saw the grandchild


def test_max_rss_is_the_commands_own_not_the_launching_pythons() -> None:
    ballast = bytearray(200 * MiB)
    ballast[::4096] = b"x" * len(ballast[::4096])  # make this process big
    run = run_measured(["true"], env=clean_env(), sample_interval=None)
    assert run.max_rss_bytes < 50 * MiB, run
    del ballast


def test_exit_status_and_signal() -> None:
    assert run_measured(["sh", "-c", "exit 7"], env=clean_env()).exit_code == 7
    assert run_measured(["sh", "-c", "kill -SEGV $$"], env=clean_env()).exit_code == -signal.SIGSEGV


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    run = run_measured(["sh", "-c", script], env=clean_env(), timeout=1.0)
    assert run.timed_out
    assert run.exit_code == -signal.SIGKILL or run.exit_code != 0
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 5
        while not no_process_left(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert no_process_left(pid), f"pid {pid} outlived the timeout"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "no command"),
        (["no-such-program-xyz"], "not found"),
        (["/"], "directory"),
        (["./missing-here"], "no such file"),
    ],
)
def test_launch_errors(argv: list[str], needle: str) -> None:
    with pytest.raises(LaunchError, match=needle):
        run_measured(argv, env=clean_env())


def test_launch_errors_for_files_that_are_not_programs(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    text.chmod(0o644)
    with pytest.raises(LaunchError, match="not executable"):
        run_measured([str(text)], env=clean_env())
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x7fELF-not-really")
    garbage.chmod(0o755)
    with pytest.raises(LaunchError, match="cannot execute"):
        run_measured([str(garbage)], env=clean_env())


def test_launch_error_for_a_missing_working_directory(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="working directory"):
        run_measured(["true"], env=clean_env(), cwd=str(tmp_path / "nope"))


# --------------------------------------------------------------------------
# The preload check, on a program that knows its allocator
# --------------------------------------------------------------------------


@pytest.mark.parametrize("allocator", preload.RUN_ALLOCATORS)
def test_preload_check_passes_with_the_right_allocator(
    allocator: str, known_alloc: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not installed(allocator):
        if require_all():
            pytest.fail(f"{allocator} is not installed")
        pytest.skip(f"{allocator} is not installed")
    seen = tmp_path / "seen"
    report = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "run", "--allocators", allocator, "--repeat", "2", "--json", str(report), "-q",
        "--", known_alloc, str(seen), "alloc", "20000",
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert seen.read_text().split() == [allocator, allocator]  # the program's own view, both runs
    (row,) = run_rows(json.loads(report.read_text()))
    assert row["preload_verified"] is True and row["failed"] is False
    assert row["allocator"] == allocator and row["repeats"] == 2
    assert all(s["probed_processes"] >= 1 for s in row["samples"])


def test_a_library_that_does_not_define_malloc_is_refused_before_anything_runs(
    known_alloc: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    libm = preload.find_library("libm.so.6")
    assert libm is not None
    seen = tmp_path / "seen"
    code, _, err = run_cli(
        capsys, "run", "--allocators", f"mimalloc={libm}", "--repeat", "1", "-q",
        "--", known_alloc, str(seen), "alloc", "100",
    )  # fmt: skip
    assert code == EXIT_USAGE and not seen.exists()
    assert err.strip().splitlines() == [
        f"allocffi run: error: --allocators mimalloc: {libm} is a shared library that does not define "
        "malloc (it would not replace the allocator): give the path of an allocator's shared library "
        "(one that defines malloc)"
    ]


def test_preload_check_fails_loudly_with_a_wrong_library(
    known_alloc: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real library that does not define malloc, let past the up-front check (as one whose
    # malloc does not win would be): the program runs, but on glibc's malloc.
    monkeypatch.setattr(preload.elf, "check_malloc_library", lambda path: None)
    libm = preload.find_library("libm.so.6")
    assert libm is not None
    seen = tmp_path / "seen"
    code, _, err = run_cli(
        capsys, "run", "--allocators", f"mimalloc={libm}", "--repeat", "1", "-q",
        "--", known_alloc, str(seen), "alloc", "100",
    )  # fmt: skip
    assert code == EXIT_FAILURE
    assert seen.read_text().split() == ["libc"]
    assert "got malloc from" in err and "libc.so.6" in err and "libm.so.6" in err


def test_a_library_path_that_does_not_exist_is_a_usage_error(
    known_alloc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "run", "--allocators", "mimalloc=/no/such/lib.so", "--", known_alloc, "x")
    assert code == EXIT_USAGE and "No such file or directory" in err and "Traceback" not in err


def test_a_child_with_a_cleared_environment_is_an_error(
    known_alloc: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = tmp_path / "seen"
    allocator = "mimalloc" if installed("mimalloc") else "libc"
    code, _, err = run_cli(
        capsys, "run", "--allocators", allocator, "--repeat", "1", "-q",
        "--", known_alloc, str(seen), "reset-env",
    )  # fmt: skip
    assert code == EXIT_FAILURE
    assert "cleared LD_PRELOAD" in err and "ran without it" in err, err


# --------------------------------------------------------------------------
# Failures: non-zero exit, timeout, Ctrl-C
# --------------------------------------------------------------------------


def test_a_non_zero_exit_fails_the_row(
    known_alloc: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "1", "--json", str(report),
        "--", known_alloc, str(tmp_path / "seen"), "exit", "3",
    )  # fmt: skip
    assert code == EXIT_FAILURE
    assert "exit status 3" in err and "FAILED" in out
    (row,) = run_rows(json.loads(report.read_text()))
    assert row["exit_code"] == 3 and row["failed"] is True and row["preload_verified"] is True


def test_a_run_over_the_timeout_is_killed_and_reported(
    known_alloc: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "1", "--timeout", "0.5", "--json", str(report),
        "-q", "--", known_alloc, str(tmp_path / "seen"), "sleep", "30",
    )  # fmt: skip
    assert code == EXIT_FAILURE and "timed out" in err
    (row,) = run_rows(json.loads(report.read_text()))
    assert row["timed_out"] is True and row["failed"] is True


@pytest.fixture
def interrupt_when() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for t in threads:
        t.join(timeout=30)


def test_ctrl_c_stops_the_child_and_writes_the_completed_runs_marked_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], interrupt_when: list[threading.Thread]
) -> None:
    pids = tmp_path / "pids"
    report = tmp_path / "r.json"
    # Runs 1 and 2 finish at once; run 3 sleeps until the Ctrl-C.
    script = f'echo $$ >> {pids}; [ "$(wc -l < {pids})" -ge 3 ] && exec sleep 60; exit 0'

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pids.exists() and len(pids.read_text().split()) >= 3:
                time.sleep(0.2)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=press_ctrl_c)
    interrupt_when.append(thread)
    thread.start()
    code, _, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "5", "--json", str(report), "-q",
        "--", "sh", "-c", script,
    )  # fmt: skip
    assert code == EXIT_INTERRUPTED, err
    assert "interrupted" in err
    data = json.loads(report.read_text())
    assert data["partial"] is True
    (row,) = run_rows(data)
    assert row["repeats"] == 2
    sleeper = int(pids.read_text().split()[2])
    deadline = time.monotonic() + 5
    while not no_process_left(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert no_process_left(sleeper), "the interrupted child was left running"


# --------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing started
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run"], "no command given"),
        (["run", "--"], "no command given"),
        (["run", "--", "no-such-program-xyz"], "not found"),
        (["run", "--", "/proc/self/status"], "not executable"),
        (["run", "--suite", "nope"], "unknown suite 'nope'"),
        (["run", "--suite", "real", "--programs", "nope"], "no program 'nope'"),
        (["run", "--suite", "real", "--", "true"], "not both"),
        (["run", "--allocators", "hoard", "--", "true"], "unknown allocator 'hoard'"),
        (["run", "--repeat", "0", "--", "true"], "--repeat"),
        (["run", "--timeout", "-1", "--", "true"], "--timeout"),
        (["run", "--env", "NOEQUALS", "--", "true"], "KEY=VALUE"),
        (["run", "--cwd", "/no/such/dir", "--", "true"], "--cwd"),
        (["run", "--baseline-allocator", "jemalloc", "--allocators", "libc", "--", "true"], "not among"),
        (["run", "--json", "/no/such/dir/r.json", "--", "true"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == EXIT_USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0]


def test_an_allocator_that_is_not_installed_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preload, "find_library", lambda soname, ldconfig=None: None)
    with pytest.raises(preload.UsageError, match="apt-get install libjemalloc2"):
        preload.resolve_allocators(["jemalloc"])


def test_the_default_set_skips_a_missing_allocator_with_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = preload.find_library
    monkeypatch.setattr(
        preload, "find_library", lambda soname, ldconfig=None: None if "tcmalloc" in soname else real(soname)
    )
    chosen, skipped = preload.resolve_allocators(None)
    assert "tcmalloc" not in [c.name for c in chosen]
    assert "libtcmalloc-minimal4" in skipped["tcmalloc"]


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def fake_sample(allocator: str, repeat: int, wall: float, exit_code: int = 0) -> Sample:
    run = ProcessRun(
        argv=["prog"], exit_code=exit_code, timed_out=False, interrupted=False, wall_s=wall,
        user_s=wall * 0.9, sys_s=0.01, max_rss_bytes=100 * MiB + repeat, minor_faults=1000 + repeat,
        major_faults=0,
        voluntary_switches=1, involuntary_switches=2, rss_curve=[(0.01, 10 * MiB), (0.02, 90 * MiB)],
    )  # fmt: skip
    return Sample(allocator, "prog", repeat, run, preload.Verification(True, 1))


def fake_report(
    walls: dict[str, list[float]], exit_codes: dict[str, int] | None = None
) -> run_report.RunReport:
    allocators = [preload.AllocatorChoice(a, f"/lib/{a}.so") for a in walls]
    program = Program("prog", ["prog"], {}, None)
    report = run_report.RunReport.start(
        RunOptions(command=["prog"], baseline="libc"), allocators, {}, [program]
    )
    for name, values in walls.items():
        for i, wall in enumerate(values):
            report.add(fake_sample(name, i, wall, (exit_codes or {}).get(name, 0)))
    report.finish()
    return report


def test_rows_hold_median_spread_speedup_and_significance() -> None:
    report = fake_report(
        {
            "libc": [2.0, 2.1, 1.9, 2.05, 1.95],
            "fast": [1.0, 1.05, 0.95, 1.02, 0.98],
            "same": [2.0, 1.9, 2.1, 2.02, 1.98],
        }
    )
    rows = {r.allocator: r for r in report.rows}
    assert rows["libc"].wall_s == 2.0 and rows["libc"].wall_s_min == 1.9 and rows["libc"].wall_s_max == 2.1
    assert rows["libc"].speedup_vs_baseline == 1.0 and rows["libc"].verdict is None
    assert rows["fast"].speedup_vs_baseline == pytest.approx(2.0 / 1.0)
    assert rows["fast"].verdict is not None and rows["fast"].verdict["label"] == "faster"
    assert rows["same"].verdict is not None and rows["same"].verdict["label"] == "no significant change"
    assert rows["fast"].max_rss_bytes == 100 * MiB + 2  # median of the repeats
    assert rows["fast"].peak_tree_rss_bytes == 90 * MiB
    data = json.loads(json.dumps(run_report.to_record(report).to_json()))
    assert data["results"][1]["verdicts"]["wall"]["label"] == "better"  # the record's own verdict
    row = run_rows(data)[1]
    for key in (
        "allocator", "command", "repeats", "wall_s", "wall_s_min", "wall_s_max", "user_s", "sys_s",
        "max_rss_bytes", "minor_faults", "major_faults", "exit_code", "preload_verified",
        "speedup_vs_baseline", "samples",
    ):  # fmt: skip
        assert key in row, key
    assert len(row["samples"]) == 5 and row["samples"][0]["rss_curve"][1] == [0.02, 90 * MiB]


def test_a_non_zero_exit_in_any_repeat_fails_the_row() -> None:
    report = fake_report({"libc": [1.0, 1.0], "bad": [1.0, 1.0]}, exit_codes={"bad": 2})
    assert [r.allocator for r in report.failed_rows()] == ["bad"]
    assert report.rows[1].exit_code == 2


def test_text_markdown_csv_and_plot_outputs(tmp_path: Path) -> None:
    report = fake_report({"libc": [2.0, 2.1, 1.9], "fast": [1.0, 1.1, 0.9]})
    assert "prog" in run_report.text_tables(report) and "load average" in run_report.text_tables(report)
    assert "| prog | fast |" in run_report.markdown(report)
    assert report.rows[1].cpu_speedup_vs_baseline == pytest.approx((2.0 * 0.9 + 0.01) / (1.0 * 0.9 + 0.01))
    opts = RunOptions(command=["prog"], csv_path=str(tmp_path / "r.csv"), plot_path=str(tmp_path / "r.png"))
    run_report.write_outputs(report, opts)
    assert (tmp_path / "r.csv").read_text().count("\n") == 3
    assert (tmp_path / "r.png").stat().st_size > 1000


# --------------------------------------------------------------------------
# The real-program suite: one quick program
# --------------------------------------------------------------------------


def test_suite_program_runs_with_its_allocation_count_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not os.access("/usr/bin/python3", os.X_OK):
        if require_all():
            pytest.fail("/usr/bin/python3 is not installed (make system-libs installs python3)")
        pytest.skip("/usr/bin/python3 is not installed")
    allocators = "libc,mimalloc" if installed("mimalloc") else "libc"
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "run", "--suite", "real", "--programs", "python", "--allocators", allocators,
        "--repeat", "1", "--json", str(report),
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(report.read_text())
    (program,) = run_programs(data)
    assert program["allocations_counted"] >= program["min_allocations"] >= 500_000
    assert all(r["preload_verified"] for r in run_rows(data))
    assert "counted python" in err and "python" in out
    assert run_rows(data)[0]["python_malloc"] is True


def test_maps_check_tells_mapped_missing_and_not_yet() -> None:
    from allocffi.harness.core.measure import _maps_contain

    libc = preload.find_library("libc.so.6")
    assert libc is not None
    assert _maps_contain(os.getpid(), [libc]) is True
    assert _maps_contain(os.getpid(), ["/no/such/libx.so"]) is False  # libc is mapped: the loader is done
    assert _maps_contain(2**22 + 12345, [libc]) is None  # no such process


def test_env_cwd_and_python_malloc_reach_the_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    check = f'test "$FOO" = "a b" && test "$PYTHONMALLOC" = malloc && test "$(pwd)" = "{tmp_path}"'
    code, _, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "1", "--env", "FOO=a b", "--python-malloc",
        "--cwd", str(tmp_path), "--json", str(report), "-q", "--", "sh", "-c", check,
    )  # fmt: skip
    assert code == EXIT_OK, err
    (row,) = run_rows(json.loads(report.read_text()))
    assert row["python_malloc"] is True and row["exit_code"] == 0


def test_a_sanitizer_runtime_of_allocffis_own_process_is_not_passed_to_the_measured_program() -> None:
    """Under make sanitize-python the harness runs with libasan preloaded: a measured program must
    get the probe and the allocator under test, never that runtime (it would abort, or serve malloc)."""
    choice = preload.AllocatorChoice("libc", "/lib/x86_64-linux-gnu/libc.so.6")
    base = {"LD_PRELOAD": "/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so:/opt/tool/libfault.so libubsan.so.1"}
    preloads = preload.run_environment(base, choice, "/tmp/probe")["LD_PRELOAD"].split()
    assert preloads[0] == preload.helper_library("_runprobe")
    assert preloads[1:] == [*choice.preloads, "/opt/tool/libfault.so"]
