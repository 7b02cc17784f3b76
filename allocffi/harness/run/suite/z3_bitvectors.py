"""z3 on a generated bit-vector problem, checked incrementally (push, assert, check-sat, pop).

The problem: VARIABLES 16-bit unknowns tied by linear, masked-xor and multiplicative constraints,
all true of one hidden assignment (so every check is satisfiable and z3 must find a model, not
stop at a quick conflict). Then ROUNDS rounds each push three more such constraints, check and pop.
Bit-blasting the multiplications creates and frees many terms, clauses and watch lists per round.
z3 pools objects under 256 bytes itself (its small_object_allocator), so the calls the allocator
sees are its larger vectors, hash tables and clause arrays: a few million per run.
"""

from __future__ import annotations

import random
from pathlib import Path

from allocffi.harness.run.suite import SuiteProgram, Tool, scaled_allocations

VARIABLES = 60
WIDTH = 16
ROUNDS = 90  # at scale 1
SEED = 3
ALLOCATIONS = 5_400_000  # counted here at scale 1 (5,431,818)


def _constraint(rng: random.Random, hidden: list[int]) -> str:
    mask = (1 << WIDTH) - 1

    def const(value: int) -> str:
        return f"(_ bv{value & mask} {WIDTH})"

    a, b = rng.randrange(len(hidden)), rng.randrange(len(hidden))
    k = rng.randrange(1, mask + 1)
    kind = rng.randrange(3)
    if kind == 0:
        return f"(= (bvadd (bvmul x{a} {const(k)}) x{b}) {const(hidden[a] * k + hidden[b])})"
    if kind == 1:
        return f"(= (bvand (bvxor x{a} x{b}) {const(k)}) {const((hidden[a] ^ hidden[b]) & k)})"
    return f"(bvule (bvmul x{a} x{b}) {const(hidden[a] * hidden[b])})"


def generate_problem(scale: float = 1.0, seed: int = SEED) -> str:
    rng = random.Random(seed)
    hidden = [rng.randrange(1 << WIDTH) for _ in range(VARIABLES)]
    lines = ["(set-logic QF_BV)"]
    lines += [f"(declare-const x{i} (_ BitVec {WIDTH}))" for i in range(VARIABLES)]
    lines += [f"(assert {_constraint(rng, hidden)})" for _ in range(VARIABLES)]
    for _ in range(max(1, round(ROUNDS * scale))):
        lines.append("(push 1)")
        lines += [f"(assert {_constraint(rng, hidden)})" for _ in range(3)]
        lines += ["(check-sat)", "(pop 1)"]
    return "\n".join(lines) + "\n"


def program(scale: float = 1.0) -> SuiteProgram:
    """The program at ``scale`` (1: the suite's run); its allocation figures scale with it."""

    def write(workdir: Path) -> None:
        (workdir / "problem.smt2").write_text(generate_problem(scale))

    def argv(workdir: Path) -> list[str]:
        return ["z3", "-smt2", str(workdir / "problem.smt2")]

    allocations, bound = scaled_allocations(ALLOCATIONS, scale)
    return SuiteProgram(
        name="z3",
        description=f"z3 -smt2: {VARIABLES} {WIDTH}-bit unknowns under linear, xor and multiplicative "
        f"constraints, {ROUNDS} incremental push/check-sat/pop rounds (all satisfiable)",
        allocations=allocations,
        min_allocations=bound,
        tools=(Tool("z3", "z3"),),
        write_inputs=write,
        argv=argv,
    )


PROGRAM = program()
