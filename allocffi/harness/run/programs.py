"""What ``allocffi run`` runs and what one run measured: the options, the programs, the samples.

``command.py`` makes them and ``results.py`` summarises them; neither imports the other's logic.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from allocffi.harness.core.measure import ProcessRun
from allocffi.harness.run import preload
from allocffi.harness.run.score import Score
from allocffi.harness.run.server import Driver
from allocffi.harness.run.suite import SuiteProgram


@dataclass
class RunOptions:
    """The ``allocffi run`` command line, parsed."""

    command: list[str] = field(default_factory=list)  # CMD ARGS after --; empty with --suite
    suite: str | None = None
    programs: list[str] | None = None  # a subset of the suite's programs
    allocators: list[str] | None = None  # names or NAME=PATH; None: every installed one
    repeat: int = 5
    baseline: str | None = None  # None: libc when it runs, else the first allocator
    env: list[str] = field(default_factory=list)  # KEY=VALUE
    cwd: str | None = None
    timeout_s: float | None = None
    python_malloc: bool = False
    sample: bool = True  # RSS curve every 10 ms (--no-sample: rusage only)
    count_check: bool = True  # suites: count each program's allocations once
    json_path: str | None = None
    csv_path: str | None = None
    markdown_path: str | None = None
    plot_path: str | None = None
    quiet: bool = False
    invocation: str = "allocffi run"
    name: str | None = None  # the program's name in the rows (default: the command's base name)
    stdin_path: str | None = None  # None: /dev/null
    score_pattern: str | None = None  # --score REGEX, with a named group "score"
    score_higher_is_better: bool | None = None  # required with --score
    score_unit: str = ""
    score_stream: str = "stdout"


@dataclass
class Program:
    """One command to compare allocators on, ready to run."""

    name: str
    argv: list[str]
    env: dict[str, str]  # added to the caller's environment
    cwd: str | None
    description: str = ""
    suite_program: SuiteProgram | None = None
    allocations_counted: int | None = None
    problems: list[str] = field(default_factory=list)  # failed checks before the measured runs
    score: Score | None = None
    stdin: str | None = None  # a file to give as stdin; None: /dev/null
    driver: Driver | None = None  # a server program's client (server.py)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    @property
    def python_malloc(self) -> bool:
        return self.env.get("PYTHONMALLOC") == "malloc"


@dataclass
class Sample:
    """One measured run of one program under one allocator."""

    allocator: str
    program: str
    repeat: int
    run: ProcessRun
    verification: preload.Verification
    stderr_tail: str = ""
    score: float | None = None
    other_problems: list[str] = field(default_factory=list)  # a missing score, a failed driver
    warnings: list[str] = field(default_factory=list)  # likely misuse (misuse.py): not failures

    @property
    def problems(self) -> list[str]:
        problems = list(self.verification.problems) + self.other_problems
        if self.run.timed_out:
            problems.append("timed out: killed (its process group) at --timeout")
        elif self.run.exit_code != 0:
            how = (
                f"killed by signal {-self.run.exit_code}"
                if self.run.exit_code < 0
                else f"exit status {self.run.exit_code}"
            )
            tail = f": {self.stderr_tail}" if self.stderr_tail else ""
            problems.append(f"{how}{tail}")
        return problems

    @property
    def ok(self) -> bool:
        return not self.problems
