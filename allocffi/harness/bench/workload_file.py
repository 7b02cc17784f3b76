"""A user's own workloads: ``allocffi bench --workload-file FILE``.

A workload file is TOML with one or more ``[[workload]]`` tables::

    [[workload]]
    name = "parser-nodes"        # letters, digits, . _ -; not a built-in name
    kernel = "replace"           # pairs | replace | burst | pressure
    live = 4096                  # replace only: slots held
    phase = 65536                # ops per phase (default 1000)
    touch = "ends"               # ends | pages | all (default ends)
    threads = 2                  # optional: N threads, one allocator instance each
    ops = 500000                 # optional: ops per run (else --ops, else calibrated)
    sizes = [
      { size = 48, weight = 6 },
      { min = 64, max = 256, weight = 3 },
      { lognormal = { median = 2048, sigma = 1.2 }, min = 512, max = 65536, weight = 1 },
    ]

FILE may also be a report saved by ``allocffi bench --json``: its
``config.workload_specs`` (every spec it ran, as normalised here) run again.

Invariants:
- The checks here mirror the engine's (csrc/engine/spec.c, limits in
  allocffi.h), which refuses a bad spec on its own; here they become one line
  naming the file, the table (``workload[i]``, counted from 0) and the key.
- ``WorkloadSpec.to_dict`` is the normalised TOML form: loading it again
  gives the same spec, which is how a report repeats its own runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allocffi.harness.bench import catalog
from allocffi.harness.core import inputs
from allocffi.harness.core.arguments import MAX_OPS
from allocffi.harness.core.errors import UsageError

# The engine's limits (afbench.h AF_SPEC_*, AF_KERNEL_*, AF_TOUCH_*).
KERNELS: tuple[str, ...] = ("pairs", "replace", "burst", "pressure")  # index = AF_KERNEL_*
TOUCH_POLICIES: tuple[str, ...] = catalog.TOUCH_POLICIES  # index = AF_TOUCH_*
MIN_SIZE = 8
MAX_SIZE = 1 << 30
MAX_ENTRIES = 256
MAX_LIVE = 1 << 24
MAX_PHASE = 1 << 24
MAX_THREADS = 256
MAX_NAME = 64
MAX_SIGMA = 10.0
DEFAULT_PHASE = 1000
DEFAULT_TOUCH = "ends"

# The name goes on worker command lines and into reports: never one read as an option (--help)
# or a hidden file (.x), hence a letter or digit first.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_WORKLOAD_KEYS = frozenset({"name", "kernel", "sizes", "live", "phase", "touch", "threads", "ops"})
_SIZE_KEYS = frozenset({"size", "min", "max", "lognormal", "weight"})
_LOGNORMAL_KEYS = frozenset({"median", "sigma"})


class WorkloadFileError(UsageError):
    """A workload file that cannot be used: says where and what."""


@dataclass(frozen=True)
class SizeEntry:
    """One entry of a size distribution (af_size_entry)."""

    min: int
    max: int
    weight: float = 1.0
    median: float | None = None  # log-normal truncated to [min, max]; None: uniform
    sigma: float | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.median is not None:
            out: dict[str, Any] = {"lognormal": {"median": self.median, "sigma": self.sigma}}
            out.update(min=self.min, max=self.max)
        elif self.min == self.max:
            out = {"size": self.min}
        else:
            out = {"min": self.min, "max": self.max}
        out["weight"] = self.weight
        return out


@dataclass(frozen=True)
class WorkloadSpec:
    """One ``[[workload]]`` table, checked (af_workload_spec plus ops)."""

    name: str
    kernel: str
    sizes: tuple[SizeEntry, ...]
    phase: int = DEFAULT_PHASE
    touch: str = DEFAULT_TOUCH
    live: int | None = None  # replace only
    threads: int | None = None  # None: the calling thread
    ops: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kernel": self.kernel}
        if self.live is not None:
            out["live"] = self.live
        out.update(phase=self.phase, touch=self.touch)
        if self.threads is not None:
            out["threads"] = self.threads
        if self.ops is not None:
            out["ops"] = self.ops
        out["sizes"] = [s.to_dict() for s in self.sizes]
        return out

    def to_json(self) -> str:
        """What the harness hands the worker (one line, keys sorted)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------
# Checking one table
# --------------------------------------------------------------------------


