"""afmalloc (csrc/afmalloc, allocffi/_afmalloc.so) under real programs.

Each program runs twice, on glibc's malloc and with afmalloc preloaded, and must print exactly the
same thing: CPython with PYTHONMALLOC=malloc (every object through malloc) doing allocation-heavy
work in threads, sqlite3, perl, and a shell starting children (the preload passes to them).
Then ``allocffi run --allocators afmalloc`` must prove that afmalloc served the program. The C
test (csrc/tests/test_afmalloc.c) covers the entry points one by one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import run_rows

from allocffi.harness.run import preload

PYTHON_WORK = r"""
import hashlib, json, random, threading
random.seed(7)
records = [{"id": i, "name": "x" * (i % 300), "tags": list(range(i % 17))} for i in range(40000)]
text = json.dumps(records)
again = json.loads(text)
index = {r["name"] + str(r["id"]): r for r in again}
del records
def work(seed, out):
    rng = random.Random(seed)
    keep = []
    for i in range(30000):
        keep.append(bytes(rng.randrange(2000)))
        if len(keep) > 500:
            keep.pop(rng.randrange(len(keep)))
    out.append(sum(map(len, keep)))
results = []
threads = [threading.Thread(target=work, args=(s, results)) for s in range(4)]
for t in threads: t.start()
for t in threads: t.join()
big = bytearray(8 << 20)
big[-1] = 1
print(hashlib.sha256(text.encode()).hexdigest(), len(index), sorted(results), sum(big))
"""

SQL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
INSERT INTO t SELECT i, hex(i * 7919 % 1000), zeroblob(i % 500) FROM n;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(length(v)), count(DISTINCT k) FROM t;
SELECT k, count(*) FROM t GROUP BY k ORDER BY count(*) DESC, k LIMIT 5;
UPDATE t SET v = zeroblob(length(v) * 2) WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(v)) FROM t;
"""

PERL_WORK = r"""
my %h; my @a;
for my $i (1..200000) { $h{"k$i"} = "v" x ($i % 100); push @a, $i * 7919 % 100003; }
delete $h{"k$_"} for grep { $_ % 3 == 0 } 1..200000;
my @s = sort { $a <=> $b } @a;
print scalar(keys %h), " ", $s[0], " ", $s[-1], " ", length(join(",", @s)), "\n";
"""

SHELL_WORK = (
    "for i in 3 1 2; do echo $i; done | sort | tr -d '\\n'; ls / | wc -l; seq 1 2000 | sort -r | head -3"
)


@pytest.fixture(scope="module")
def library() -> str:
    path = preload.allocator_library("afmalloc")
    if path is None:
        pytest.fail("allocffi/_afmalloc.so is not built: run `make build`")
    return path


def run(cmd: list[str], library: str | None, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["PYTHONMALLOC"] = "malloc"
    if library is not None:
        env["LD_PRELOAD"] = library
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, (
        f"{cmd[0]} {'under afmalloc' if library else 'on glibc'}: {done.stderr[-2000:]}"
    )
    return done.stdout


def same_output(cmd: list[str], library: str, stdin: str | None = None) -> None:
    expected = run(cmd, None, stdin)
    assert expected.strip(), "the program printed nothing"
    assert run(cmd, library, stdin) == expected


def test_python_under_afmalloc_prints_what_it_prints_on_glibc(library: str) -> None:
    same_output([sys.executable, "-c", PYTHON_WORK], library)


def test_sqlite3_under_afmalloc(library: str) -> None:
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        pytest.skip("sqlite3 is not installed (apt-get install sqlite3)")
    same_output([sqlite3, ":memory:"], library, stdin=SQL)


def test_perl_under_afmalloc(library: str) -> None:
    perl = shutil.which("perl")
    if perl is None:
        pytest.skip("perl is not installed")
    same_output([perl, "-e", PERL_WORK], library)


def test_a_shell_and_its_children_under_afmalloc(library: str) -> None:
    same_output(["sh", "-c", SHELL_WORK], library)


def test_the_library_exports_the_malloc_family_only(library: str) -> None:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm is not installed (binutils)")
    out = subprocess.run(
        [nm, "-D", "--defined-only", library], capture_output=True, text=True, check=True
    ).stdout
    functions = {
        line.split()[2] for line in out.splitlines() if len(line.split()) == 3 and line.split()[1] == "T"
    }
    assert functions == {
        "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "malloc_usable_size",
    }  # fmt: skip


def test_allocffi_run_proves_afmalloc_served_the_program(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    done = subprocess.run(
        [
            sys.executable, "-m", "allocffi", "run", "--allocators", "libc,afmalloc", "--repeat", "1",
            "--json", str(report), "-q", "--", sys.executable, "-c", "import json; json.dumps([0] * 10**5)",
        ],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {row["allocator"]: row for row in run_rows(json.loads(report.read_text()))}
    assert rows["afmalloc"]["preload_verified"] is True and rows["afmalloc"]["failed"] is False
    assert rows["libc"]["preload_verified"] is True
