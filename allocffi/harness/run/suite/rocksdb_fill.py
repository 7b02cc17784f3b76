"""RocksDB's db_bench (Debian's rocksdb-tools) filling a new database with random keys.

As the peers' rocksdb benchmark does (db_bench --benchmarks=fillrandom), with fewer keys so that a
run takes seconds here. Keys are 16 bytes and values 100 (db_bench's defaults), drawn from a fixed
seed; the write-ahead log is on (the default), and most allocation calls come from its write path,
about a dozen per key; the memtable uses its own arena. Compaction runs in background threads, so
the work is the same on every run but its interleaving is not. The database is created in the
program's working directory, and db_bench deletes it first, so every run starts empty.

db_bench reports its own throughput (fillrandom ops/sec), the suite's score for this program.
"""

from __future__ import annotations

from pathlib import Path

from allocffi.harness.run.score import Score
from allocffi.harness.run.suite import SuiteProgram, Tool, scaled_allocations

KEYS = 250_000  # at scale 1
SEED = 1
ALLOCATIONS = 3_000_000  # counted here at scale 1 (3,039,422)

SCORE = Score(pattern=r"^fillrandom\s*:.*?\s(?P<score>[0-9.]+) ops/sec", unit="ops/s", higher_is_better=True)


def program(scale: float = 1.0) -> SuiteProgram:
    """The program at ``scale`` (1: the suite's run); its allocation figures scale with it."""
    keys = max(1000, round(KEYS * scale))

    def write(workdir: Path) -> None:
        pass  # db_bench generates its keys and values itself, from --seed

    def argv(workdir: Path) -> list[str]:
        return [
            "db_bench", f"--db={workdir / 'db'}", "--benchmarks=fillrandom", f"--num={keys}",
            f"--seed={SEED}", "--threads=1",
        ]  # fmt: skip

    allocations, bound = scaled_allocations(ALLOCATIONS, scale)
    return SuiteProgram(
        name="rocksdb",
        description=f"rocksdb db_bench --benchmarks=fillrandom: {KEYS // 1000}k random 16-byte keys with "
        "100-byte values into a new database, write-ahead log on",
        allocations=allocations,
        min_allocations=bound,
        tools=(Tool("db_bench", "rocksdb-tools"),),
        write_inputs=write,
        argv=argv,
        score=SCORE,
    )


PROGRAM = program()
