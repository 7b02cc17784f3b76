"""pytest-benchmark suites of allocffi: ``pytest bench/`` (compare runs with
``pytest bench/ --benchmark-autosave`` then ``--benchmark-compare``).

- Debian's libjemalloc.so.2 can only be dlopen'ed into a process started with
  GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384: when pytest starts
  without it, the process re-executes itself once with the setting added
  (ALLOCFFI_BENCH_REEXEC guards against a loop), as tests/conftest.py does.
- Allocators that cannot load here are skipped with their reason, except in CI mode
  (CI=true or ALLOCFFI_REQUIRE_ALL=1), where that fails the test: CI must run them all.
- Sizes are small (see SUITE_SCALE) so the whole suite takes a couple of
  minutes; ``allocffi bench`` is the tool for the full, process-isolated
  comparison.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from allocffi._startup import reexec_pytest_with_setting


def pytest_configure(config: pytest.Config) -> None:
    reexec_pytest_with_setting(config, guard="ALLOCFFI_BENCH_REEXEC")


def _require_available(name: str) -> None:
    """Skip the calling test when allocator ``name`` cannot be created in this process."""
    from allocffi._native import ffi, lib

    err = ffi.new("af_error *")
    if lib.af_available(name.encode(), err) != lib.AF_OK:
        reason = f"{name} unavailable: {ffi.string(err.message).decode()}"
        ci_mode = os.environ.get("CI", "").lower() in ("1", "true", "yes")
        if ci_mode or os.environ.get("ALLOCFFI_REQUIRE_ALL") == "1":
            pytest.fail(f"{reason} (CI mode requires every allocator)")
        pytest.skip(reason)


@pytest.fixture
def require_available() -> Callable[[str], None]:
    """``require_available(name)``: skip this test unless allocator ``name`` works here."""
    return _require_available
