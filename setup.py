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
        # The capture library of `allocffi trace record`: preloaded into the
        # traced program, never imported (it has no PyInit and calls no Python).
        Extension(
            "allocffi._capture",
            ["csrc/trace/capture.c"],
            depends=["csrc/trace/format.h"],
            # Never instrumented, even in the sanitizer builds: it runs inside other programs.
            extra_compile_args=[
                "-Wall",
                "-Wextra",
                "-Werror",
                "-std=gnu11",
                "-fvisibility=hidden",
                "-pthread",
                "-fno-sanitize=all",
            ],
            extra_link_args=["-fno-sanitize=all"],
            libraries=["dl", "pthread"],
        ),
    ],
)
