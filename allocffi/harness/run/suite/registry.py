"""The suites of ``allocffi run --suite NAME`` and the programs each one runs, in report order."""

from __future__ import annotations

from collections.abc import Sequence

from allocffi.harness.core.errors import UsageError
from allocffi.harness.run.suite import SuiteProgram, cc1, perl_hash, python_stdlib, redis, sqlite_queries


def _suites() -> dict[str, tuple[SuiteProgram, ...]]:
    return {
        "real": (cc1.PROGRAM, python_stdlib.PROGRAM, perl_hash.PROGRAM, sqlite_queries.PROGRAM, redis.PROGRAM)
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
