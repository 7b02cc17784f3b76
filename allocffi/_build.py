"""cffi build script: the ``ffibuilder`` for ``allocffi._native`` and nothing else.

The cdef is read from ``csrc/include/allocffi.h`` so that C and Python cannot
drift apart; the library's sources are the ``library`` part of
``csrc/sources.txt``. The harness's module (allocffi/harness/_build_engine.py)
loads this file for ``sources`` and ``cdef_from_header``.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
HEADER = CSRC / "include" / "allocffi.h"
MANIFEST = CSRC / "sources.txt"
COMPILE_ARGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden"]
LIBRARIES = ["dl", "pthread", "m"]


def sources(part: str) -> list[str]:
    """The C sources of one part of csrc/sources.txt ("library", "engine"), relative to the root."""
    found: list[str] = []
    for line in MANIFEST.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) == 2 and fields[0] == part:
            found += sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(fields[1]))
    if not found:
        raise ValueError(f"{MANIFEST} names no source of the part {part!r}")
    return found


SOURCES = sources("library")

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
    extra_compile_args=COMPILE_ARGS,
    libraries=LIBRARIES,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
