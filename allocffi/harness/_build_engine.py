"""cffi build script: the ``ffibuilder`` for ``allocffi.harness._engine`` and nothing else.

The harness's module: the benchmark engine, the calibration loops and the trace reader and
replay (the ``engine`` part of csrc/sources.txt), compiled with the allocator library they
drive. Its cdef is allocffi.h then afbench.h, read the way allocffi/_build.py reads the first
(that file is loaded by path: the allocffi package cannot be imported while it is being built).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cffi import FFI

_spec = importlib.util.spec_from_file_location(
    "allocffi_library_build", Path(__file__).resolve().parent.parent / "_build.py"
)
assert _spec is not None and _spec.loader is not None
library_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(library_build)

HEADER = library_build.CSRC / "include" / "afbench.h"
SOURCES = [*library_build.sources("library"), *library_build.sources("engine")]

ffibuilder = FFI()
ffibuilder.cdef(
    library_build.cdef_from_header(library_build.HEADER.read_text())
    + "\n"
    + library_build.cdef_from_header(HEADER.read_text())
)
ffibuilder.set_source(
    "allocffi.harness._engine",
    '#include "afbench.h"',
    sources=SOURCES,
    include_dirs=[str(library_build.CSRC / "include"), str(library_build.CSRC)],
    extra_compile_args=library_build.COMPILE_ARGS,
    libraries=library_build.LIBRARIES,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
