"""Helpers shared by the tests: content patterns written into blocks and checked later."""

from __future__ import annotations

import random

import allocffi


def pattern(seed: int, size: int) -> bytes:
    """`size` pseudo-random bytes determined by `seed` (distinct blocks get distinct contents)."""
    return random.Random(seed).randbytes(size)


def fill(block: allocffi.Block, seed: int) -> bytes:
    """Write pattern(seed) over the whole block; return what was written."""
    data = pattern(seed, block.size)
    with block.view() as view:
        view[:] = data
    return data


def check(block: allocffi.Block, expected: bytes) -> None:
    """Assert the block still holds `expected` (bytes(block) goes through the buffer protocol)."""
    actual = bytes(block)
    assert len(actual) == len(expected)
    if actual != expected:
        first = next(i for i, (a, b) in enumerate(zip(actual, expected, strict=True)) if a != b)
        raise AssertionError(f"{block!r}: contents differ first at byte {first}")
