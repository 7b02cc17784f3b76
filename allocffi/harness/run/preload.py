"""How ``allocffi run`` puts an allocator under a whole program, and how it proves it did.

Each allocator comes in with ``LD_PRELOAD`` of its Debian library; ``libc`` preloads glibc's own
libc.so.6, so that glibc's malloc serves even a program linked against another allocator (Debian's
redis-server needs libjemalloc.so.2): a preloaded library comes before the program's own in the
search for ``malloc``. The library is found through ``ldconfig -p``, then in the Debian
library directories; ``NAME=PATH`` on the command line names another build.

The proof, for every run (``verify``):
1. The probe (csrc/run/probe.c) is preloaded first in every run, libc included. Its constructor
   writes, for each process that started with the preload, which shared object defines the
   ``malloc`` the process binds to. The command's own process must have written a line, and every
   line must name the intended library (for libc: libc.so.6).
2. The sampler in launch.py reads /proc/PID/maps of every process of the tree it sees (once per
   executable): a process without the preloaded libraries mapped ran without the preload, e.g. a
   child started with a cleared environment.
3. The probe also wraps the exec family: an exec whose environment dropped the preload is
   reported, even when the process it starts lives too briefly for the sampler.
A run failing either check is an error row, never a glibc row under another name.
"""

from __future__ import annotations

import importlib.machinery
import os
import platform
import re
import shutil
import subprocess
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from allocffi.harness.core import inputs
from allocffi.harness.core.errors import UsageError
from allocffi.harness.core.machine import PACKAGES
from allocffi.harness.core.measure import ProcessRun
from allocffi.harness.run import elf

BASELINE = "libc"
# Allocators a whole program can run under, in report order, with the soname of each library.
SONAMES: dict[str, str] = {
    "libc": "libc.so.6",
    "mimalloc": "libmimalloc.so.2",
    "jemalloc": "libjemalloc.so.2",
    "tcmalloc": "libtcmalloc_minimal.so.4",
}
# Allocators built with allocffi (no soname): name -> the library's stem in the package directory.
PACKAGE_LIBRARIES: dict[str, str] = {"afmalloc": "_afmalloc"}
RUN_ALLOCATORS: tuple[str, ...] = (*SONAMES, *PACKAGE_LIBRARIES)
PROBE_FILE_VARIABLE = "ALLOCFFI_PROBE_FILE"
COUNT_FILE_VARIABLE = "ALLOCFFI_COUNT_FILE"
# What run_environment adds: a process started without these (a server's driver) is outside the proof.
RUN_VARIABLES = ("LD_PRELOAD", PROBE_FILE_VARIABLE, COUNT_FILE_VARIABLE)
CHECK_METHOD = (
    "probe preloaded first: dlsym(RTLD_DEFAULT/RTLD_NEXT, 'malloc') + dladdr in every process "
    "that started with the preload; execs that drop the preload reported by the probe; "
    "/proc/PID/maps of every process the sampler saw"
)
_HELPER_DIR = Path(__file__).parent
# libasan.so.8, libubsan.so.1, libtsan.so.2, liblsan.so.0, libhwasan.so.0
_SANITIZER_RUNTIME = re.compile(r"lib(a|ub|t|l|hwa)san\.so")
_PACKAGE_DIR = _HELPER_DIR.parents[1]  # allocffi/: where the library's own shared objects are built


@dataclass(frozen=True)
class AllocatorChoice:
    """An allocator to run programs under: its name and the library that provides malloc."""

    name: str
    library: str  # the preloaded library (for libc, libc.so.6 itself: see the module doc)

    @property
    def preloads(self) -> list[str]:
        return [self.library]


def _ldconfig_paths() -> dict[str, str]:
    ldconfig = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.access(p, os.X_OK)), None
    )
    if ldconfig is None:
        return {}
    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    paths: dict[str, str] = {}
    for line in out.splitlines():
        # "	libmimalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libmimalloc.so.2"
        name, arrow, path = line.strip().partition(" => ")
        if arrow and (platform.machine() != "x86_64" or "x86-64" in name):  # not the 32-bit ones
            paths.setdefault(name.split(" ", 1)[0], path.strip())
    return paths


def _debian_dirs() -> list[str]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    return [f"/lib/{multiarch}", f"/usr/lib/{multiarch}", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]


