"""Suites of real programs for ``allocffi run --suite NAME``.

A suite program is a real, allocation-heavy program from Debian (gcc's cc1, python3, perl,
sqlite3) with an input generated deterministically on the spot (nothing is downloaded), or, in the
stress suite, a multi-threaded program written here in C (csrc/stress/). Each one
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

# The bound of a program whose input scales: this share of its count at the same scale. Well below
# the count (inputs and versions move it a little), far above a program that stopped allocating.
MIN_ALLOCATION_FRACTION = 0.4


@dataclass(frozen=True)
class Tool:
    """An executable a program needs, and the Debian package that provides it."""

    command: str  # a name looked up in PATH, or an absolute path
    package: str  # "": built with allocffi itself (the stress programs)

    def path(self) -> str:
        found = self.command if os.path.isabs(self.command) else shutil.which(self.command)
        if found is None or not os.access(found, os.X_OK):
            if not self.package:
                raise UsageError(
                    f"{self.command} is not built (build allocffi: make build, or pip install .)"
                )
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


def scaled_allocations(count_at_scale_1: int, scale: float) -> tuple[int, int]:
    """(``allocations``, ``min_allocations``) of a program whose input is ``scale`` times the suite's.

    A program's fixed start-up calls make its count at a small scale a little more than
    proportional, never less, so the bound holds at every scale.
    """
    return int(count_at_scale_1 * scale), int(count_at_scale_1 * MIN_ALLOCATION_FRACTION * scale)
