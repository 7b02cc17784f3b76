# pyproject.toml cannot name cffi modules or C extensions; this file only does that.
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# csrc/run/: shared objects that `allocffi run` preloads into the programs it measures. They are
# built like extensions but have no PyInit and are never imported.
# Never instrumented (make sanitize-python builds with ASan in CFLAGS): a preloaded ASan library
# would have to come first in every measured program.
RUN_CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-fno-sanitize=all"]


class BuildExtWithLauncher(build_ext):
    """build_ext, plus csrc/run/launcher.c as the executable allocffi/bench/_launcher.

    Static, so the LD_PRELOAD of the command it launches never loads into it; dynamic if this
    machine has no static libc.
    """

    def run(self) -> None:
        super().run()
        out_dir = "allocffi/bench" if self.inplace else f"{self.build_lib}/allocffi/bench"
        objects = self.compiler.compile(
            ["csrc/run/launcher.c"], output_dir=self.build_temp, extra_postargs=RUN_CFLAGS
        )
        try:
            self.compiler.link_executable(
                objects, "_launcher", output_dir=out_dir, extra_postargs=["-static", "-fno-sanitize=all"]
            )
        except Exception:  # distutils' LinkError: no libc.a here
            self.compiler.link_executable(
                objects, "_launcher", output_dir=out_dir, extra_postargs=["-fno-sanitize=all"]
            )


SAFE_LAYER = sorted(str(p) for p in Path("csrc/python").glob("*.c"))

setup(
    cffi_modules=["allocffi/_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithLauncher},
    ext_modules=[
        Extension(
            "allocffi._safe",
            SAFE_LAYER,
            depends=[*map(str, Path("csrc/python").glob("*.h")), "csrc/include/allocffi.h"],
            # -Werror comes from the Makefile (development builds), not from here: a user's newer
            # compiler may warn about code that is correct.
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
        ),
        Extension(
            "allocffi.bench._runprobe",
            ["csrc/run/probe.c"],
            extra_compile_args=RUN_CFLAGS,
            extra_link_args=["-fno-sanitize=all"],
        ),
        Extension(
            "allocffi.bench._runcount",
            ["csrc/run/count.c"],
            extra_compile_args=RUN_CFLAGS,
            extra_link_args=["-fno-sanitize=all"],
        ),
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