def find_library(soname: str, ldconfig: Mapping[str, str] | None = None) -> str | None:
    """The path of ``soname`` on this machine, or None."""
    known = _ldconfig_paths() if ldconfig is None else ldconfig
    path = known.get(soname)
    if path and os.path.exists(path):
        return path
    for directory in _debian_dirs():
        candidate = os.path.join(directory, soname)
        if os.path.exists(candidate):
            return candidate
    return None


def parse_allocator(spec: str) -> tuple[str, str | None]:
    """``"mimalloc"`` -> ("mimalloc", None); ``"mimalloc=/opt/lib.so"`` -> ("mimalloc", "/opt/lib.so")."""
    name, eq, path = spec.partition("=")
    if not eq:
        return name, None
    if not path:
        raise UsageError(f"{spec!r}: give a library path after '=' (e.g. mimalloc=/opt/mi/libmimalloc.so)")
    return name, path


def resolve_allocators(specs: list[str] | None) -> tuple[list[AllocatorChoice], dict[str, str]]:
    """The allocators to run and, for the default set only, the skipped ones with why.

    An allocator asked for by name that is not installed is a UsageError naming the package.
    """
    explicit = specs is not None
    ldconfig = _ldconfig_paths()
    chosen: list[AllocatorChoice] = []
    skipped: dict[str, str] = {}
    for spec in specs if specs is not None else list(RUN_ALLOCATORS):
        name, path = parse_allocator(spec)
        if name not in RUN_ALLOCATORS:
            raise UsageError(f"unknown allocator {name!r}; choose from {', '.join(RUN_ALLOCATORS)}")
        if any(c.name == name for c in chosen):
            raise UsageError(f"allocator {name!r} is listed twice")
        if path is not None:
            if name == BASELINE:
                raise UsageError("libc is glibc's own malloc: it takes no library path")
            chosen.append(AllocatorChoice(name, os.path.abspath(check_library(path, f"--allocators {name}"))))
            continue
        found = allocator_library(name, ldconfig)
        if found is None:
            if name in PACKAGE_LIBRARIES:
                why = f"allocffi's {PACKAGE_LIBRARIES[name]} library is not built (run `make build`)"
            else:
                package = PACKAGES.get(name, "?")
                why = f"{SONAMES[name]} is not installed (install it: apt-get install {package})"
            if explicit:
                raise UsageError(f"allocator {name!r}: {why}")
            skipped[name] = why
            continue
        chosen.append(AllocatorChoice(name, found))
    if not chosen:
        raise UsageError("no allocator to run: " + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    return chosen, skipped


def check_library(path: str, option: str) -> str:
    """``path`` when it is a readable shared library that defines malloc; else a UsageError."""
    inputs.check_input(path, f"the {option} library")
    try:
        elf.check_malloc_library(path)
    except elf.NotALibrary as exc:
        raise UsageError(
            f"{option}: {inputs.shown(path)} is {exc}: give the path of an allocator's shared library "
            "(one that defines malloc)"
        ) from exc
    except OSError as exc:
        raise inputs.os_error(f"the {option} library", path, exc) from exc
    return path


def check_user_preload(env: Mapping[str, str]) -> str | None:
    """Check the user's own ``--env`` against what a run sets; a note to print, or None.

    A user's LD_PRELOAD is kept in every run, after the probe and the allocator under test (see
    ``run_environment``), so a tool such as a fault injector still loads. One that defines
    malloc is refused: loaded after the allocator under test, it would never serve malloc, and a
    user who preloads an allocator means to measure it.
    """
    for key in (PROBE_FILE_VARIABLE, COUNT_FILE_VARIABLE):
        if key in env:
            raise UsageError(
                f"--env {key}: allocffi run sets this variable itself in every run; leave it out"
            )
    value = env.get("LD_PRELOAD")
    if not value:
        return None
    for entry in value.replace(":", " ").split():
        path = entry if "/" in entry else find_library(entry)
        if path is None or not os.path.isfile(path):
            raise UsageError(
                f"--env LD_PRELOAD: {entry!r} is not a library file on this machine; check the path"
            )
        try:
            elf.check_malloc_library(path)
        except (elf.NotALibrary, OSError):
            continue  # not an allocator: it may stay
        raise UsageError(
            f"--env LD_PRELOAD: {entry} defines malloc, but it would never serve it (the allocator under "
            f"test is loaded first); to measure it, name it as an allocator (--allocators mimalloc={entry})"
        )
    return (
        f"note: --env LD_PRELOAD={value} is kept in every run, loaded after the probe and the allocator "
        "under test"
    )


def allocator_library(name: str, ldconfig: Mapping[str, str] | None = None) -> str | None:
    """The library that provides ``name``'s malloc on this machine (libc: libc itself), or None."""
    if name in PACKAGE_LIBRARIES:
        return _built_library(_PACKAGE_DIR, PACKAGE_LIBRARIES[name])
    return find_library(SONAMES[name], ldconfig)


def _built_library(directory: Path, stem: str) -> str | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = directory / f"{stem}{suffix}"
        if path.exists():
            return str(path)
    return None


def helper_library(stem: str) -> str:
    """Path of a csrc/run helper built with the package (``_runprobe``, ``_runcount``)."""
    path = _built_library(_HELPER_DIR, stem)
    if path is not None:
        return path
    raise UsageError(
        f"allocffi's {stem} helper is not built: run `make build` (or pip install .) in the source tree"
    )


def run_environment(
    base: Mapping[str, str], allocator: AllocatorChoice, probe_file: str, *, count_file: str | None = None
) -> dict[str, str]:
    """``base`` with the probe, the allocator (or the allocation counter) and the report files.

    The probe goes first so that its dlsym(RTLD_NEXT) sees the allocator (see probe.c). A
    LD_PRELOAD already in ``base`` is kept, after ours, except sanitizer runtimes inherited from
    allocffi's own process (``make sanitize-python``): the measured programs are not instrumented,
    and such a runtime would abort them unless first, and then serve malloc in the allocator's place.
    """
    env = dict(base)
    if env.get("LD_PRELOAD"):
        kept = [
            e
            for e in env["LD_PRELOAD"].replace(":", " ").split()
            if not _SANITIZER_RUNTIME.match(os.path.basename(e))
        ]
        env["LD_PRELOAD"] = " ".join(kept)
    # The counter defines malloc, calloc and realloc only: the allocator's library (libc.so.6 for the
    # counting run) comes after it, so that free and the rest are glibc's too.
    extra = [helper_library("_runcount")] if count_file is not None else []
    extra += allocator.preloads
    preloads = [helper_library("_runprobe"), *extra]
    if env.get("LD_PRELOAD"):
        preloads.append(env["LD_PRELOAD"])
    env["LD_PRELOAD"] = " ".join(preloads)
    env[PROBE_FILE_VARIABLE] = probe_file
    if count_file is not None:
        env[COUNT_FILE_VARIABLE] = count_file
    return env


@dataclass
class Verification:
    """Whether the intended allocator served every process of a run, and if not, why not."""

    verified: bool
    processes: int  # processes that reported through the probe
    problems: list[str] = field(default_factory=list)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def verify(run: ProcessRun, probe_file: str, expected_library: str) -> Verification:
    """Check a finished run against the probe's reports and the sampler's view (module doc)."""
    lines, unprobed = _read_probe(probe_file)
    problems = [
        f"pid {pid} exec'd {path} with an environment that no longer preloads the allocator "
        "(the program cleared LD_PRELOAD): that process ran without it"
        for pid, path in unprobed
    ]
    if not any(pid == run.pid for pid, _, _, _ in lines):
        problems.append(
            f"the command (pid {run.pid}) did not load the probe: LD_PRELOAD had no effect on it "
            "(a setuid or static program, or a wrapper that clears the environment?)"
        )
    for pid, _ppid, obj, exe in lines:
        if not _same_file(obj, expected_library):
            problems.append(f"pid {pid} ({exe}) got malloc from {obj}, not from {expected_library}")
    for seen in run.processes:
        if seen.preloads_mapped is False:
            problems.append(
                f"pid {seen.pid} ({seen.exe}) ran without the preloaded libraries: "
                "the program cleared LD_PRELOAD from its children's environment"
            )
    return Verification(verified=not problems, processes=len(lines), problems=problems)


def _read_probe(path: str) -> tuple[list[tuple[int, int, str, str]], list[tuple[int, str]]]:
    """The probe's reports: (pid, ppid, malloc's object, exe) lines and (pid, path) unprobed execs."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return [], []
    lines, unprobed = [], []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 5 and parts[0] == "probe":
            lines.append((int(parts[1]), int(parts[2]), parts[3], parts[4]))
        elif len(parts) == 3 and parts[0] == "unprobed":
            unprobed.append((int(parts[1]), parts[2]))
    return lines, unprobed


def read_allocation_count(path: str) -> int:
    """Sum of the allocation calls the counter reported (all processes of one run)."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return sum(int(p[2]) for p in (line.split("\t") for line in text.splitlines()) if len(p) == 3)
