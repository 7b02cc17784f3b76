"""allocffi.harness.bench: the comparative benchmark harness.

The C engine (``af_bench_run``) runs one workload against one allocator with
no Python in the loop. This package runs the engine in fresh subprocesses
(one per allocator, workload and repeat, so no heap state leaks from one
allocator to the next), checks that every allocator computed the same
checksum, and reports medians, speedups against glibc and memory use.

Modules, one concept each: catalog (names and default sizes), worker (the
child process), runner (planning and running the children), stats
(aggregation over repeats), targets (the project's performance goals),
compare (against a saved baseline), machine (what we ran on), report
(JSON/CSV/Markdown files), console (terminal tables and progress), plot
(matplotlib chart), session (the ``allocffi bench`` command end to end).

Importing this package is cheap: rich and matplotlib load only when used.
"""
