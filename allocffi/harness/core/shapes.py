"""The shape of a JSON document read back from a file, checked with errors that name the field.

A shape is built from a few constructors and checked with ``check(value, shape, where)``; the
first mismatch is a ``UsageError`` such as
``run.json: results[3].ns_per_op: expected a finite number >= 0 (got 'fast')``.
Shapes test in place and return the value (records as a plain dict), so ``check`` both
validates and hands back what the reader may use without further type checks.

- ``TEXT``, ``FLAG``, ``COUNT`` (an int >= 0), ``INTEGER``, ``SIZE`` (a finite number >= 0),
  ``POSITIVE`` (a finite number > 0), ``NUMBER`` (any finite number), ``ANY``;
- ``optional(shape)`` also takes null; ``one_of(a, b)`` either shape;
- ``list_of(shape)``, ``map_of(shape)`` (a JSON object with text keys), and
  ``record({"field": shape}, required=(...))``: an object whose listed fields have these shapes
  (fields not listed are kept unchecked, for readers of older or newer files).

Invariant: a value that passes has exactly the Python types its shape promises, so the code
that reads it (formatting, arithmetic, sorting, hashing) cannot fail on a type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from allocffi.harness.core.errors import UsageError

_SHOWN = 40  # characters of a bad value shown in a message


@dataclass(frozen=True)
class Shape:
    """What a value must be: ``test`` says whether it is, ``expected`` says so to the user."""

    expected: str
    test: Callable[[Any, str], Any]  # (value, where) -> value or raise


def _fail(where: str, expected: str, value: Any) -> UsageError:
    shown = "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else repr(value)
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + "..."
    return UsageError(f"{where or 'the top level'}: expected {expected} (got {shown})")


def _field(where: str, name: object) -> str:
    return f"{where}.{name}" if where else str(name)


def _scalar(expected: str, accept: Callable[[Any], bool]) -> Shape:
    def test(value: Any, where: str) -> Any:
        if not accept(value):
            raise _fail(where, expected, value)
        return value

    return Shape(expected, test)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


TEXT = _scalar("text", lambda v: isinstance(v, str))
FLAG = _scalar("true or false", lambda v: isinstance(v, bool))
INTEGER = _scalar("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool))
COUNT = _scalar("an integer >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0)
NUMBER = _scalar("a finite number", _is_number)
SIZE = _scalar("a finite number >= 0", lambda v: _is_number(v) and v >= 0)
POSITIVE = _scalar("a finite number > 0", lambda v: _is_number(v) and v > 0)
ANY = _scalar("anything", lambda v: True)


def optional(shape: Shape) -> Shape:
    def test(value: Any, where: str) -> Any:
        return None if value is None else shape.test(value, where)

    return Shape(f"{shape.expected} or null", test)


def one_of(*shapes: Shape) -> Shape:
    expected = " or ".join(s.expected for s in shapes)

    def test(value: Any, where: str) -> Any:
        for shape in shapes:
            try:
                return shape.test(value, where)
            except UsageError:
                continue
        raise _fail(where, expected, value)

    return Shape(expected, test)


def list_of(shape: Shape) -> Shape:
    def test(value: Any, where: str) -> Any:
        if not isinstance(value, list):
            raise _fail(where, f"a list of {shape.expected}", value)
        return [shape.test(item, f"{where}[{i}]") for i, item in enumerate(value)]

    return Shape(f"a list of {shape.expected}", test)


def map_of(shape: Shape) -> Shape:
    def test(value: Any, where: str) -> Any:
        if not isinstance(value, Mapping):
            raise _fail(where, f"an object of {shape.expected}", value)
        return {str(k): shape.test(v, _field(where, k)) for k, v in value.items()}

    return Shape(f"an object of {shape.expected}", test)


def record(fields: Mapping[str, Shape], required: Collection[str] = ()) -> Shape:
    def test(value: Any, where: str) -> Any:
        if not isinstance(value, Mapping):
            raise _fail(where, "an object", value)
        for name in required:
            if name not in value:
                raise UsageError(f"{_field(where, name)}: missing")
        checked = dict(value)
        for name, shape in fields.items():
            if name in value:
                checked[name] = shape.test(value[name], _field(where, name))
        return checked

    return Shape("an object", test)


def check(value: Any, shape: Shape, source: str) -> Any:
    """``value`` when it has ``shape``; else a UsageError naming ``source`` and the field."""
    try:
        return shape.test(value, "")
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from exc


__all__ = [
    "ANY",
    "COUNT",
    "FLAG",
    "INTEGER",
    "NUMBER",
    "POSITIVE",
    "SIZE",
    "TEXT",
    "Shape",
    "check",
    "list_of",
    "map_of",
    "one_of",
    "optional",
    "record",
]
