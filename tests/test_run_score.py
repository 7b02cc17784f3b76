"""``allocffi run`` on programs whose time says nothing: scores, stdin, misuse, the probe's RSS, servers.

The programs are small C programs of tests/run_programs/, compiled here: one that runs for a fixed
time and prints its own throughput, one that needs its input on stdin, one of known memory. The
redis test runs the suite's server program with a tiny request count. No test asserts a timing:
the score test's "slower allocator" sleeps in the program itself, tenfold slower or more.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import require_all
from support import run_cli, run_programs, run_rows

from allocffi.harness.core.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from allocffi.harness.core.measure import run_measured
from allocffi.harness.run import preload
from allocffi.harness.run import results as run_report
from allocffi.harness.run.command import Harness
from allocffi.harness.run.programs import Program, RunOptions
from allocffi.harness.run.server import Driver

PROGRAMS = Path(__file__).with_name("run_programs")
SCORE = r"ops/s: (?P<score>[0-9]+)"


@pytest.fixture(autouse=True)
def _own_preload_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_PRELOAD", raising=False)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler: install build-essential")
    out = tmp_path_factory.mktemp("run_programs")
    programs = {}
    for source in sorted(PROGRAMS.glob("*.c")):
        exe = out / source.stem
        subprocess.run([cc, "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(source)], check=True)
        programs[source.stem] = str(exe)
    return programs


def require(allocator: str) -> None:
    if preload.find_library(preload.SONAMES[allocator]) is None:
        if require_all():
            pytest.fail(f"{allocator} is not installed")
        pytest.skip(f"{allocator} is not installed")


def rows_of(path: Path) -> dict[str, dict]:
    return {r["allocator"]: r for r in run_rows(json.loads(path.read_text()))}


# --------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("slow_under", "label"), [("mimalloc", "worse"), ("libc", "better")])
def test_a_fixed_duration_programs_score_gets_a_verdict_in_the_right_direction(
    slow_under: str, label: str, compiled: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require("mimalloc")
    report, table = tmp_path / "r.json", tmp_path / "r.csv"
    code, out, err = run_cli(
        capsys, "run", "--allocators", "libc,mimalloc", "--repeat", "4", "--env", f"SLOW_UNDER={slow_under}",
        "--score", SCORE, "--higher-is-better", "--score-unit", "ops/s", "--json", str(report),
        "--csv", str(table), "--", compiled["fixed_duration"], "100",
    )  # fmt: skip
    assert code == EXIT_OK, err
    rows = rows_of(report)
    assert all(len([s["score"] for s in r["samples"] if s["score"] > 0]) == 4 for r in rows.values())
    mimalloc = rows["mimalloc"]
    assert mimalloc["score_verdict"]["label"] == label, mimalloc["score_verdict"]
    assert mimalloc["score_verdict"]["higher_is_better"] is True
    ratio = mimalloc["score"] / rows["libc"]["score"]
    assert mimalloc["score_vs_baseline"] == pytest.approx(ratio)
    assert (ratio < 0.5) if label == "worse" else (ratio > 2)
    assert rows["libc"]["score_vs_baseline"] == 1.0 and rows["libc"]["score_unit"] == "ops/s"
    assert "score vs base" in out and "ops/s" in out
    assert "score_verdict" in table.read_text().splitlines()[0] and label in table.read_text()


def test_a_lower_is_better_score_is_judged_the_other_way() -> None:
    base = [1.0, 1.1, 0.9, 1.05, 0.95]
    twice = [2.0, 2.2, 1.8, 2.1, 1.9]
    lower = run_report._score_verdict("libc", base, twice, higher_is_better=False)
    higher = run_report._score_verdict("libc", base, twice, higher_is_better=True)
    assert lower["label"] == "worse" and lower["ratio"] == pytest.approx(0.5)
    assert higher["label"] == "better" and higher["ratio"] == pytest.approx(2.0)
    assert "2.00x better" in higher["describe"] and "2.00x worse" in lower["describe"]


def test_a_run_without_its_score_is_an_error_row_naming_the_regex(
    compiled: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "1", "--score", r"rate=(?P<score>\d+)",
        "--lower-is-better", "--json", str(report), "-q", "--", compiled["fixed_duration"], "30",
    )  # fmt: skip
    assert code == EXIT_FAILURE
    assert "no score" in err and "rate=(?P<score>" in err and "ops/s" in err  # the regex, the last line
    assert rows_of(report)["libc"]["failed"] is True


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--score", "ops/s: (?P<score>[0-9]+", "--higher-is-better"], "not a regular expression"),
        (["--score", "ops/s: ([0-9]+)", "--higher-is-better"], "no named group"),
        (["--score", "ops/s: (?P<score>[0-9]+)"], "--higher-is-better"),
        (["--higher-is-better"], "need --score"),
        (["--score-unit", "ops/s"], "need --score"),
        (["--stdin", "/no/such/input"], "not a readable file"),
        (["--stdin", "/"], "not a readable file"),
        (["--name", " "], "--name"),
    ],
)
def test_bad_score_stdin_and_name_options_are_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "run", "--allocators", "libc", *argv, "--", "true")
    assert code == EXIT_USAGE, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0]


def test_suite_programs_declare_their_own_score_and_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run", "--suite", "real", "--score", "(?P<score>1)", "--higher-is-better")
    assert code == EXIT_USAGE and "declare their own" in err


# --------------------------------------------------------------------------
# stdin, likely misuse, --name
# --------------------------------------------------------------------------


def test_stdin_gives_the_program_its_input(
    compiled: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = tmp_path / "sizes"
    sizes.write_text("".join(f"{n}\n" for n in range(1, 20001)))
    report = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "2", "--stdin", str(sizes),
        "--score", r"(?P<score>\d+) blocks", "--higher-is-better", "--json", str(report), "-q",
        "--", compiled["needs_stdin"],
    )  # fmt: skip
    assert code == EXIT_OK, err
    row = rows_of(report)["libc"]
    assert row["score"] == 20000  # both runs read the whole file from its start
    assert not any("usage line" in w for w in row["warnings"]), row["warnings"]
    assert run_programs(json.loads(report.read_text()))[0]["stdin"] == str(sizes)


def test_a_program_that_printed_its_usage_on_an_empty_stdin_is_flagged_not_failed(
    compiled: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "3", "--json", str(report),
        "--", compiled["needs_stdin"],
    )  # fmt: skip
    assert code == EXIT_OK, err  # a warning, not a failure
    row = rows_of(report)["libc"]
    assert row["failed"] is False
    usage = [w for w in row["warnings"] if "usage line" in w]
    assert len(usage) == 3 and "Usage: needs_stdin" in usage[0] and "/dev/null" in usage[0]
    assert "WARNING needs_stdin under libc" in out and "ok, warned" in out
    assert "likely misuse" in err  # on the progress lines too


def test_a_run_that_ended_at_once_is_flagged_with_what_its_stdin_was() -> None:
    from allocffi.harness.run.misuse import run_warnings

    (quick,) = run_warnings(0.004, "", None)
    assert "4.0 ms (< 20 ms)" in quick and "/dev/null" in quick and "--stdin" in quick
    assert run_warnings(0.5, "", None) == []
    (usage,) = run_warnings(0.5, "reading...\n  USAGE: tool FILE\n", "/tmp/in")
    assert "USAGE: tool FILE" in usage and "stdin was /tmp/in" in usage


def test_a_repeat_far_faster_than_the_others_is_flagged() -> None:
    from allocffi.harness.run.misuse import outlier_repeats

    assert outlier_repeats([1.0, 1.1, 0.05, 0.9]) == [2]
    assert outlier_repeats([1.0, 1.1, 0.5, 0.9]) == []
    assert outlier_repeats([1.0, 0.01]) == []  # two repeats: which one is odd cannot be told


def test_name_keeps_the_users_name_for_a_wrapped_command(
    compiled: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "1", "--name", "churn", "--json", str(report),
        "--", "sh", "-c", f"exec {compiled['fixed_duration']} 30",
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(report.read_text())
    assert run_rows(data)[0]["program"] == "churn" and run_programs(data)[0]["name"] == "churn"
    assert out.splitlines()[2].startswith("churn")


# --------------------------------------------------------------------------
# The probe's own memory
# --------------------------------------------------------------------------

PROBE_RSS_TOLERANCE = 224 << 10  # the probe with snprintf added 256-300 KiB; without it 60-150 KiB


@pytest.mark.parametrize("kib", [0, 4096])
def test_the_probe_adds_little_to_a_small_programs_max_rss(
    kib: int, compiled: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    (libc,), _ = preload.resolve_allocators(["libc"])
    probed = preload.run_environment(env, libc, str(tmp_path / "probe"))
    argv = [compiled["touch_memory"], str(kib)] if kib else ["true"]

    def median_rss(environment: dict[str, str]) -> float:
        return statistics.median(
            run_measured(argv, env=environment, sample_interval=None).max_rss_bytes for _ in range(9)
        )

    plain, with_probe = median_rss(env), median_rss(probed)
    assert (tmp_path / "probe").read_text().count("probe\t") == 9  # the probe did report each run
    assert with_probe - plain < PROBE_RSS_TOLERANCE, (plain, with_probe)


# --------------------------------------------------------------------------
# Server programs: redis, and a server that never becomes ready
# --------------------------------------------------------------------------


def require_redis() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        if require_all():
            pytest.fail("redis is not installed (apt-get install redis-server redis-tools)")
        pytest.skip("redis is not installed")


def redis_pids() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "redis" in os.readlink(entry / "exe"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def test_redis_runs_measured_with_its_score_and_leaves_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_redis()
    require("mimalloc")
    from allocffi.harness.run.suite import redis

    monkeypatch.setattr(redis, "PROGRAM", redis.program(requests=500))
    before = redis_pids()
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "run", "--suite", "real", "--programs", "redis", "--allocators", "libc,mimalloc",
        "--repeat", "1", "--json", str(report),
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(report.read_text())
    assert run_programs(data)[0]["allocations_counted"] >= run_programs(data)[0]["min_allocations"]
    for row in run_rows(data):
        assert row["preload_verified"] is True and row["failed"] is False, row["problems"]
        assert row["score"] > 0 and row["score_unit"] == "requests/s"
        assert row["samples"][0]["probed_processes"] == 1  # the server alone: the client is outside
    assert "requests/s" in out
    assert redis_pids() <= before, "a redis process outlived the run"


def test_a_server_that_never_becomes_ready_is_an_error_row(tmp_path: Path) -> None:
    never = Driver(commands=[["true"]], ready_timeout_s=0.5, stop_grace_s=1.0)
    program = Program("mute", ["sleep", "30"], {}, None, driver=never)
    opts = RunOptions(command=["sleep"], timeout_s=20)
    (libc,), _ = preload.resolve_allocators(["libc"])
    sample = Harness(opts, tmp_path).measure(program, libc, 0)
    assert not sample.ok
    assert any("did not accept connections" in p and "0.5 s" in p for p in sample.problems), sample.problems
    # Stopped by the SIGTERM the launcher passed on, not killed at the timeout.
    assert not sample.run.timed_out and sample.run.exit_code == -signal.SIGTERM


def test_ctrl_c_while_redis_is_driven_leaves_no_server_and_no_client(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_redis()
    from allocffi.harness.run.suite import redis

    monkeypatch.setattr(redis, "PROGRAM", redis.program(requests=2_000_000))  # far longer than the test
    before = redis_pids()

    def press_ctrl_c_once_the_client_runs() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("benchmark" in os.readlink(f"/proc/{pid}/exe") for pid in redis_pids() - before):
                time.sleep(0.3)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=press_ctrl_c_once_the_client_runs)
    thread.start()
    try:
        code, _, err = run_cli(
            capsys, "run", "--suite", "real", "--programs", "redis", "--allocators", "libc", "--repeat", "1",
            "--no-count-check", "--json", str(tmp_path / "r.json"), "-q",
        )  # fmt: skip
    finally:
        thread.join(timeout=70)
    assert code == EXIT_INTERRUPTED, err
    assert redis_pids() <= before, "a redis server or client outlived the Ctrl-C"


def test_output_is_kept_bounded_to_its_last_bytes(tmp_path: Path) -> None:
    from allocffi.harness.core.output_tail import OutputTail

    tail = OutputTail(str(tmp_path / "out"), limit=64 << 10)
    script = "import sys; sys.stdout.write('x' * (1 << 20)); sys.stdout.write('\\nops/s: 7\\n')"
    subprocess.run(["/usr/bin/python3", "-c", script], stdout=tail.fileno(), check=True)
    text = tail.close()
    assert len(text) == 64 << 10 and text.endswith("ops/s: 7\n")
    assert (tmp_path / "out").read_text() == text and tail.close() == text
    assert tail.dropped >= (1 << 20) - (64 << 10)


def test_markdown_and_plot_carry_the_score(
    compiled: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    markdown, plot = tmp_path / "r.md", tmp_path / "r.png"
    code, _, err = run_cli(
        capsys, "run", "--allocators", "libc", "--repeat", "1", "--score", SCORE, "--higher-is-better",
        "--score-unit", "ops/s", "--markdown", str(markdown), "--plot", str(plot), "-q",
        "--", compiled["fixed_duration"], "30",
    )  # fmt: skip
    assert code == EXIT_OK, err
    text = markdown.read_text()
    assert "| score (min-max) | score vs base |" in text and "ops/s" in text and SCORE in text
    assert plot.stat().st_size > 1000


def test_a_suite_program_declares_its_stdin_and_its_score(
    compiled: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from allocffi.harness.run import suite
    from allocffi.harness.run.score import Score
    from allocffi.harness.run.suite import registry

    def write_sizes(workdir: Path) -> None:
        (workdir / "sizes").write_text("".join(f"{n}\n" for n in range(1, 3001)))

    program = suite.SuiteProgram(
        name="filter", description="reads sizes from stdin", allocations=3000, min_allocations=1000,
        tools=(), write_inputs=write_sizes, argv=lambda workdir: [compiled["needs_stdin"]],
        score=Score(r"(?P<score>\d+) blocks", "blocks", higher_is_better=True), stdin="sizes",
    )  # fmt: skip
    monkeypatch.setattr(registry, "_suites", lambda: {"inputs": (program,)})
    report = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "run", "--suite", "inputs", "--allocators", "libc", "--repeat", "1", "--no-count-check",
        "--json", str(report), "-q",
    )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(report.read_text())
    assert run_rows(data)[0]["score"] == 3000 and run_programs(data)[0]["stdin"].endswith("/filter/sizes")


def test_a_score_of_several_rates_over_equal_work_is_their_overall_rate() -> None:
    from allocffi.harness.run.score import HARMONIC_MEAN, Score

    rates = Score(r'^"\w+","(?P<score>[0-9.]+)"', "requests/s", higher_is_better=True, combine=HARMONIC_MEAN)
    # 1000 requests at 100/s and 1000 at 300/s: 2000 requests in 13.33 s, 150 requests/s.
    assert rates.parse('"test","rps"\n"SET","100.0"\n"GET","300.0"\n') == pytest.approx(150.0)
    assert rates.parse("nothing here") is None
    last = Score(r"rate (?P<score>[0-9,.]+)", "ops/s", higher_is_better=True)
    assert last.parse("rate 1,000\nrate 2,500.5\n") == 2500.5
    with pytest.raises(ValueError, match="named group"):
        Score(r"rate ([0-9]+)", "ops/s", higher_is_better=True)
