# pyproject.toml cannot name cffi modules or C extensions; this file only does that.
from setuptools import Extension, setup

setup(
    cffi_modules=["allocffi/_build.py:ffibuilder"],
    ext_modules=[
        Extension(
            "allocffi._blockbuffer",
            ["csrc/python/blockbuffer.c", "csrc/python/allocstate.c"],
            depends=["csrc/python/blockbuffer.h", "csrc/include/allocffi.h"],
            extra_compile_args=["-Wall", "-Wextra"],
        ),
        Extension("allocffi._rawcall", ["csrc/python/rawcall.c"], extra_compile_args=["-Wall", "-Wextra"]),
    ],
)
