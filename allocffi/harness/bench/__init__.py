"""allocffi.harness.bench: ``allocffi bench``, the comparison of allocators in the C engine.

The C engine (``af_bench_run``) runs one workload against one allocator with
no Python in the loop. This package runs the engine in fresh subprocesses
(one per allocator, workload and repeat, so no heap state leaks from one
allocator to the next), checks that every allocator computed the same
checksum, and reports medians, speedups against glibc and memory use.

Modules, one concept each: catalog (names and default sizes), worker (the
Python child process), workload_file (a user's workloads), targets (the
project's performance goals), comparison (per-cell verdicts against another
run), results (the run and its JSON/CSV/Markdown files), console (terminal
tables and progress), heatmap and scaling (the plots), command (the
``allocffi bench`` command end to end). Planning and running the children,
statistics and machine information are shared: see allocffi.harness.core.

Importing this package is cheap: rich and matplotlib load only when used.
"""
