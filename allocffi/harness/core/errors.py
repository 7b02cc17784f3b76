"""Errors of the benchmark harness and the exit status each one maps to.

Invariant: a ``UsageError`` is something the user can fix (a name, a path, a
missing package) and is reported as one line on stderr with exit status 2,
never with a traceback. A ``BenchFailure`` means the benchmark itself went
wrong (a worker crashed, checksums disagree) and exits with status 1.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # a worker crashed or allocators disagree on a checksum
EXIT_USAGE = 2  # bad name, unwritable path, unavailable allocator, missing dependency
EXIT_REGRESSION = 3  # --fail-on-regression and something got slower beyond noise
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it; partial reports were written


class UsageError(Exception):
    """The user asked for something this machine or this run cannot do."""


class BenchFailure(Exception):
    """A benchmark run failed: its numbers cannot be trusted."""
