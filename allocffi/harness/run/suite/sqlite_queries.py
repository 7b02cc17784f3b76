"""sqlite3 (the command-line shell) on an in-memory database: insert 300k rows, index, query.

In memory, so every page of the database is malloc'd and the runs start from the same state.
"""

from __future__ import annotations

from pathlib import Path

from allocffi.harness.run.suite import SuiteProgram, Tool

ROWS = 300_000

SCRIPT = f"""\
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, score REAL, payload TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
INSERT INTO t SELECT i, 'name-' || ((i * 7919) % 150001), (i * 31) % 1000,
  ((i * 2654435761) % 1000003) / 1000003.0, printf('%.*c', 20 + i % 40, 'x') FROM n;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp_score ON t(grp, score);
SELECT grp, count(*), round(avg(score), 6) FROM t GROUP BY grp ORDER BY 3 DESC LIMIT 3;
SELECT count(*) FROM t a JOIN t b ON a.name = b.name WHERE a.id < b.id;
SELECT count(DISTINCT substr(payload, 1, 30) || name) FROM t;
SELECT name FROM t ORDER BY payload, name LIMIT 3;
"""


def _write(workdir: Path) -> None:
    (workdir / "queries.sql").write_text(SCRIPT)


def _argv(workdir: Path) -> list[str]:
    return ["sqlite3", ":memory:", f".read {workdir / 'queries.sql'}"]


PROGRAM = SuiteProgram(
    name="sqlite",
    description=f"sqlite3 :memory: insert {ROWS:,} rows, two indexes, group-by, self-join and sort queries",
    allocations=2_100_000,
    min_allocations=800_000,
    tools=(Tool("sqlite3", "sqlite3"),),
    write_inputs=_write,
    argv=_argv,
)
