"""Option values of every command, checked as argparse parses them.

Each numeric option has a type made here that accepts only a finite number in its range, so a
bad value (``nan``, ``inf``, ``0``, ``1e999``, a 5000-digit number) ends at parse time, before
anything runs, as argparse's one-line usage error naming the option and the accepted range:
``allocffi bench: error: argument --repeat: expected an integer from 1 to 10000 (got '0')``.
The API's option objects (BenchOptions...) go through the same ``Range.check``.

The ranges are the limits of what the harness can do, not advice: the engine takes at most
MAX_OPS operations per run, a seed is 64 bits, a noise threshold is a fraction below 1.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from allocffi.harness.core.errors import UsageError

MAX_OPS = 1 << 62  # the engine's ops per run: uint64 counters with room for every thread's sum
MAX_REPEAT = 10_000  # runs of each pair; each is a fresh process
MAX_SEED = 2**64 - 1
MAX_SECONDS = 7 * 24 * 3600.0  # a time budget or a timeout: a week
MAX_SCALE = 1000.0  # numpy-bench: multiple of each workload's iterations
MAX_NOISE_THRESHOLD = 1.0  # a fraction of 1.0, exclusive
# Longer than any value in range: refused before int() meets Python's digit limit.
_MAX_DIGITS = 60


def names(text: str) -> list[str]:
    """A comma-separated list of names (allocators, workloads, programs)."""
    found = [n.strip() for n in text.split(",") if n.strip()]
    if not found:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return found


class Range:
    """An option's accepted values: finite, integer or not, each end open or closed.

    ``Range`` is an argparse type (``type=arguments.REPEAT``) and, through ``check``, the same
    test for callers of the Python API (BenchOptions and the like), so both say the same thing.
    """

    def __init__(
        self, low: float, high: float, *, integer: bool, low_open: bool = False, high_open: bool = False
    ) -> None:
        self.low, self.high, self.integer = low, high, integer
        self.low_open, self.high_open = low_open, high_open
        self.__name__ = "integer" if integer else "number"  # argparse names the type in some messages

    @property
    def expected(self) -> str:
        if self.integer:
            return f"expected an integer from {self.low} to {self.high}"
        above = ">" if self.low_open else ">="
        below = "<" if self.high_open else "<="
        return f"expected a number {above} {self.low:g} and {below} {self.high:g}"

    def holds(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        return (
            math.isfinite(value)
            and (value > self.low if self.low_open else value >= self.low)
            and (value < self.high if self.high_open else value <= self.high)
        )

    def __call__(self, text: str) -> Any:
        """Parse one command-line value (argparse turns the TypeError into its usage line)."""
        if len(text) > _MAX_DIGITS:
            raise argparse.ArgumentTypeError(f"{self.expected} (got {len(text)} characters)")
        try:
            value: float = int(text.strip(), 10) if self.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{self.expected} (got {text!r})") from None
        if not self.holds(value):
            raise argparse.ArgumentTypeError(f"{self.expected} (got {text!r})")
        return value

    def check(self, option: str, value: object) -> None:
        """UsageError unless ``value`` is in range (for values that did not come through argparse)."""
        if not self.holds(value):
            raise UsageError(f"{option}: {self.expected} (got {value!r})")


REPEAT = Range(1, MAX_REPEAT, integer=True)
OPS = Range(1, MAX_OPS, integer=True)
SEED = Range(0, MAX_SEED, integer=True)
SECONDS = Range(0.0, MAX_SECONDS, integer=False, low_open=True)
NOISE_THRESHOLD = Range(0.0, MAX_NOISE_THRESHOLD, integer=False, high_open=True)
SCALE = Range(0.0, MAX_SCALE, integer=False, low_open=True)

__all__ = [
    "MAX_NOISE_THRESHOLD",
    "MAX_OPS",
    "MAX_REPEAT",
    "MAX_SCALE",
    "MAX_SECONDS",
    "MAX_SEED",
    "NOISE_THRESHOLD",
    "OPS",
    "REPEAT",
    "SCALE",
    "SECONDS",
    "SEED",
    "Range",
    "names",
]
