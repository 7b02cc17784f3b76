"""``allocffi trace info``: what a trace holds, as text or JSON.

The numbers come from one validating pass in C (af_trace_summarize). For a recording of several
processes the top level adds them up (counts, threads, bytes, frees); peaks are per process (each
has its own heap), so the top-level peaks are the largest process's, and ``processes`` carries
every process's own summary.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from allocffi.harness.core import units
from allocffi.harness.trace import files, native

SUMMED = (
    "events",
    "threads",
    "objects",
    "bytes_requested",
    "frees",
    "unknown_frees",
    "null_frees",
    "cross_thread_frees",
    "lost_events",
    "live_blocks_at_end",
    "live_bytes_at_end",
    "file_bytes",
)
PEAKS = ("peak_live_bytes", "peak_live_blocks", "program_peak_live_bytes")


def _buckets(counts: Sequence[int]) -> list[dict[str, int]]:
    """Non-empty histogram buckets as {low, high, count}: bucket 0 is [0, 0], bucket i [2^(i-1), 2^i - 1]."""
    out = []
    for i, n in enumerate(counts):
        if n:
            low, high = (0, 0) if i == 0 else (1 << (i - 1), (1 << i) - 1)
            out.append({"low": low, "high": high, "count": n})
    return out


def _by_call(values: Sequence[int]) -> dict[str, int]:
    return dict(zip(native.CALLS, values, strict=True))


def process_summary(path: Path) -> dict[str, Any]:
    """One trace file's summary, JSON-ready."""
    s = native.summarize(path)
    events = s["events"]
    known = s["frees"]
    return {
        "file": str(path),
        "pid": s["pid"],
        "ppid": s["ppid"],
        "command": s["command"],
        "start_time": datetime.datetime.fromtimestamp(
            s["start_unix_ns"] / 1e9, datetime.timezone.utc
        ).isoformat(),
        "format_version": s["version"],
        "events": events,
        "counts": _by_call(s["calls"]),
        "failed": _by_call(s["failed"]),
        "runtime_calls": _by_call(s["runtime_calls"]),
        "threads": s["threads"],
        "objects": s["objects"],
        "bytes_requested": s["bytes_requested"],
        "peak_live_bytes": s["peak_live_bytes"],
        "peak_live_blocks": s["peak_live_blocks"],
        "program_peak_live_bytes": s["program_peak_live_bytes"],
        "live_blocks_at_end": s["live_blocks_at_end"],
        "live_bytes_at_end": s["live_bytes_at_end"],
        "frees": known,
        "unknown_frees": s["unknown_frees"],
        "null_frees": s["null_frees"],
        "cross_thread_frees": s["cross_thread_frees"],
        "cross_thread_free_share": s["cross_thread_frees"] / known if known else 0.0,
        "lost_events": s["lost_events"],
        "max_align": s["max_align"],
        "size_histogram": _buckets(s["size_histogram"]),
        "lifetime_histogram": _buckets(s["lifetime_histogram"]),
        "file_bytes": s["file_bytes"],
        "bytes_per_event": s["file_bytes"] / events if events else 0.0,
    }


def _merge_histograms(parts: Sequence[Sequence[dict[str, int]]]) -> list[dict[str, int]]:
    merged: dict[tuple[int, int], int] = {}
    for part in parts:
        for b in part:
            merged[(b["low"], b["high"])] = merged.get((b["low"], b["high"]), 0) + b["count"]
    return [{"low": lo, "high": hi, "count": n} for (lo, hi), n in sorted(merged.items())]


