# pyproject.toml cannot name cffi modules or C extensions; this file only does that.
from pathlib import Path

from setuptools import Extension, setup

SAFE_LAYER = sorted(str(p) for p in Path("csrc/python").glob("*.c"))

setup(
    cffi_modules=["allocffi/_build.py:ffibuilder"],
    ext_modules=[
        Extension(
            "allocffi._safe",
            SAFE_LAYER,
            depends=[*map(str, Path("csrc/python").glob("*.h")), "csrc/include/allocffi.h"],
            # -Werror comes from the Makefile (development builds), not from here: a user's newer
            # compiler may warn about code that is correct.
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
        ),
    ],
)
