"""Helpers shared by the tests: block contents written and checked later; the CLI run in-process."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

import allocffi
from allocffi.harness import cli


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


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `allocffi ARGV` in this process: its exit status, standard output and standard error."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of an `allocffi run` results record: each cell's row as that command shows it."""
    return [cell["details"]["run"] for cell in data["results"]]


def run_programs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The programs of an `allocffi run` results record, as they were run."""
    programs: list[dict[str, Any]] = data["details"]["run"]["programs"]
    return programs


def write_json(tmp_path: Path, name: str, data: Any) -> str:
    """``data`` as the JSON file ``tmp_path/name``; its path."""
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)
