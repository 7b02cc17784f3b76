"""pytest-benchmark suites of allocffi: ``pytest bench/`` (compare runs with
``pytest bench/ --benchmark-autosave`` then ``--benchmark-compare``).

- Debian's libjemalloc.so.2 can only be dlopen'ed into a process started with
  GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384: when pytest starts
  without it, the process re-executes itself once with the setting added
  (ALLOCFFI_BENCH_REEXEC guards against a loop), as tests/conftest.py does.
- Allocators that cannot load here are skipped with their reason.
- Sizes are small (see SUITE_SCALE) so the whole suite takes a couple of
  minutes; ``allocffi bench`` is the tool for the full, process-isolated
  comparison.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import pytest

from allocffi.bench.catalog import TUNABLE, TUNABLE_VALUE, child_environment

REEXEC_GUARD = "ALLOCFFI_BENCH_REEXEC"


def _launched_as_pytest() -> bool:
    """True for `pytest ...` and `python -m pytest ...`, not for pytest.main() inside another program."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv else ""
    return argv0.startswith(("pytest", "py.test")) or sys.argv[0].endswith(
        os.path.join("pytest", "__main__.py")
    )


def pytest_configure(config: pytest.Config) -> None:
    if f"{TUNABLE}={TUNABLE_VALUE}" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    if os.environ.get(REEXEC_GUARD) or not _launched_as_pytest() or hasattr(config, "workerinput"):
        return
    env = child_environment()
    env[REEXEC_GUARD] = "1"
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()  # give the real stdout/stderr back before exec
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "pytest", *sys.argv[1:]], env)


def _require_available(name: str) -> None:
    """Skip the calling test when allocator ``name`` cannot be created in this process."""
    from allocffi._native import ffi, lib

    err = ffi.new("af_error *")
    if lib.af_available(name.encode(), err) != lib.AF_OK:
        pytest.skip(f"{name} unavailable: {ffi.string(err.message).decode()}")


@pytest.fixture
def require_available() -> Callable[[str], None]:
    """``require_available(name)``: skip this test unless allocator ``name`` works here."""
    return _require_available
