"""Every command that reads a file, fed random and mutated files in-process: each must end in
exit status 0 or 2, one line on stderr for a refusal, never a traceback.

The files start real: a report written by ``allocffi bench`` (tiny --ops, --repeat 1), the
example workload file, a trace recorded from ``/bin/ls``. Hypothesis mutates them structurally
(keys deleted, values of another type, lists nested deep, NaN, infinities and 5000-digit
numbers, bytes that are not UTF-8) or replaces them with random bytes.

Nothing is measured: the first step of real work (probing the allocators, starting a replay
worker) is replaced by a refusal, so a file that passes every check ends there with exit 2,
after all of its reading and validation ran.

Examples per test: ALLOCFFI_FUZZ_EXAMPLES (default 60, a few seconds each); for a long run,
e.g. ALLOCFFI_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_inputs.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocffi.harness import cli
from allocffi.harness.core import children
from allocffi.harness.core.errors import EXIT_OK, EXIT_USAGE, UsageError
from allocffi.harness.trace import capture, replay

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("ALLOCFFI_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
STOP = "fuzz: the file passed every check (nothing is measured here)"


def run(*argv: str) -> tuple[int, str]:
    """``allocffi ARGV`` in this process: the exit status and standard error.

    Any exception escaping the command is the failure this test looks for.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


def check(code: int, err: str, what: str) -> None:
    assert code in (EXIT_OK, EXIT_USAGE), (what, code, err)
    assert "Traceback" not in err, (what, err)
    if code == EXIT_USAGE:
        assert len(err.strip().splitlines()) == 1, (what, err)


# --------------------------------------------------------------------------
# Real files to start from
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("report") / "run.json"
    code, err = run(
        "bench", "--allocators", "libc,bump", "--workloads", "fixed-48,mixed", "--ops", "500",
        "--repeat", "2", "--no-calibrate", "--quiet", "--json", str(path),
    )  # fmt: skip
    assert code == EXIT_OK, err
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def real_trace(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    prefix = tmp_path_factory.mktemp("trace") / "ls"
    recording = capture.record(prefix, ["/bin/ls", "/"])
    return max((p.read_bytes() for p in recording.traces), key=len)


@pytest.fixture
def no_measuring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The first step of real work refused: reading and validation only.

    bench reads its files, then probes the allocators (refused here); trace replay chooses its
    allocators (libc, without probing), reads the trace, then starts workers (refused here).
    """

    def refuse(*args: object, **kwargs: object) -> Any:
        raise UsageError(STOP)

    monkeypatch.setattr(children, "probe", refuse)
    monkeypatch.setattr(
        replay, "choose_allocators", lambda requested, mode: (list(requested or ["libc"]), {})
    )
    monkeypatch.setattr(replay, "run_child", refuse)
    yield


# --------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------

HUGE = "__a 5000-digit number__"  # written as digits by ``encoded`` (Python cannot repr such an int)
ODD_NUMBERS = st.sampled_from(
    [math.nan, math.inf, -math.inf, 1e308, -1e308, HUGE, -(10**30), 2**64, -1, 0, 0.0, 5e-324]
)
ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ODD_NUMBERS | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(document: Any) -> list[tuple[Any, ...]]:
    """Every path from the root to a value of ``document`` (iterative: documents may be wide)."""
    found: list[tuple[Any, ...]] = []
    todo: list[tuple[tuple[Any, ...], Any]] = [((), document)]
    while todo:
        path, node = todo.pop()
        found.append(path)
        if isinstance(node, dict):
            todo.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            todo.extend(((*path, i), v) for i, v in enumerate(node))
    return found


DEPTHS = (40, 1000, 100_000)


def _deep(levels: int) -> str:
    """A placeholder for ``levels`` nested lists, written out by ``encoded`` (the test stays shallow)."""
    return f"__{levels} nested lists__"


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` (a copy) with one to four structural mutations."""
    doc = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(ANY_VALUE | st.sampled_from(DEPTHS).map(_deep))
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = draw(st.sampled_from(["delete", "replace", "wrap", "deep", "number", "duplicate"]))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(ANY_VALUE)
        elif op == "wrap":
            parent[key] = [parent[key]]
        elif op == "deep":
            parent[key] = _deep(draw(st.sampled_from(DEPTHS)))
        elif op == "number":
            parent[key] = draw(ODD_NUMBERS)
        elif isinstance(parent, list):
            parent.append(parent[key])
        else:
            parent[f"{key}_"] = parent[key]
    return doc


def encoded(draw: st.DrawFn, doc: Any) -> bytes:
    """JSON text of ``doc`` (NaN and Infinity included, as Python writes them), sometimes broken."""
    data = json.dumps(doc, indent=draw(st.sampled_from([None, 1]))).encode()
    data = data.replace(json.dumps(HUGE).encode(), b"1" + b"0" * 5000)
    for levels in DEPTHS:
        data = data.replace(json.dumps(_deep(levels)).encode(), b"[" * levels + b"1" + b"]" * levels)
    if draw(st.booleans()):
        return data
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"", b"}"])) + data[at:]


