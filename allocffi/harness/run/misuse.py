"""Signs that a run did not do the work it was meant to: warnings, never failures.

A program given the wrong arguments, or waiting for input on a stdin that is /dev/null, often prints
its usage and exits at once, with status 0 for some. Its row would then compare allocators on
nothing. These checks flag such a run on its row and in the report; they do not fail it, because a
program may be quick or print "usage:" on purpose.

- ``TOO_FAST_S``: a whole program that ends in under 20 ms has barely started (``/bin/true`` under
  the probe takes ~1 ms; an interpreter's start-up alone is more than 20 ms).
- ``FAR_FASTER``: one repeat under a fifth of the median of the same row's other repeats did
  something else (a missing input on that run, a crash that still exited 0).
- ``USAGE_LINE``: a line of stderr that starts with "usage:" (any case), how getopt-style programs
  and argparse say they were called wrongly.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

TOO_FAST_S = 0.020
FAR_FASTER = 5.0
USAGE_LINE = re.compile(r"^\s*usage:", re.IGNORECASE | re.MULTILINE)


def run_warnings(wall_s: float, stderr_text: str, stdin_path: str | None) -> list[str]:
    """What looks wrong with one run on its own."""
    warnings = []
    stdin = f"stdin was {stdin_path}" if stdin_path else "stdin was /dev/null (give input with --stdin FILE)"
    if wall_s < TOO_FAST_S:
        warnings.append(
            f"likely misuse: finished in {wall_s * 1000:.1f} ms (< {TOO_FAST_S * 1000:.0f} ms): "
            f"check its arguments; {stdin}"
        )
    match = USAGE_LINE.search(stderr_text)
    if match is not None:
        line = stderr_text[match.start() :].strip().splitlines()[0][:120]
        warnings.append(f"likely misuse: printed a usage line to stderr ({line!r}); {stdin}")
    return warnings


def outlier_repeats(walls: Sequence[float]) -> list[int]:
    """Indexes of the repeats far faster than the median of the others (needs 3 repeats or more)."""
    if len(walls) < 3:
        return []
    fast = []
    for i, wall in enumerate(walls):
        others = statistics.median([w for j, w in enumerate(walls) if j != i])
        if wall * FAR_FASTER < others:
            fast.append(i)
    return fast
