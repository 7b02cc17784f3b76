"""``allocffi trace record``: run a command with the capture library preloaded, then convert.

The capture library (csrc/trace/capture.c) writes one raw file per process, FILE.PID.raw; once
the command has finished each one becomes the trace FILE.PID (dense object ids, global order)
and the raw file is removed. The command is started by ``allocffi.harness.core.measure.run_measured``
(its own process group, killed on Ctrl-C); a command that cannot be run is a usage error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from allocffi.harness.core import outputs
from allocffi.harness.core.measure import ProcessRun, run_measured
from allocffi.harness.trace import files, native

OUTPUT_VARIABLE = "AF_TRACE_OUTPUT"  # read by capture.c: the FILE prefix
# The longest suffix capture.c puts after the prefix: .PID-GENERATION.raw
TRACE_NAME_ROOM = ".4294967295-4294967295" + files.RAW_SUFFIX
# Sanitizer runtimes must come first in LD_PRELOAD and would then serve malloc themselves, ahead
# of the capture library; the traced program is not instrumented and does not need them.
SANITIZER_RUNTIMES = ("libasan", "libubsan", "libtsan", "liblsan", "libhwasan")


@dataclass
class Recording:
    """What one ``trace record`` produced."""

    run: ProcessRun
    traces: list[Path] = field(default_factory=list)


def capture_environment(
    prefix: Path, python_malloc: bool, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The traced command's environment: the library first in LD_PRELOAD, the output prefix."""
    env = dict(os.environ if base is None else base)
    library = str(native.capture_library())
    preload = [
        p
        for p in env.get("LD_PRELOAD", "").replace(" ", ":").split(":")
        if p and p != library and not Path(p).name.startswith(SANITIZER_RUNTIMES)
    ]
    env["LD_PRELOAD"] = ":".join([library, *preload])
    env[OUTPUT_VARIABLE] = str(prefix)
    if python_malloc:
        env["PYTHONMALLOC"] = "malloc"
    return env


def record(output: str | Path, argv: Sequence[str], *, python_malloc: bool = False) -> Recording:
    """Run ``argv`` traced; returns the run and the trace files, one per process."""
    outputs.check_output(output, "-o", stdout_ok=False, name_room=len(TRACE_NAME_ROOM))
    prefix = Path(output).absolute()
    for stale in files.process_files(prefix, files.RAW_SUFFIX):
        stale.unlink()
    run = run_measured(list(argv), env=capture_environment(prefix, python_malloc), sample_interval=None)
    recording = Recording(run)
    for raw in files.process_files(prefix, files.RAW_SUFFIX):
        trace = raw.with_name(raw.name[: -len(files.RAW_SUFFIX)])
        with outputs.atomic_path(trace, "-o") as temp:
            native.convert(raw, temp)
        raw.unlink()
        recording.traces.append(trace)
    if not recording.traces:
        raise native.TraceError(
            f"{argv[0]}: no allocation was recorded (a static binary, or one that ignores LD_PRELOAD?)"
        )
    return recording
