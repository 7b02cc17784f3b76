"""cffi build script: the ``ffibuilder`` for ``allocffi._native`` and nothing else.

The cdef is read from ``csrc/include/allocffi.h`` so that C and Python cannot
drift apart; every ``.c`` file of the C library is compiled into the module.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
HEADER = CSRC / "include" / "allocffi.h"

# Library sources: csrc/*.c, csrc/bench/*.c and csrc/trace/*.c (tests, the
# CPython helper extension and the preloaded capture library are built
# separately).
CAPTURE_SOURCE = CSRC / "trace" / "capture.c"
SOURCES = sorted(
    str(p.relative_to(ROOT))
    for p in [*CSRC.glob("*.c"), *(CSRC / "bench").glob("*.c"), *(CSRC / "trace").glob("*.c")]
    if p != CAPTURE_SOURCE
)

_INTEGER_DEFINE = re.compile(r"^#define\s+[A-Z_][A-Z0-9_]*\s+\d+\s*$")


def cdef_from_header(text: str) -> str:
    """Drop preprocessor lines cffi cannot parse; keep ``#define NAME <int>``."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not _INTEGER_DEFINE.match(stripped):
            continue
        kept.append(line)
    return "\n".join(kept)


ffibuilder = FFI()
ffibuilder.cdef(cdef_from_header(HEADER.read_text()))
ffibuilder.set_source(
    "allocffi._native",
    '#include "allocffi.h"',
    sources=SOURCES,
    include_dirs=[str(CSRC / "include"), str(CSRC)],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden"],
    libraries=["dl", "pthread", "m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
