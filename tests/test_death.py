"""Death tests: misuse sequences run in a child interpreter must end in an exception, never a signal.

Each child runs one misuse sequence against every available allocator, catching and printing the
exception for all but the last allocator, whose exception is left uncaught: the child must exit
with status 1 and a traceback naming the exception (a crash would give a negative status).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import ALL_NAMES, RESETTABLE, require_all, require_numpy

import allocffi

pytestmark = pytest.mark.subprocess

# name -> (code using `a` (the allocator) and `allocffi`, expected exception class name)
SEQUENCES = {
    "double_free": ("b = a.alloc(64)\na.free(b)\na.free(b)", "DoubleFreeError"),
    "write_after_free": ("b = a.alloc(64)\na.free(b)\nmemoryview(b)[0] = 1", "StaleBlockError"),
    "free_under_view": (
        "b = a.alloc(64)\nv = b.view()\ntry:\n    a.free(b)\nfinally:\n    v[0] = 1; assert b.alive",
        "ViewsOutstandingError",
    ),
    "free_under_ndarray": (
        "import numpy\nb = a.alloc(64)\narr = b.numpy()\ntry:\n    a.free(b)\nfinally:\n    arr[:] = 1",
        "ViewsOutstandingError",
    ),
    "numpy_after_free": ("b = a.alloc(64)\na.free(b)\nb.numpy()[0] = 1", "StaleBlockError"),
    # Runs only on the allocators that have reset() (RESET_ONLY below): elsewhere it means nothing.
    "stale_after_reset": ("b = a.alloc(64)\na.reset()\nbytes(b)", "StaleBlockError"),
    "foreign_free": ("other = allocffi.open('bump')\na.free(other.alloc(8))", "ForeignBlockError"),
    "old_block_after_realloc": (
        "b = a.alloc(64)\nn = a.realloc(b, 4096)\nmemoryview(b)[0] = 1",
        "StaleBlockError",
    ),
    "use_after_close": ("b = a.alloc(64)\na.close()\na.alloc(8)", "ClosedAllocatorError"),
    "view_after_close": ("b = a.alloc(64)\na.close()\nb.view()[0] = 1", "StaleBlockError"),
    "close_under_view": (
        "b = a.alloc(64)\nv = b.view()\ntry:\n    a.close()\nfinally:\n    v[0] = 1",
        "ViewsOutstandingError",
    ),
    "forged_free": ("a.free(0x7f0000001000)", "TypeError"),
    "negative_size": ("a.alloc(-1)", "InvalidSizeError"),
    "bad_alignment": ("a.alloc(8, 3)", "InvalidAlignmentError"),
}

CHILD = textwrap.dedent(
    """
    import sys, traceback
    import allocffi

    def run(name):
        a = allocffi.open(name)
    {body}

    names = sys.argv[1:]
    for name in names[:-1]:
        try:
            run(name)
        except Exception as error:
            print(f"{{name}}: {{type(error).__name__}}: {{error}}", flush=True)
        else:
            print(f"{{name}}: no exception", flush=True)
    run(names[-1])
    """
)


# Sequences that mean something only for some allocators, and which ones.
RESET_ONLY = {"stale_after_reset": RESETTABLE}


def _usable_names(sequence: str) -> list[str]:
    available = allocffi.available()
    missing = [n for n in ALL_NAMES if available[n] is not None]
    if missing and require_all():
        pytest.fail(f"unavailable allocators in CI mode: {missing}")
    wanted = RESET_ONLY.get(sequence, ALL_NAMES)
    return [n for n in ALL_NAMES if available[n] is None and n in wanted]


@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_misuse_ends_in_an_exception(sequence: str) -> None:
    if "numpy" in sequence:
        require_numpy()
    body, expected = SEQUENCES[sequence]
    names = _usable_names(sequence)
    assert names, "no allocator to run the sequence on"
    code = CHILD.format(body=textwrap.indent(body, " " * 4))
    proc = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=120)
    assert proc.returncode >= 0, f"child killed by signal {-proc.returncode}:\n{proc.stderr}"
    assert proc.returncode == 1, f"expected an uncaught {expected}:\n{proc.stdout}\n{proc.stderr}"
    assert expected in proc.stderr.strip().splitlines()[-1], proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(names) - 1, proc.stdout
    for name, line in zip(names[:-1], lines, strict=True):
        assert line.startswith(f"{name}: {expected}: "), line
