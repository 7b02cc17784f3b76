"""The results record: what every command writes with ``--json``, and reads back.

One saved run is the unit (as in pyperf): ``allocffi compare`` and ``allocffi report`` read
records and never run anything. A record holds the machine, the command (name, argv, config),
the date, one cell per measured (subject, allocator[, variant]) with each quantity as raw
samples + unit + which direction is better, the verdicts of each cell against the baseline
allocator, the warnings and whether the run was interrupted. What only one command knows stays
under ``details`` (per record and per cell), named by that command. docs/results-format.md is
the documented schema; ``from_json`` is its one check.

Invariants: a record that ``from_json`` accepts has only finite numbers, non-negative samples,
strings where strings belong, a known schema and bounded sizes, so no reader needs a second
check; every refusal is a UsageError that names the field's path, e.g.
``results[3].metrics.ns_per_op.samples[2]: expected a finite number, got 'fast'``. Verdicts are
never trusted from a file: ``judge`` recomputes them from the samples.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from allocffi.harness.core import inputs, outputs, significance
from allocffi.harness.core.errors import UsageError

T = TypeVar("T")

SCHEMA = "allocffi-results/1"

LOWER = "lower"  # is better: time, memory, faults
HIGHER = "higher"  # is better: a program's own score, throughput
DIRECTIONS = (LOWER, HIGHER)

# Verdict labels of a cell against the baseline, in the metric's own direction.
BETTER = "better"
WORSE = "worse"
NO_CHANGE = significance.NO_CHANGE
TOO_FEW = significance.TOO_FEW
LABELS = (BETTER, WORSE, NO_CHANGE, TOO_FEW)
CONFIDENCE = 0.95

# Bounds on what a reader accepts: a record of the largest suite is well under these.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_CELLS = 100_000
MAX_SAMPLES = 100_000
MAX_TEXT = 4096  # characters of a name, unit or warning
MAX_DEPTH = 32  # nesting of details and config


# --------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------


@dataclass
class Metric:
    """One measured quantity of a cell: every repeat's value, in run order."""

    samples: list[float]
    unit: str  # "ns/op", "s", "B", "faults", "points", ...
    better: str = LOWER  # LOWER or HIGHER

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "better": self.better, "samples": list(self.samples)}


@dataclass(frozen=True)
class Verdict:
    """A cell's metric against the same metric of the baseline allocator's cell."""

    versus: str  # the baseline allocator
    ratio: float  # median(this) / median(baseline)
    low: float  # the bootstrap interval of ratio
    high: float
    p_value: float  # two-sided Mann-Whitney U
    label: str  # BETTER, WORSE (beyond noise, in the metric's direction), NO_CHANGE or TOO_FEW

    def to_json(self) -> dict[str, Any]:
        return {
            "versus": self.versus,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "label": self.label,
        }

    def describe(self) -> str:
        """E.g. "0.81x [0.78-0.85] better, p=0.008"."""
        p = f"p={self.p_value:.3f}" if self.p_value >= 0.001 else "p<0.001"
        return f"{_factor(self.ratio)} [{_factor(self.low)}-{_factor(self.high)}] {self.label}, {p}"


def _factor(x: float) -> str:
    return f"{x:.2f}x" if math.isfinite(x) else "inf"


@dataclass
class Cell:
    """One (subject, allocator[, variant]): its metrics, verdicts and the command's own details."""

    subject: str  # a workload, a program, a trace
    allocator: str
    metrics: dict[str, Metric]
    variant: str = ""  # what else tells two cells of one (subject, allocator) apart
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # metric name -> against the baseline
    details: dict[str, Any] = field(default_factory=dict)  # {command name: {...}}

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.subject, self.allocator, self.variant)

    @property
    def label(self) -> str:
        return "/".join(part for part in self.key if part)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "allocator": self.allocator,
            "variant": self.variant,
            "metrics": {name: m.to_json() for name, m in self.metrics.items()},
            "verdicts": {name: v.to_json() for name, v in self.verdicts.items()},
            "details": self.details,
        }


@dataclass
class Record:
    """Everything one command run measured."""

    command: str  # "bench", "run", "trace replay", "calibrate", "numpy-bench"
    argv: list[str]
    config: dict[str, Any]
    date: str  # ISO 8601 with offset
    machine: dict[str, Any]  # machine.describe()
    cells: list[Cell]
    baseline_allocator: str | None = None  # None: no cell is judged against another
    load: dict[str, Any] | None = None  # machine.LoadWatch.finish()
    warnings: list[str] = field(default_factory=list)
    partial: bool = False  # interrupted: only the runs completed before it
    details: dict[str, Any] = field(default_factory=dict)  # {command name: {...}}

    @property
    def allocators(self) -> list[str]:
        return list(dict.fromkeys(c.allocator for c in self.cells))

    @property
    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(name for c in self.cells for name in c.metrics))

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "command": {"name": self.command, "argv": list(self.argv), "config": self.config},
            "date": self.date,
            "machine": self.machine,
            "load": self.load,
            "baseline_allocator": self.baseline_allocator,
            "partial": self.partial,
            "warnings": list(self.warnings),
            "details": self.details,
            "results": [c.to_json() for c in self.cells],
        }


