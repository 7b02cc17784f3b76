"""Trace capture and replay: record a program's allocations, replay them in C on every allocator.

``allocffi trace record`` runs a command with the capture library preloaded (``capture``),
``allocffi trace info`` summarises a trace (``info``), ``allocffi trace replay`` replays it in the
benchmark engine in fresh processes (``replay``), ``allocffi trace import memray`` converts a
memray capture (``memray_import``). The file format is documented in docs/trace-format.md.
"""

from allocffi.harness.trace.native import CALLS, TraceError

__all__ = ["CALLS", "TraceError"]
