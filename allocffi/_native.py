"""Stand-in for the compiled cffi module ``allocffi._native``: only ever imported when it is missing.

The build (allocffi/_build.py) produces ``allocffi/_native.cpython-*.so``. Python's import system
prefers an extension module over a ``.py`` file of the same name in the same directory, so once
the extension is built this file is never executed. Without the build, ``import allocffi`` reaches
this file instead and fails with an ImportError that says how to build.

For type checkers this file also declares what the extension provides (``ffi`` and ``lib``, typed
``Any``: cffi modules carry no type information).
"""

from __future__ import annotations

from typing import Any

BUILD_HINT = (
    "allocffi's compiled extensions are missing or broken ({detail}); build them with `make build` "
    "(or `python3 setup.py build_ext --inplace`) in a source checkout, or install the package with "
    "`pip install .`"
)

ffi: Any
lib: Any

raise ImportError(BUILD_HINT.format(detail="allocffi._native is not built"), name="allocffi._native")
