"""A program's own score: a figure it prints about its own work, read from its output.

Programs that stop on time rather than on work (larson-style servers, redis under a fixed number of
requests from its benchmark client) finish in about the same wall time under every allocator: their
time says nothing, their throughput says everything. A ``Score`` names where that figure is printed
and which direction is better, so the harness can treat it with the same statistics as time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCORE_GROUP = "score"  # the named group a score pattern must have


@dataclass(frozen=True)
class Score:
    """How to read one number from a program's output, and which way is better."""

    pattern: str  # a regular expression with a named group "score"; the last match in the output counts
    unit: str  # what the number measures, e.g. "requests/s" or "s"
    higher_is_better: bool
    stream: str = "stdout"  # "stdout" or "stderr": where the program prints it

    def __post_init__(self) -> None:
        compiled = re.compile(self.pattern, re.MULTILINE)
        if SCORE_GROUP not in compiled.groupindex:
            raise ValueError(f"score pattern {self.pattern!r} has no named group (?P<{SCORE_GROUP}>...)")
        if self.stream not in ("stdout", "stderr"):
            raise ValueError(f"score stream must be 'stdout' or 'stderr', not {self.stream!r}")

    def parse(self, text: str) -> float | None:
        """The value of the last match in ``text``, or None when the program printed none."""
        matches = list(re.finditer(self.pattern, text, re.MULTILINE))
        if not matches:
            return None
        try:
            return float(matches[-1].group(SCORE_GROUP).replace(",", ""))
        except ValueError:
            return None