def summary(path: str | Path) -> dict[str, Any]:
    """The JSON of ``trace info``: totals over the processes plus each process."""
    procs = [process_summary(p) for p in files.resolve(path)]
    total: dict[str, Any] = {"trace": str(path)}
    for key in SUMMED:
        total[key] = sum(p[key] for p in procs)
    for key in PEAKS:
        total[key] = max(p[key] for p in procs)
    for key in ("counts", "failed", "runtime_calls"):
        total[key] = {c: sum(p[key][c] for p in procs) for c in native.CALLS}
    total["cross_thread_free_share"] = total["cross_thread_frees"] / total["frees"] if total["frees"] else 0.0
    total["bytes_per_event"] = total["file_bytes"] / total["events"] if total["events"] else 0.0
    total["size_histogram"] = _merge_histograms([p["size_histogram"] for p in procs])
    total["lifetime_histogram"] = _merge_histograms([p["lifetime_histogram"] for p in procs])
    total["processes"] = procs
    return total


def _bar(n: int, most: int, width: int = 30) -> str:
    return "#" * max(1, round(width * n / most)) if most else ""


def _histogram_lines(title: str, buckets: Sequence[dict[str, int]], unit: str) -> list[str]:
    lines = [title]
    if not buckets:
        return [*lines, "  (none)"]
    most = max(b["count"] for b in buckets)
    for b in buckets:
        span = f"{b['low']}" if b["low"] == b["high"] else f"{b['low']}-{b['high']}"
        lines.append(f"  {span:>21} {unit:<6} {b['count']:>12,}  {_bar(b['count'], most)}")
    return lines


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0%"


def to_text(info: dict[str, Any]) -> str:
    """The human-readable ``trace info``."""
    lines = []
    procs = info["processes"]
    lines.append(f"processes: {len(procs)}")
    for p in procs:
        command = " ".join(p["command"]) or "?"
        lines.append(
            f"  pid {p['pid']} (parent {p['ppid']}), {p['events']:,} calls, {p['threads']} thread(s), "
            f"started {p['start_time']}: {command[:100]}"
        )
        lines.append(f"    file {p['file']}")
    events = info["events"]
    lines.append(
        f"calls: {events:,} in {units.size(info['file_bytes'])} on disk "
        f"({info['bytes_per_event']:.2f} bytes/call); threads: {info['threads']}"
    )
    if info["lost_events"]:
        lines.append(f"LOST: {info['lost_events']:,} calls (a thread was killed before it wrote them)")
    lines.append(f"  {'call':<16}{'count':>14}{'failed':>10}{'by libc/loader':>16}")
    for call in native.CALLS:
        n = info["counts"][call]
        if n:
            lines.append(f"  {call:<16}{n:>14,}{info['failed'][call]:>10,}{info['runtime_calls'][call]:>16,}")
    runtime = sum(info["runtime_calls"].values())
    lines.append(
        f"  ({runtime:,} of the calls were made by libc or the dynamic loader itself, not by the program)"
    )
    lines.append(f"bytes requested: {units.size(info['bytes_requested'])} ({info['bytes_requested']:,} B)")
    lines.append(
        f"peak live: {units.size(info['peak_live_bytes'])} ({info['peak_live_bytes']:,} B) in "
        f"{info['peak_live_blocks']:,} blocks "
        f"(the program's own blocks: {info['program_peak_live_bytes']:,} B)"
    )
    lines.append(
        f"never freed: {info['live_blocks_at_end']:,} blocks, {units.size(info['live_bytes_at_end'])}"
    )
    lines.append(
        f"frees: {info['frees']:,} of known blocks; from another thread: {info['cross_thread_frees']:,} "
        f"({_percent(info['cross_thread_frees'], info['frees'])}); free(NULL): {info['null_frees']:,}"
    )
    lines.append(
        f"unknown frees: {info['unknown_frees']:,} (pointers allocated before capture started, "
        "e.g. by the dynamic loader, or inherited across fork)"
    )
    lines += _histogram_lines("size histogram (bytes):", info["size_histogram"], "B")
    lines += _histogram_lines(
        "lifetime histogram (calls between allocation and release):", info["lifetime_histogram"], "calls"
    )
    return "\n".join(lines) + "\n"
