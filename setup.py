# pyproject.toml cannot name cffi modules or C extensions; this file only does that.
import importlib.util
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# csrc/run/: shared objects that `allocffi run` preloads into the programs it measures. They are
# built like extensions but have no PyInit and are never imported.
# Never instrumented (make sanitize-python builds with ASan in CFLAGS): a preloaded ASan library
# would have to come first in every measured program.
RUN_CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-fno-sanitize=all"]


def _engine_sources() -> list[str]:
    """The library's and the engine's C sources (csrc/sources.txt), through the cffi build script
    (loaded by path: importing the allocffi package needs the modules this very build makes)."""
    spec = importlib.util.spec_from_file_location("allocffi_build", "allocffi/_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [*module.sources("library"), *module.sources("engine")]


def _up_to_date(target: Path, inputs: list[Path]) -> bool:
    return target.exists() and all(p.stat().st_mtime <= target.stat().st_mtime for p in inputs)


class BuildExtWithLauncher(build_ext):
    """build_ext, plus executables beside the harness:

    - allocffi/harness/core/_launcher (csrc/run/launcher.c): static, so the LD_PRELOAD of the command
      it launches never loads into it; dynamic if this machine has no static libc;
    - allocffi/harness/core/_engine_worker (csrc/engine/worker/engine_worker.c, the engine and the
      library): one engine run per process without an interpreter's start-up;
    - allocffi/_afmalloc.so: our slab and region cache as a preloadable malloc (csrc/afmalloc);
    - allocffi/harness/run/_stress_<name> (csrc/stress/<name>.c): the programs of
      `allocffi run --suite stress`.
    Each is rebuilt only when a C source or header it depends on is newer.
    """

    def run(self) -> None:
        super().run()
        out_dir = "allocffi/harness/core" if self.inplace else f"{self.build_lib}/allocffi/harness/core"
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
        self._build_engine_worker(out_dir)
        self._build_afmalloc("allocffi" if self.inplace else f"{self.build_lib}/allocffi")
        self._build_stress_programs(
            "allocffi/harness/run" if self.inplace else f"{self.build_lib}/allocffi/harness/run"
        )

    def _build_engine_worker(self, out_dir: str) -> None:
        sources = ["csrc/engine/worker/engine_worker.c", *_engine_sources()]
        target = Path(out_dir) / "_engine_worker"
        inputs = [*map(Path, sources), *Path("csrc").rglob("*.h"), Path("csrc/sources.txt")]
        if _up_to_date(target, inputs):
            return
        objects = self.compiler.compile(
            sources,
            output_dir=str(Path(self.build_temp) / "engine_worker"),
            include_dirs=["csrc/include", "csrc"],
            # Never instrumented, like the launcher: sanitizer builds check the engine in make sanitize.
            extra_postargs=["-O2", "-std=gnu11", "-pthread", "-Wall", "-Wextra", "-fno-sanitize=all"],
        )
        self.compiler.link_executable(
            objects,
            "_engine_worker",
            output_dir=out_dir,
            libraries=["dl", "pthread", "m"],
            extra_postargs=["-pthread", "-fno-sanitize=all"],
        )

    def _build_afmalloc(self, out_dir: str) -> None:
        """allocffi/_afmalloc.so: the malloc family made of our slab and large-region cache
        (csrc/afmalloc), for ``allocffi run --allocators afmalloc``. Its own objects (the slab's
        sources are also the cffi module's, built with other flags); never instrumented; only the
        malloc family exported."""
        own = sorted(map(str, Path("csrc/afmalloc").glob("*.c")))
        target = Path(out_dir) / "_afmalloc.so"
        inputs = [*map(Path, own + AFMALLOC_LIBRARY_SOURCES), *Path("csrc").rglob("*.h")]
        if _up_to_date(target, inputs):
            return
        flags = [*RUN_CFLAGS, "-std=gnu11", "-pthread", "-fvisibility=hidden"]
        objects = []
        for sources, macros in ((own, []), (AFMALLOC_LIBRARY_SOURCES, AFMALLOC_RENAMES)):
            objects += self.compiler.compile(
                sources,
                output_dir=str(Path(self.build_temp) / "afmalloc"),
                macros=macros,
                include_dirs=["csrc/include", "csrc"],
                extra_postargs=flags,
            )
        self.compiler.link_shared_object(
            objects,
            str(target),
            libraries=["dl", "pthread"],
            extra_postargs=["-pthread", "-fno-sanitize=all"],
        )

    def _build_stress_programs(self, out_dir: str) -> None:
        """One executable per csrc/stress/<name>.c, named _stress_<name>; each rebuilt only when its
        source or a header it includes is newer. Never instrumented: they run under each allocator
        by LD_PRELOAD (make sanitize and make valgrind check them separately)."""
        headers = [*Path("csrc/stress").glob("*.h"), Path("csrc/engine/rng.h")]
        for source in sorted(Path("csrc/stress").glob("*.c")):
            target = Path(out_dir) / f"_stress_{source.stem}"
            if _up_to_date(target, [source, *headers]):
                continue
            objects = self.compiler.compile(
                [str(source)],
                output_dir=str(Path(self.build_temp) / "stress"),
                include_dirs=["csrc"],
                extra_postargs=[*RUN_CFLAGS, "-std=gnu11", "-pthread"],
            )
            self.compiler.link_executable(
                objects, target.name, output_dir=out_dir, extra_postargs=["-pthread", "-fno-sanitize=all"]
            )



# The parts of the C library afmalloc is made of (the slab allocator and what it needs), and the
# renames that send their own records to glibc (_afm_real_*, csrc/afmalloc/real.c): no call of
# theirs comes back into afmalloc (see csrc/afmalloc/afmalloc.h).
AFMALLOC_LIBRARY_SOURCES = [
    f"csrc/{name}.c" for name in ("slab", "large", "addrmap", "os", "errors_and_clock", "locked")
]
AFMALLOC_RENAMES: list[tuple[str, str | None]] = [
    (name, f"_afm_real_{name}") for name in ("malloc", "calloc", "realloc", "aligned_alloc", "free")
]
SAFE_LAYER = sorted(str(p) for p in Path("csrc/python").glob("*.c"))

setup(
    cffi_modules=["allocffi/_build.py:ffibuilder", "allocffi/harness/_build_engine.py:ffibuilder"],
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
            "allocffi.harness.run._runprobe",
            ["csrc/run/probe.c"],
            include_dirs=["csrc"],
            depends=["csrc/exec_list.h"],
            extra_compile_args=RUN_CFLAGS,
            extra_link_args=["-fno-sanitize=all"],
        ),
        Extension(
            "allocffi.harness.run._runcount",
            ["csrc/run/count.c"],
            extra_compile_args=RUN_CFLAGS,
            extra_link_args=["-fno-sanitize=all"],
        ),
        # The capture library of `allocffi trace record`: preloaded into the
        # traced program, never imported (it has no PyInit and calls no Python).
        Extension(
            "allocffi.harness.trace._capture",
            ["csrc/trace/capture.c"],
            include_dirs=["csrc"],
            depends=["csrc/trace/format.h", "csrc/exec_list.h"],
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
