"""Suites of real programs for ``allocffi run --suite NAME``.

A suite program is a real, allocation-heavy program from Debian (gcc's cc1, python3, perl,
sqlite3) with an input generated deterministically on the spot (nothing is downloaded). Each one
states what it does and how many allocation calls it makes; the suite counts them once per run of
the suite (``allocffi.harness.run.preload``'s counter, under glibc) and fails a program whose count fell
below ``min_allocations``: a program that stopped allocating would otherwise compare nothing.

This module is the contract every program fills in (``SuiteProgram``); ``registry`` names the
suites and their programs.
A program may also declare its own score (``score.Score``: for programs that stop on time rather
than on work), a stdin file among its inputs, and a ``server.Driver``: then the program is a server
and the driver, run outside the preload, gives it its work (``allocffi/harness/run/server.py``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from allocffi.harness.core.errors import UsageError
from allocffi.harness.run.score import Score
from allocffi.harness.run.server import Driver


@dataclass(frozen=True)
class Tool:
    """An executable a program needs, and the Debian package that provides it."""

    command: str  # a name looked up in PATH, or an absolute path
    package: str

    def path(self) -> str:
        found = self.command if os.path.isabs(self.command) else shutil.which(self.command)
        if found is None or not os.access(found, os.X_OK):
            raise UsageError(f"{self.command} is not installed (install it: apt-get install {self.package})")
        return found


@dataclass(frozen=True)
class SuiteProgram:
    """One program of a suite."""

    name: str
    description: str  # what it does, one sentence
    allocations: int  # malloc+calloc+realloc calls of one run, as counted here (documentation)
    min_allocations: int  # the coarse bound the suite checks
    tools: Sequence[Tool]
    write_inputs: Callable[[Path], None]  # deterministic: same files on every machine
    argv: Callable[[Path], list[str]]  # the command, given the directory of the inputs
    env: Mapping[str, str] = field(default_factory=dict)
    # The program's own figure of merit, for programs that stop on time rather than on work.
    score: Score | None = None
    stdin: str | None = None  # a file of the inputs directory to give as stdin (default /dev/null)
    # A server program: its driver runs outside the preload once the server accepts connections.
    driver: Driver | None = None

    def prepare(self, workdir: Path) -> list[str]:
        """Check the tools, write the inputs into ``workdir`` and return the command."""
        for tool in self.tools:
            tool.path()
        workdir.mkdir(parents=True, exist_ok=True)
        self.write_inputs(workdir)
        return self.argv(workdir)
