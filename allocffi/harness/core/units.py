"""Number formatting shared by the terminal and the report files."""

from __future__ import annotations


def ns(value: float | None) -> str:
    """ns/op with about three significant digits: 1.23, 12.3, 123, 12,345."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def speedup(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    if value >= 0.1:
        return f"{value:.2f}x"
    return f"{value:.2g}x"  # 0.0023x: far slower than glibc still shows how far


def size(value: float | None) -> str:
    """Bytes in binary units; negative values (an RSS that shrank) keep their sign."""
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    amount = abs(float(value))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{sign}{amount:.0f} {unit}" if unit == "B" else f"{sign}{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