# --------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------


def verdict(
    base: Metric, cell: Metric, versus: str, noise_floor: float = significance.DEFAULT_NOISE_FLOOR
) -> Verdict:
    """``cell`` against ``base`` by significance.compare_samples, labelled in the metric's direction."""
    found = significance.compare_samples(
        base.samples, cell.samples, confidence=CONFIDENCE, noise_floor=noise_floor
    )
    label = directed_label(found, cell.better)
    return Verdict(versus, found.ratio, found.low, found.high, found.p_value, label)


def directed_label(found: significance.Verdict, better: str) -> str:
    """significance's label (faster: lower) said in the metric's direction: BETTER or WORSE."""
    lower = {significance.FASTER: True, significance.SLOWER: False}.get(found.label)
    if lower is None:
        return found.label
    return BETTER if lower == (better == LOWER) else WORSE


def judge(record: Record, baseline: str | None = None) -> None:
    """Fill every cell's verdicts against ``baseline`` (default: the record's) from the samples."""
    versus = baseline or record.baseline_allocator
    record.baseline_allocator = versus
    if versus is None:
        return
    reference = {(c.subject, c.variant): c for c in record.cells if c.allocator == versus}
    for cell in record.cells:
        cell.verdicts = {}
        base = reference.get((cell.subject, cell.variant))
        if base is None or base is cell:
            continue
        for name, metric in cell.metrics.items():
            if name in base.metrics and metric.samples and base.metrics[name].samples:
                cell.verdicts[name] = verdict(base.metrics[name], metric, versus)


# --------------------------------------------------------------------------
# Validation: one pass over the JSON, every field's type and range
# --------------------------------------------------------------------------


def _shown(value: Any) -> str:
    text = json.dumps(value)[:40] if not isinstance(value, float) else repr(value)
    return text


def _fail(path: str, expected: str, value: Any) -> UsageError:
    return UsageError(f"{path}: expected {expected}, got {_shown(value)}")


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "an object", value)
    return value


