"""Suites of real programs for ``allocffi run --suite NAME``.

A suite program is a real, allocation-heavy program from Debian (gcc's cc1, python3, perl,
sqlite3) with an input generated deterministically on the spot (nothing is downloaded), or, in the
stress suite, a multi-threaded program written here in C (csrc/stress/). Each one
states what it does and how many allocation calls it makes; the suite counts them once per run of
the suite (``allocffi.bench.preload``'s counter, under glibc) and fails a program whose count fell
below ``min_allocations``: a program that stopped allocating would otherwise compare nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from allocffi.bench.errors import UsageError
from allocffi.bench.score import Score


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

    def prepare(self, workdir: Path) -> list[str]:
        """Check the tools, write the inputs into ``workdir`` and return the command."""
        for tool in self.tools:
            tool.path()
        workdir.mkdir(parents=True, exist_ok=True)
        self.write_inputs(workdir)
        return self.argv(workdir)


def _suites() -> dict[str, tuple[SuiteProgram, ...]]:
    from allocffi.bench.suite import cc1, perl_hash, python_stdlib, sqlite_queries, stress

    return {
        "real": (cc1.PROGRAM, python_stdlib.PROGRAM, perl_hash.PROGRAM, sqlite_queries.PROGRAM),
        "stress": stress.PROGRAMS,
    }


def suite_names() -> list[str]:
    return list(_suites())


def get_suite(name: str, programs: Sequence[str] | None = None) -> list[SuiteProgram]:
    """The programs of suite ``name`` (all, or those named in ``programs``); UsageError if unknown."""
    suites = _suites()
    if name not in suites:
        raise UsageError(f"unknown suite {name!r}; choose from {', '.join(suites)}")
    members = suites[name]
    if programs is None:
        return list(members)
    by_name = {p.name: p for p in members}
    unknown = [p for p in programs if p not in by_name]
    if unknown:
        raise UsageError(
            f"suite {name!r} has no program {', '.join(map(repr, unknown))}; choose from {', '.join(by_name)}"
        )
    return [by_name[p] for p in programs]
