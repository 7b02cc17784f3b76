"""gcc's cc1 compiling a large generated C file at -O2.

The gcc driver execs cc1 (LD_PRELOAD passes to it, as to every child that keeps the
environment); cc1 makes millions of small allocations for trees, RTL and its pass data. The file
is 50 functions over their own structs, each with 10-20 loops: optimisation work, not parsing.
"""

from __future__ import annotations

import random
from pathlib import Path

from allocffi.harness.run.suite import SuiteProgram, Tool

FUNCTIONS = 50
SEED = 1


def generate_source(functions: int = FUNCTIONS, seed: int = SEED) -> str:
    rng = random.Random(seed)
    parts = ["#include <stddef.h>\n"]
    for i in range(functions):
        fields = "".join(f"  int f{j}; double d{j};\n" for j in range(rng.randint(3, 8)))
        parts.append(f"struct s{i} {{\n{fields}}};\n")
        loops = []
        for k in range(rng.randint(10, 20)):
            limit, mask = rng.randint(1, 10**6), rng.randint(1, 999)
            loops.append(
                f"  for (int i{k} = 0; i{k} < n; i{k}++) {{ acc += p->f0 * i{k} + (acc >> {k % 7}); "
                f"if (acc > {limit}) acc ^= {mask}; }}"
            )
        parts.append(f"long fn{i}(struct s{i} *p, int n) {{\n  long acc = {i};\n" + "\n".join(loops))
        parts.append("\n  return acc;\n}\n")
    return "".join(parts)


def _write(workdir: Path) -> None:
    (workdir / "generated.c").write_text(generate_source())


def _argv(workdir: Path) -> list[str]:
    return ["gcc", "-O2", "-S", "-o", "/dev/null", str(workdir / "generated.c")]


PROGRAM = SuiteProgram(
    name="cc1",
    description=f"gcc -O2 -S on a generated C file ({FUNCTIONS} functions of 10-20 loops); "
    "the driver execs cc1",
    allocations=3_900_000,
    min_allocations=1_500_000,
    tools=(Tool("gcc", "gcc"),),
    write_inputs=_write,
    argv=_argv,
)
