"""afmalloc beside glibc, mimalloc, jemalloc and tcmalloc, one small C driver under each (LD_PRELOAD).

- Instructions per malloc/free pair (valgrind's callgrind; the difference of an N and a 2N run,
  so start-up cancels; independent of the load): 48 B pairs, pairs of mixed sizes over 64 live
  blocks, and the 2-thread churn below (callgrind runs one thread at a time) (csrc/tools/malloc_pairs.c).
- Two threads churning mixed sizes, every 4th block freed by the other thread: wall time, median
  of REPEATS runs interleaved across the libraries, as a ratio to glibc's median of the same run
  (> 1: slower than glibc), with the load average beside it.

Usage: python bench/afmalloc_compare.py DRIVER [REPEATS]  (make afmalloc-compare)
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys

from allocffi.harness.run.preload import RUN_ALLOCATORS, allocator_library

CALLGRIND_OPS = 100_000
THREAD_OPS = "10000000"


def instructions(driver: str, env: dict[str, str], mode: list[str], ops: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", driver, *mode, str(ops)],
        env=env, capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    match = re.search(r"Collected : (\d+)", out)
    assert match is not None, out
    return int(match.group(1))


def main() -> int:
    driver = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    libraries = {name: allocator_library(name) for name in RUN_ALLOCATORS}
    envs = {}
    for name, path in libraries.items():
        if path is None:
            print(f"{name}: not available, skipped")
            continue
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        if name != "libc":
            env["LD_PRELOAD"] = path
        envs[name] = env
    print("instructions per pair (callgrind, 2N - N runs)")
    for name, env in envs.items():
        counts = []
        for mode, pairs in ((["fixed48"], 1), (["mixed"], 1), (["threads", "2"], 2)):
            n1 = instructions(driver, env, mode, CALLGRIND_OPS)
            n2 = instructions(driver, env, mode, 2 * CALLGRIND_OPS)
            counts.append(f"{' '.join(mode)} {(n2 - n1) / (pairs * CALLGRIND_OPS):.0f}")
        print(f"  {name:9} {', '.join(counts)}")
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(repeats):
        for name, env in envs.items():  # interleaved: drift of the machine hits every library alike
            out = subprocess.run(
                [driver, "threads", "2", THREAD_OPS], env=env, capture_output=True, text=True, check=True
            ).stdout
            times[name].append(float(out))
    base = statistics.median(times["libc"])
    print(f"2 threads x {THREAD_OPS} pairs, cross-thread frees: median of {repeats} interleaved runs")
    for name, samples in times.items():
        median = statistics.median(samples)
        spread = f"[{min(samples):.3f}-{max(samples):.3f}]"
        print(f"  {name:9} {median:.3f} s  {spread}  {median / base:.2f}x glibc's time")
    print(f"load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