def _text(value: Any, path: str, allow_empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or (not allow_empty and not value):
        raise _fail(
            path, f"a {'' if allow_empty else 'non-empty '}string of at most {MAX_TEXT} characters", value
        )
    return value


def number(value: Any, path: str, minimum: float | None = None) -> float:
    """A finite number (bool is not one), at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(path, "a finite number", value)
    if minimum is not None and value < minimum:
        raise _fail(path, f"a number >= {minimum:g}", value)
    return float(value)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "true or false", value)
    return value


def _list(value: Any, path: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, "a list", value)
    if len(value) > limit:
        raise UsageError(f"{path}: {len(value)} entries, more than the {limit} a record may hold")
    return value


def _free_json(value: Any, path: str, depth: int = 0) -> Any:
    """Config and details: any JSON of bounded depth whose numbers are finite."""
    if depth > MAX_DEPTH:
        raise UsageError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _free_json(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _free_json(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, "a finite number", value)
    return value


def _metric(value: Any, path: str) -> Metric:
    data = _obj(value, path)
    samples = _list(data.get("samples"), f"{path}.samples", MAX_SAMPLES)
    if not samples:
        raise UsageError(f"{path}.samples: expected at least one sample, got none")
    better = data.get("better")
    if better not in DIRECTIONS:
        raise _fail(f"{path}.better", f"one of {', '.join(map(repr, DIRECTIONS))}", better)
    return Metric(
        [number(s, f"{path}.samples[{i}]", minimum=0) for i, s in enumerate(samples)],
        _text(data.get("unit"), f"{path}.unit"),
        better,
    )


def _verdict(value: Any, path: str) -> Verdict:
    data = _obj(value, path)
    label = data.get("label")
    if label not in LABELS:
        raise _fail(f"{path}.label", f"one of {', '.join(map(repr, LABELS))}", label)
    return Verdict(
        _text(data.get("versus"), f"{path}.versus"),
        number(data.get("ratio"), f"{path}.ratio", 0),
        number(data.get("low"), f"{path}.low", 0),
        number(data.get("high"), f"{path}.high", 0),
        number(data.get("p_value"), f"{path}.p_value", 0),
        label,
    )


def _cell(value: Any, path: str) -> Cell:
    data = _obj(value, path)
    metrics = _obj(data.get("metrics"), f"{path}.metrics")
    verdicts = _obj(data.get("verdicts", {}), f"{path}.verdicts")
    return Cell(
        subject=_text(data.get("subject"), f"{path}.subject", allow_empty=False),
        allocator=_text(data.get("allocator"), f"{path}.allocator", allow_empty=False),
        variant=_text(data.get("variant", ""), f"{path}.variant"),
        metrics={_text(k, f"{path}.metrics"): _metric(m, f"{path}.metrics.{k}") for k, m in metrics.items()},
        verdicts={k: _verdict(v, f"{path}.verdicts.{k}") for k, v in verdicts.items()},
        details=dict(_free_json(_obj(data.get("details", {}), f"{path}.details"), f"{path}.details")),
    )


@dataclass
class _LoadState:
    """machine.state(): the fields its readers use."""

    load_average: list[float] | None = None
    cpus: int = 0
    usable_cpus: int = 0


@dataclass
class _Load:
    """machine.LoadWatch.finish()."""

    before: _LoadState | None = None
    after: _LoadState | None = None
    highest_load_during: float | None = None


def _load(value: Any) -> dict[str, Any]:
    data = _free_json(_obj(value, "load"), "load")
    dataclass_from(_Load, data, "load")  # the check; the record keeps every field
    return dict(data)


def from_json(data: Any, source: str) -> Record:
    """The record a JSON value holds; UsageError naming the first bad field."""
    top = _obj(data, "top level")
    schema = top.get("schema")
    if schema != SCHEMA:
        raise UsageError(
            f"{source}: schema {_shown(schema)} is not one this allocffi reads ({SCHEMA}, and "
            "allocffi-bench/1 and /2 of older bench runs); write it again with this version's --json"
        )
    command = _obj(top.get("command"), "command")
    argv = _list(command.get("argv", []), "command.argv", MAX_CELLS)
    cells = _list(top.get("results"), "results", MAX_CELLS)
    load = top.get("load")
    baseline = top.get("baseline_allocator")
    warnings = _list(top.get("warnings", []), "warnings", MAX_CELLS)
    record = Record(
        command=_text(command.get("name"), "command.name", allow_empty=False),
        argv=[_text(a, f"command.argv[{i}]") for i, a in enumerate(argv)],
        config=dict(_free_json(_obj(command.get("config", {}), "command.config"), "command.config")),
        date=_text(top.get("date"), "date"),
        machine=dict(_free_json(_obj(top.get("machine", {}), "machine"), "machine")),
        cells=[_cell(c, f"results[{i}]") for i, c in enumerate(cells)],
        baseline_allocator=None if baseline is None else _text(baseline, "baseline_allocator"),
        load=None if load is None else _load(load),
        warnings=[_text(w, f"warnings[{i}]") for i, w in enumerate(warnings)],
        partial=_bool(top.get("partial", False), "partial"),
        details=dict(_free_json(_obj(top.get("details", {}), "details"), "details")),
    )
    seen: set[tuple[str, str, str]] = set()
    for index, cell in enumerate(record.cells):
        if cell.key in seen:
            raise UsageError(f"results[{index}]: a second cell for {cell.label}")
        seen.add(cell.key)
    return record


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def load_json_text(path: str | Path, what: str) -> Any:
    """The JSON value of a file a user names: a regular file, bounded, UTF-8, bounded nesting
    (core/inputs.py); UsageError (one line) for anything else."""
    text = inputs.read_user_text(path, what, MAX_FILE_BYTES)
    return inputs.parse_json(text, f"{what} {inputs.shown(path)}")


def read(path: str | Path, what: str = "results") -> Record:
    """Read and validate a record; UsageError naming the file and the field."""
    data = load_json_text(path, what)
    try:
        return from_json(data, str(path))
    except UsageError as exc:
        raise UsageError(f"{what} {path}: {exc}") from exc


def write(record: Record, path: str | Path) -> None:
    """The record as JSON, through the one atomic writer ("-": standard output)."""
    outputs.write_atomically(path, json.dumps(record.to_json(), indent=1) + "\n", "--json")


def cells_by_key(cells: Sequence[Cell]) -> dict[tuple[str, str, str], Cell]:
    return {c.key: c for c in cells}


def _typed(hint: Any, value: Any, path: str) -> Any:
    """``value`` checked against a dataclass field's type: str, int, float, bool, list[...], X | None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _typed(inner, value, path)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return dataclass_from(hint, _obj(value, path), path)
    if typing.get_origin(hint) is dict:
        return {_text(k, path): _typed(args[1], v, f"{path}.{k}") for k, v in _obj(value, path).items()}
    if typing.get_origin(hint) is list:
        return [_typed(args[0], v, f"{path}[{i}]") for i, v in enumerate(_list(value, path, MAX_SAMPLES))]
    if hint is bool:
        return _bool(value, path)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**64:
            raise _fail(path, "an integer", value)
        return value
    if hint is float:
        return number(value, path)
    if hint is str:
        return _text(value, path)
    return _free_json(value, path)


def dataclass_from(cls: type[T], data: Mapping[str, Any], path: str) -> T:
    """A dataclass from the fields of ``data`` it names, each checked against its type.

    Missing fields take their defaults (a required one missing is an error naming it); fields the
    class does not know are ignored, so a newer writer's extra details never break a reader.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            values[f.name] = _typed(hints[f.name], data[f.name], f"{path}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UsageError(f"{path}.{f.name}: missing")
    return cls(**values)
