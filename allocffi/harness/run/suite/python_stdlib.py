"""python3 with PYTHONMALLOC=malloc on allocation-heavy standard-library work.

Without PYTHONMALLOC=malloc, CPython's pymalloc serves almost every object and the allocator
under test would see a few thousand calls; with it every object goes through malloc. The script
does a json round trip of a generated document, ast-parses standard-library modules and builds a
dict of lists. Debian's /usr/bin/python3 runs it (not a virtualenv's), so the program is the same
for every user of the suite.
"""

from __future__ import annotations

from pathlib import Path

from allocffi.harness.run.suite import SuiteProgram, Tool

PYTHON = "/usr/bin/python3"

SCRIPT = """\
import ast, json, os, random, sysconfig

rng = random.Random(7)
doc = [{"id": i, "name": f"item-{i}", "tags": [f"t{rng.randrange(100)}" for _ in range(5)],
        "score": rng.random(), "nested": {"a": i, "b": [i, i + 1, i + 2]}} for i in range(30000)]
text = json.dumps(doc)
assert json.loads(text) == doc

stdlib = sysconfig.get_paths()["stdlib"]
modules = sorted(n for n in os.listdir(stdlib) if n.endswith(".py"))[:40]
for name in modules:
    with open(os.path.join(stdlib, name), encoding="utf-8") as f:
        ast.parse(f.read())

groups = {}
for i in range(200000):
    groups.setdefault(i % 5000, []).append((i, str(i)))
print(len(text), len(modules), len(groups))
"""


def _write(workdir: Path) -> None:
    (workdir / "work.py").write_text(SCRIPT)


def _argv(workdir: Path) -> list[str]:
    return [PYTHON, str(workdir / "work.py")]


PROGRAM = SuiteProgram(
    name="python",
    description="python3 (PYTHONMALLOC=malloc): json round trip of 30k records, ast of 40 stdlib modules, "
    "a 200k-entry dict of lists",
    allocations=4_500_000,
    min_allocations=1_500_000,
    tools=(Tool(PYTHON, "python3"),),
    write_inputs=_write,
    argv=_argv,
    env={"PYTHONMALLOC": "malloc"},
)
