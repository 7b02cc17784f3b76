"""Regenerate the shipped traces (``make traces``): a Python JSON/AST workload and cc1.

    python bench/traces/make_traces.py

- python-json-ast.trace: ``json_ast_workload.py 10`` under ``PYTHONMALLOC=malloc`` (every
  object a malloc call).
- cc1.trace: the ``cc1`` process of ``gcc -O2 -c csrc/engine/workloads.c`` (a 460-line file of
  this project; the gcc driver spawns cc1, the capture follows it and writes one trace per
  process, of which this keeps cc1's).
The traces depend on the interpreter and compiler versions, so regenerating changes the bytes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from allocffi.harness.trace import info
from allocffi.harness.trace.capture import record

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CC1_INPUT = ROOT / "csrc" / "engine" / "workloads.c"


def keep(traces: list[Path], wanted: str, dest: Path) -> None:
    for path in traces:
        command = info.process_summary(path)["command"]
        if command and Path(command[0]).name == wanted:
            shutil.copyfile(path, dest)
            print(f"wrote {dest} ({dest.stat().st_size:,} bytes)")
            return
    raise SystemExit(f"no {wanted} process among {[str(p) for p in traces]}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        python = record(
            work / "py", [sys.executable, str(HERE / "json_ast_workload.py"), "10"], python_malloc=True
        )
        keep(python.traces, Path(sys.executable).name, HERE / "python-json-ast.trace")
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            raise SystemExit("no gcc to record cc1 with")
        includes = [f"-I{ROOT / 'csrc' / 'include'}", f"-I{ROOT / 'csrc'}"]
        cc = record(work / "cc", [gcc, "-O2", *includes, "-c", str(CC1_INPUT), "-o", str(work / "out.o")])
        keep(cc.traces, "cc1", HERE / "cc1.trace")


if __name__ == "__main__":
    main()
