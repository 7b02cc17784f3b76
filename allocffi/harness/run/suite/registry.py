"""The suites of ``allocffi run --suite NAME`` and the programs each one runs, in report order."""

from __future__ import annotations

from collections.abc import Sequence

from allocffi.harness.core.errors import UsageError
from allocffi.harness.run.suite import (
    SuiteProgram,
    cc1,
    gs_pdf,
    lua_gc,
    perl_hash,
    python_stdlib,
    redis,
    rocksdb_fill,
    sqlite_queries,
    stress,
    z3_bitvectors,
)


def _suites() -> dict[str, tuple[SuiteProgram, ...]]:
    return {
        "real": (
            cc1.PROGRAM,
            python_stdlib.PROGRAM,
            perl_hash.PROGRAM,
            sqlite_queries.PROGRAM,
            redis.PROGRAM,
            z3_bitvectors.PROGRAM,
            lua_gc.PROGRAM,
            gs_pdf.PROGRAM,
            rocksdb_fill.PROGRAM,
        ),
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
