"""``allocffi list``: every allocator with whether it can run here, every workload with what it does."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from allocffi.harness.bench import catalog
from allocffi.harness.core import children
from allocffi.harness.core.errors import EXIT_OK


def list_capabilities(out: TextIO | None = None) -> int:
    """``allocffi list``: allocators with availability, workloads with descriptions."""
    out = out or sys.stdout
    caps = children.probe()
    print("Allocators:", file=out)
    notes: Mapping[str, str] = {
        catalog.MMAP: f"baseline, runs only on {', '.join(sorted(catalog.MMAP_WORKLOADS))}",
        catalog.NULL: "engine overhead, runs once per workload",
        catalog.BASELINE: "the reference for speedups",
    }
    names = [*catalog.SELECTABLE, catalog.NULL]
    for competitor in caps.competitors:  # each NAME+reset right after NAME
        base, mode = catalog.split_competitor(competitor)
        if mode is not None:
            names.insert(names.index(base) + 1, competitor)
            notes = {
                **notes,
                base: "free mode: frees every block",
                competitor: "arena mode: no frees, one reset per phase",
            }
    width = max(len(n) for n in names)
    for name in names:
        ok = caps.available.get(name, False)
        state = "available" if ok else f"UNAVAILABLE: {caps.reasons.get(name, '')}"
        note = f" ({notes[name]})" if name in notes else ""
        print(f"  {name.ljust(width)}  {state}{note}", file=out)
    print("Workloads:", file=out)
    width = max((len(n) for n in caps.workloads), default=0)
    for name, description in caps.workloads.items():
        print(f"  {name.ljust(width)}  {description}", file=out)
    print(
        f"  threads-N and shared-threads-N run for any 1 <= N <= {catalog.MAX_THREADS}; "
        "your own workloads: allocffi bench --workload-file FILE.toml",
        file=out,
    )
    return EXIT_OK


__all__ = ["list_capabilities"]
