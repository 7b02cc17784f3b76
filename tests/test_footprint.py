"""stats() of a system allocator carries its library's own figures; unknown ones are None."""

from __future__ import annotations

import pytest

import allocffi
from allocffi.footprint import FOOTPRINT_FIELDS
from tests.conftest import ensure_available

SYSTEM = ("libc", "mimalloc", "jemalloc", "tcmalloc", "mimalloc-heap", "jemalloc-arena")
# What each library can tell (csrc/footprint.c); every other field must be None.
KNOWN = {
    "libc": {"allocated_bytes", "mapped_bytes"},
    "mimalloc": {"mapped_bytes", "peak_mapped_bytes", "process_peak_resident_bytes"},
    "jemalloc": {"allocated_bytes", "active_bytes", "resident_bytes", "mapped_bytes"},
    "tcmalloc": {"allocated_bytes", "resident_bytes", "mapped_bytes"},
}
KNOWN["mimalloc-heap"] = KNOWN["mimalloc"]
KNOWN["jemalloc-arena"] = KNOWN["jemalloc"]
BIG = 16 << 20


@pytest.mark.parametrize("name", SYSTEM)
def test_system_stats_have_the_library_figures_and_none_where_unknown(name: str) -> None:
    ensure_available(name)
    with allocffi.open(name) as a:
        before = a.stats()
        block = a.alloc(BIG)
        block.view()[:] = b"\x01" * BIG  # touched: the library must have the pages
        after = a.stats()
        block.free()
    assert before["os_bytes"] is None and after["os_bytes"] is None
    footprint = after["footprint"]
    assert set(footprint) == set(FOOTPRINT_FIELDS)
    for field, value in footprint.items():
        if field in KNOWN[name]:
            assert isinstance(value, int) and value > 0, (field, value)
        else:
            assert value is None, (field, value)
    if "allocated_bytes" in KNOWN[name]:
        assert footprint["allocated_bytes"] >= before["footprint"]["allocated_bytes"] + BIG
    else:
        assert footprint["mapped_bytes"] >= BIG  # mimalloc commits whole segments ahead
    # allocffi's own counters stay: they count requested bytes
    assert after["bytes_in_use"] == BIG and after["peak_bytes_in_use"] >= BIG


@pytest.mark.parametrize("name", ["bump", "slab", "large"])
def test_our_allocators_count_their_own_mappings(name: str) -> None:
    with allocffi.open(name) as a:
        a.alloc(1 << 20)
        stats = a.stats()
    assert "footprint" not in stats
    assert isinstance(stats["os_bytes"], int) and stats["os_bytes"] >= 1 << 20