@st.composite
def report_bytes(draw: st.DrawFn, document: dict[str, Any]) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=500))
    return encoded(draw, draw(mutated(document)))


# --------------------------------------------------------------------------
# The reading commands
# --------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_saved_reports_through_compare_and_report(
    data: st.DataObject, real_report: dict[str, Any], tmp_path: Path, no_measuring: None
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(real_report))
    bad = tmp_path / "bad.json"
    bad.write_bytes(data.draw(report_bytes(real_report)))
    outputs = [str(tmp_path / f"out.{ext}") for ext in ("json", "csv", "md")]
    for argv in (
        ["compare", str(good), str(bad)],
        ["compare", str(bad), str(bad), "--json", outputs[0]],
        ["report", str(bad)],
        ["report", str(bad), "--json", outputs[0], "--csv", outputs[1], "--markdown", outputs[2]],
        ["bench", "--baseline", str(bad)],
    ):
        check(*run(*argv), what=" ".join(argv[:2]))


@FUZZ
@given(data=st.data())
def test_workload_files_through_bench(
    data: st.DataObject, real_report: dict[str, Any], tmp_path: Path, no_measuring: None
) -> None:
    example = (ROOT / "bench" / "workloads" / "example.toml").read_bytes()
    kind = data.draw(st.sampled_from(["toml-bytes", "json", "random"]))
    if kind == "toml-bytes":  # text-level mutations of the example
        text = bytearray(example)
        for _ in range(data.draw(st.integers(1, 6))):
            at = data.draw(st.integers(0, len(text)))
            piece = data.draw(
                st.sampled_from(
                    [b"[" * 1000, b"9" * 5000, b"nan", b"inf", b"1e308", b'"', b"\xff", b"{", b"\n"]
                )
                | st.binary(max_size=8)
            )
            text[at : at + data.draw(st.integers(0, 8))] = piece
        path, content = tmp_path / "w.toml", bytes(text)
    elif kind == "json":  # a saved report holding workload specs, mutated
        specs = {**real_report, "config": {"workload_specs": json.loads(_example_specs())}}
        path, content = tmp_path / "w.json", encoded(data.draw, data.draw(mutated(specs)))
    else:
        path, content = tmp_path / "w.toml", data.draw(st.binary(max_size=500))
    path.write_bytes(content)
    check(*run("bench", "--workload-file", str(path)), what=kind)


def _example_specs() -> str:
    from allocffi.harness.bench import workload_file

    specs = workload_file.load(ROOT / "bench" / "workloads" / "example.toml")
    return json.dumps([s.to_dict() for s in specs])


HEADER_FIELDS = struct.Struct("<IIIIQQQQII")  # after the 8-byte magic (csrc/trace/format.h)


@FUZZ
@given(data=st.data())
def test_traces_through_info_and_replay(
    data: st.DataObject, real_trace: bytes, tmp_path: Path, no_measuring: None
) -> None:
    trace = bytearray(real_trace)
    kind = data.draw(st.sampled_from(["bytes", "header", "cut", "random"]))
    if kind == "bytes":
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(trace) - 1))
            trace[at] = data.draw(st.integers(0, 255))
    elif kind == "header":
        fields = list(HEADER_FIELDS.unpack_from(trace, 8))
        index = data.draw(st.integers(0, len(fields) - 1))
        limit = 2**32 - 1 if HEADER_FIELDS.format[1 + index] == "I" else 2**64 - 1
        fields[index] = data.draw(st.sampled_from([0, 1, 1024, 1025, limit]) | st.integers(0, limit))
        HEADER_FIELDS.pack_into(trace, 8, *fields)
    elif kind == "cut":
        trace = trace[: data.draw(st.integers(0, len(trace)))]
    else:
        trace = bytearray(data.draw(st.binary(max_size=500)))
    path = tmp_path / "t.trace"
    path.write_bytes(bytes(trace))
    for argv in (
        ["trace", "info", str(path)],
        ["trace", "info", str(path), "--json"],
        ["trace", "replay", str(path), "--allocators", "libc", "--repeat", "1"],
        ["trace", "replay", str(path), "--allocators", "libc", "--threads", "threads"],
        ["trace", "import", "memray", str(path), "-o", str(tmp_path / "imported")],
    ):
        check(*run(*argv), what=f"{kind}: {' '.join(argv[:2])}")
