"""The error table (allocffi/errors.py) against the C side, and the messages a user reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import allocffi
from allocffi import _safe, errors
from allocffi._native import lib

HEADER = Path(__file__).resolve().parent.parent / "csrc" / "include" / "allocffi.h"


def test_every_status_of_the_header_is_in_the_table_with_its_value() -> None:
    statuses = dict(re.findall(r"\b(AF_ERR_[A-Z_]+) = (\d+)", HEADER.read_text()))
    assert statuses, "no AF_ERR_* found in allocffi.h"
    for name, value in statuses.items():
        assert getattr(errors, name) == int(value) == getattr(lib, name), name
        assert int(value) in errors._TABLE, f"{name} has no entry in the error table"
    table_statuses = {code for code in errors._TABLE if code < errors.REASON_NOT_AN_INT}
    assert table_statuses == {int(v) for v in statuses.values()}


def test_every_reason_of_the_safe_layer_is_in_the_table_with_its_value() -> None:
    reasons = {name: getattr(_safe, name) for name in dir(_safe) if name.startswith("REASON_")}
    assert len(reasons) >= 15
    for name, value in reasons.items():
        assert getattr(errors, name) == value, name
        if name != "REASON_STALE":
            assert value in errors._TABLE, f"{name} has no entry in the error table"
    for state in (_safe.FREED, _safe.RESET, _safe.CLOSED, _safe.MOVED):
        assert errors._TABLE[_safe.REASON_STALE + state][0] is errors.StaleBlockError
    python_only = {n for n in dir(errors) if n.startswith("REASON_")} - set(reasons)
    assert not python_only, f"reasons errors.py knows and the C layer does not: {python_only}"


def test_unknown_names_raise_an_allocffi_error() -> None:
    for call in (lambda: allocffi.open("nosuch"), lambda: allocffi.SystemAllocator("bump")):
        with pytest.raises(allocffi.AllocffiError) as info:
            call()
        assert isinstance(info.value, errors.UnknownAllocatorError) and isinstance(info.value, ValueError)
        assert "choose one of" in str(info.value)


def test_names_come_from_the_c_registry() -> None:
    names = [lib.af_registry_name(i) for i in range(lib.af_registry_count())]
    from allocffi._native import ffi

    decoded = [ffi.string(n).decode() for n in names]
    assert list(allocffi.ALLOCATOR_NAMES) == [n for n in decoded if n not in ("mmap", "null")]
    assert set(allocffi.SYSTEM_NAMES) < set(allocffi.ALLOCATOR_NAMES)
    assert lib.af_registry_name(lib.af_registry_count()) == ffi.NULL


def test_messages_name_the_operation_the_user_called() -> None:
    with allocffi.open("slab") as slab, allocffi.open("bump") as other:
        foreign = other.alloc(64)
        with pytest.raises(allocffi.ForeignBlockError, match=r"^put: "):
            slab.put(foreign)
        block, _ = slab.get(100)
        slab.put(block)
        with pytest.raises(allocffi.DoubleFreeError, match=r"^put: double free"):
            slab.put(block)
        with pytest.raises(allocffi.InvalidSizeError, match=r"^class_for: size must be >= 0"):
            slab.class_for(-1)
        with pytest.raises(allocffi.InvalidSizeError, match=r"^realloc: new_size must be >= 0"):
            slab.realloc(slab.alloc(8), -5)
        with pytest.raises(allocffi.InvalidAlignmentError, match=r"^alloc_many: align must be"):
            slab.alloc_many(2, 8, align=3)


@pytest.mark.parametrize("name", ["libc", "tcmalloc"])  # the ones that refuse 512 GiB at once
def test_out_of_memory_advice_fits_the_cause(name: str) -> None:
    from conftest import ensure_available

    ensure_available(name)
    with allocffi.open(name) as a, pytest.raises(allocffi.OutOfMemoryError) as info:
        a.alloc(512 << 30)  # 512 GiB: more than this machine has
    message = str(info.value)
    assert "larger than this machine's memory" in message or "RLIMIT_AS" in message, message
    assert "trim() and retry" not in message
    assert message.startswith(f"{name}: alloc(549755813888, align=16): ")


def test_out_of_memory_advice_names_the_address_space_limit() -> None:
    limit = errors._address_space_limit()
    message = errors._out_of_memory_advice((limit or 1 << 62) + 1)
    assert "RLIMIT_AS" in message if limit is not None else "machine's memory" in message
    assert errors._out_of_memory_advice(64) == "out of memory; free blocks or trim() and retry"


def test_help_shows_the_public_interface_only() -> None:
    text = str(allocffi.Allocator.__doc__) + str(allocffi.Allocator.alloc.__doc__)
    assert "inner" not in text and "keepalive" not in text
    import inspect

    assert str(inspect.signature(allocffi.Allocator.alloc)) == "(self, /, size, align=16)"
    assert str(inspect.signature(allocffi.Allocator.free)) == "(self, block, /)"
    assert "keepalive" not in str(inspect.signature(allocffi.SlabAllocator))
