"""A Python workload for the trace tests and benchmarks: JSON round trips and AST parsing.

    PYTHONMALLOC=malloc python json_ast_workload.py [ROUNDS]

Deterministic (no randomness, no time): the same ROUNDS make the same allocation calls on the
same interpreter. With PYTHONMALLOC=malloc every object is a malloc call: 40 rounds make about
3.5 million calls (the capture-overhead benchmark); the shipped trace uses 10.
"""

import ast
import json
import sys


def document(i: int) -> dict:
    return {
        "id": i,
        "name": f"item-{i}",
        "tags": [f"t{j}" for j in range(i % 7)],
        "values": [j * 0.5 for j in range(i % 11)],
        "child": {"depth": i % 5, "ok": i % 2 == 0, "note": None},
    }


SOURCE = """
def f(x, y=2, *args, **kw):
    total = 0
    for i in range(x):
        if i % y == 0:
            total += i * y
        else:
            total -= [j for j in args if j][:1] or 0
    return {"total": total, "kw": sorted(kw.items())}

class C(dict):
    def method(self, key):
        return self.get(key, lambda v: v + 1)
"""


def one_round(r: int) -> int:
    docs = [document(i + r) for i in range(400)]
    text = json.dumps(docs)
    back = json.loads(text)
    tree = ast.parse(SOURCE * 3)
    dumped = ast.dump(tree)
    return len(back) + len(dumped)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    total = 0
    for r in range(rounds):
        total += one_round(r)
    print(total)


if __name__ == "__main__":
    main()