class _Where:
    """Formats errors as ``FILE: workload[i] ("name"): key: problem``."""

    def __init__(self, source: str, index: int, table: Mapping[str, Any]) -> None:
        name = table.get("name")
        shown = f' ("{name}")' if isinstance(name, str) and name else ""
        self.prefix = f"{source}: workload[{index}]{shown}"

    def error(self, key: str, problem: str) -> WorkloadFileError:
        return WorkloadFileError(f"{self.prefix}: {key}: {problem}")


def _integer(where: _Where, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(key, f"must be an integer (got {type(value).__name__} {value!r})")
    if not low <= value <= high:
        raise where.error(key, f"must be in [{low}, {high}] (got {value})")
    return value


def _number(where: _Where, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(key, f"must be a number (got {type(value).__name__} {value!r})")
    if not math.isfinite(value):
        raise where.error(key, f"must be finite (got {value})")
    return float(value)


def _unknown_keys(where: _Where, key: str, table: Mapping[str, Any], allowed: Collection[str]) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise where.error(
            f"{key}{unknown[0]}" if key else unknown[0],
            f"unknown key (allowed: {', '.join(sorted(allowed))})",
        )


def _size_entry(where: _Where, index: int, entry: Any) -> SizeEntry:
    key = f"sizes[{index}]"
    if not isinstance(entry, Mapping):
        raise where.error(key, f"must be a table such as {{size = 64}} (got {type(entry).__name__})")
    _unknown_keys(where, f"{key}.", entry, _SIZE_KEYS)
    weight = _number(where, f"{key}.weight", entry.get("weight", 1.0))
    if weight < 0:
        raise where.error(f"{key}.weight", f"must not be negative (got {entry['weight']})")
    if "size" in entry:
        extra = sorted({"min", "max", "lognormal"} & set(entry))
        if extra:
            raise where.error(f"{key}.{extra[0]}", "not allowed with size (a fixed size has no range)")
        size = _integer(where, f"{key}.size", entry["size"], MIN_SIZE, MAX_SIZE)
        return SizeEntry(size, size, weight)
    for bound in ("min", "max"):
        if bound not in entry:
            raise where.error(f"{key}.{bound}", "missing (give size = N, or min and max)")
    low = _integer(where, f"{key}.min", entry["min"], MIN_SIZE, MAX_SIZE)
    high = _integer(where, f"{key}.max", entry["max"], MIN_SIZE, MAX_SIZE)
    if low > high:
        raise where.error(f"{key}.min", f"min {low} > max {high}")
    if "lognormal" not in entry:
        return SizeEntry(low, high, weight)
    shape = entry["lognormal"]
    if not isinstance(shape, Mapping):
        raise where.error(f"{key}.lognormal", "must be a table {median = M, sigma = S}")
    _unknown_keys(where, f"{key}.lognormal.", shape, _LOGNORMAL_KEYS)
    for field in ("median", "sigma"):
        if field not in shape:
            raise where.error(f"{key}.lognormal.{field}", "missing")
    median = _number(where, f"{key}.lognormal.median", shape["median"])
    sigma = _number(where, f"{key}.lognormal.sigma", shape["sigma"])
    if not low <= median <= high:
        raise where.error(
            f"{key}.lognormal.median", f"must lie in [min, max] = [{low}, {high}] (got {median})"
        )
    if not 0 < sigma <= MAX_SIGMA:
        raise where.error(f"{key}.lognormal.sigma", f"must be in (0, {MAX_SIGMA:g}] (got {sigma:g})")
    return SizeEntry(low, high, weight, median, sigma)


def check_table(source: str, index: int, table: Any) -> WorkloadSpec:
    """One ``[[workload]]`` table as a spec, or WorkloadFileError."""
    if not isinstance(table, Mapping):
        raise WorkloadFileError(f"{source}: workload[{index}]: must be a table (got {type(table).__name__})")
    where = _Where(source, index, table)
    _unknown_keys(where, "", table, _WORKLOAD_KEYS)
    for key in ("name", "kernel", "sizes"):
        if key not in table:
            raise where.error(key, "missing (every [[workload]] needs name, kernel and sizes)")
    name = table["name"]
    if not isinstance(name, str):
        raise where.error("name", f"must be a string (got {type(name).__name__})")
    if not 1 <= len(name) <= MAX_NAME or not _NAME.fullmatch(name):
        raise where.error(
            "name",
            f"must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit "
            f"(got {name!r})",
        )
    kernel = table["kernel"]
    if kernel not in KERNELS:
        raise where.error("kernel", f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    touch = table.get("touch", DEFAULT_TOUCH)
    if touch not in TOUCH_POLICIES:
        raise where.error("touch", f"unknown touch policy {touch!r}; choose from {', '.join(TOUCH_POLICIES)}")
    sizes = table["sizes"]
    if not isinstance(sizes, list) or not 1 <= len(sizes) <= MAX_ENTRIES:
        raise where.error("sizes", f"must be a list of 1 to {MAX_ENTRIES} entries such as [{{size = 64}}]")
    entries = tuple(_size_entry(where, i, entry) for i, entry in enumerate(sizes))
    total = sum(e.weight for e in entries)  # summed in order, as the engine does
    if not math.isfinite(total):
        raise where.error("sizes", f"the weights add up to {total}: weights are relative, use smaller ones")
    if not total > 0:
        raise where.error("sizes", "the weights add up to 0: at least one entry needs a weight > 0")
    live = None
    if kernel == "replace":
        if "live" not in table:
            raise where.error("live", "missing (kernel replace needs the number of slots it holds)")
        live = _integer(where, "live", table["live"], 1, MAX_LIVE)
    elif "live" in table:
        raise where.error("live", f"only kernel replace holds live slots (this is kernel {kernel})")
    phase = _integer(where, "phase", table.get("phase", DEFAULT_PHASE), 1, MAX_PHASE)
    threads = _integer(where, "threads", table["threads"], 1, MAX_THREADS) if "threads" in table else None
    ops = _integer(where, "ops", table["ops"], 1, MAX_OPS) if "ops" in table else None
    return WorkloadSpec(name, kernel, entries, phase, touch, live, threads, ops)


def check_tables(source: str, tables: Sequence[Any], reserved: Collection[str] = ()) -> list[WorkloadSpec]:
    """Every table checked; names unique and clear of the built-in workloads."""
    specs: list[WorkloadSpec] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(tables):
        spec = check_table(source, index, table)
        if spec.name in seen:
            where = _Where(source, index, table)
            raise where.error("name", f"{spec.name!r} is already the name of workload[{seen[spec.name]}]")
        seen[spec.name] = index
        specs.append(spec)
    check_names(source, specs, reserved)
    return specs


def check_names(source: str, specs: Sequence[WorkloadSpec], reserved: Collection[str]) -> None:
    """WorkloadFileError for a spec named like a built-in workload (``reserved``, or [shared-]threads-N)."""
    for index, spec in enumerate(specs):
        if spec.name in reserved or catalog.thread_count(spec.name) is not None:
            where = _Where(source, index, {"name": spec.name})
            raise where.error("name", f"{spec.name!r} is a built-in workload: choose another name")


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _tables_of_report(source: str, data: Any) -> list[Any]:
    if not isinstance(data, Mapping):
        data = {}
    # a results record keeps the config under its command; a bench report of schema /1 or /2 at the top
    command = data.get("command")
    config = command.get("config") if isinstance(command, Mapping) else data.get("config")
    specs = config.get("workload_specs") if isinstance(config, Mapping) else None
    if not isinstance(specs, list) or not specs:
        raise WorkloadFileError(
            f"{source}: a JSON file must be a report of `allocffi bench --json` that ran a workload file "
            "(config.workload_specs is missing or empty)"
        )
    return specs


def load(path: str | Path, reserved: Collection[str] = ()) -> list[WorkloadSpec]:
    """The specs of a TOML workload file or of a saved JSON report."""
    source = inputs.shown(path)
    text = inputs.read_user_text(path, "workload file", inputs.MAX_TEXT_BYTES)
    if str(path).endswith(".json") or text.lstrip().startswith("{"):
        return check_tables(source, _tables_of_report(source, inputs.parse_json(text, source)), reserved)
    document = inputs.parse_toml(text, source)
    unknown = sorted(set(document) - {"workload"})
    if unknown:
        raise WorkloadFileError(f"{source}: {unknown[0]}: unknown top-level key (only [[workload]] tables)")
    found = document.get("workload")
    if not isinstance(found, list) or not found:
        raise WorkloadFileError(f"{source}: workload: missing (add at least one [[workload]] table)")
    return check_tables(source, found, reserved)


def from_json(text: str) -> WorkloadSpec:
    """The spec the harness handed a worker (see WorkloadSpec.to_json)."""
    return check_table("--workload-spec", 0, json.loads(text))


__all__ = [
    "KERNELS",
    "SizeEntry",
    "WorkloadFileError",
    "WorkloadSpec",
    "check_names",
    "check_tables",
    "from_json",
    "load",
]
