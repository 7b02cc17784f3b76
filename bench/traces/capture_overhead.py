"""Capture overhead: the Python workload with and without the capture library (and memray).

    python bench/traces/capture_overhead.py [--repeat 5] [--rounds 40] [--memray]

Runs ``json_ast_workload.py ROUNDS`` under PYTHONMALLOC=malloc, alternating the variants so that
machine noise hits them alike, and prints per variant the median wall and user+sys CPU seconds of
the process, the ratio to the plain run, and for the capture the trace's calls and bytes per call.
Conversion (raw -> trace, after the program has exited) is timed separately. The load average is
printed before and after: on a shared machine the CPU-time ratio is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from allocffi.harness.trace import files, native
from allocffi.harness.trace.capture import capture_environment

HERE = Path(__file__).resolve().parent


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--memray", action="store_true", help="also time `python -m memray run`")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    workload = [sys.executable, str(HERE / "json_ast_workload.py"), str(args.rounds)]
    plain_env = dict(os.environ, PYTHONMALLOC="malloc")
    prefix = work / "t"
    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "plain": (workload, plain_env),
        "capture": (workload, capture_environment(prefix, python_malloc=True, base=plain_env)),
    }
    if args.memray:
        memray_cmd = [
            sys.executable,
            "-m",
            "memray",
            "run",
            "-q",
            "-f",
            "-o",
            str(work / "m.bin"),
            *workload[1:],
        ]
        variants["memray"] = (memray_cmd, plain_env)
    print(f"load average before: {os.getloadavg()}")
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    convert_s = []
    calls = size = 0
    for _ in range(args.repeat):
        for name, (argv, env) in variants.items():
            for stale in files.process_files(prefix, files.RAW_SUFFIX):
                stale.unlink()
            samples[name].append(timed(argv, env))
            if name == "capture":
                (raw,) = files.process_files(prefix, files.RAW_SUFFIX)
                trace = work / "out.trace"
                start = time.perf_counter()
                native.convert(raw, trace)
                convert_s.append(time.perf_counter() - start)
                summary = native.summarize(trace)
                calls, size = summary["events"], summary["file_bytes"]
                raw.unlink()
    print(f"load average after: {os.getloadavg()}")
    base_wall = statistics.median(w for w, _ in samples["plain"])
    base_cpu = statistics.median(c for _, c in samples["plain"])
    for name, runs in samples.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(
            f"{name:8} wall {wall:.3f} s ({wall / base_wall:.2f}x)  cpu {cpu:.3f} s ({cpu / base_cpu:.2f}x)  "
            f"walls {[round(w, 3) for w, _ in runs]}"
        )
    print(f"trace: {calls:,} calls, {size:,} bytes, {size / calls:.2f} bytes/call")
    print(f"conversion after exit: median {statistics.median(convert_s):.3f} s")


if __name__ == "__main__":
    main()
