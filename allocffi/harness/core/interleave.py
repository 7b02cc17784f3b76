"""The order of the competitors in each repeat: the one interleaving every command uses.

Every command runs all its competitors once per repeat, back to back, rather than all repeats of
one then all of the next: a slow minute of a shared machine then lands on every competitor instead
of on one. Within a repeat the order rotates by one place from repeat to repeat (A B C, B C A,
C A B, ...), so no competitor always runs first, just after a cold start, or just after another
that leaves the caches or the page allocator in some state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def rotated(members: Sequence[T], repeat: int) -> list[T]:
    """``members`` in the order of repeat number ``repeat`` (0-based): rotated by one each repeat."""
    if not members:
        return []
    shift = repeat % len(members)
    return [*members[shift:], *members[:shift]]
