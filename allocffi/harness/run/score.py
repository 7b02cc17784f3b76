"""A program's own score: a figure it prints about its own work, read from its output.

Programs that stop on time rather than on work (larson-style servers, redis under a fixed number of
requests from its benchmark client) finish in about the same wall time under every allocator: their
time says nothing, their throughput says everything. A ``Score`` names where that figure is printed
and which direction is better, so the harness can treat it with the same statistics as time.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

SCORE_GROUP = "score"  # the named group a score pattern must have
LAST = "last"  # the last match counts (a final summary line)
HARMONIC_MEAN = "harmonic-mean"  # every match counts: rates over equal work, combined into the overall rate
STREAMS = ("stdout", "stderr")
SOURCES = ("program", "driver")  # the measured program's output, or its driver's (a server's client)


@dataclass(frozen=True)
class Score:
    """How to read one number from a program's output, and which way is better."""

    pattern: str  # a regular expression with a named group "score" (which matches count: ``combine``)
    unit: str  # what the number measures, e.g. "requests/s" or "s"
    higher_is_better: bool
    stream: str = "stdout"  # "stdout" or "stderr": where the program prints it
    source: str = "program"  # "driver": printed by the client of a server program (suite/__init__.py)
    combine: str = LAST  # or HARMONIC_MEAN: n rates over equal work -> n / sum(1 / rate), the overall rate

    def __post_init__(self) -> None:
        compiled = re.compile(self.pattern, re.MULTILINE)
        if SCORE_GROUP not in compiled.groupindex:
            raise ValueError(f"score pattern {self.pattern!r} has no named group (?P<{SCORE_GROUP}>...)")
        if self.stream not in STREAMS:
            raise ValueError(f"score stream must be 'stdout' or 'stderr', not {self.stream!r}")
        if self.source not in SOURCES:
            raise ValueError(f"score source must be 'program' or 'driver', not {self.source!r}")
        if self.combine not in (LAST, HARMONIC_MEAN):
            raise ValueError(f"score combine must be {LAST!r} or {HARMONIC_MEAN!r}, not {self.combine!r}")

    @property
    def where(self) -> str:
        """Where the score is read, for messages: "stdout", "the driver's stdout"."""
        return self.stream if self.source == "program" else f"the driver's {self.stream}"

    def parse(self, text: str) -> float | None:
        """The score in ``text`` (the last match, or all combined), or None when there is none."""
        values = []
        for match in re.finditer(self.pattern, text, re.MULTILINE):
            try:
                values.append(float(match.group(SCORE_GROUP).replace(",", "")))
            except ValueError:
                continue
        if not values:
            return None
        if self.combine == HARMONIC_MEAN:
            return statistics.harmonic_mean(values) if all(v > 0 for v in values) else None
        return values[-1]
