"""Shared fixtures: the allocator matrix, hypothesis profiles, and the jemalloc re-exec.

- Debian's libjemalloc.so.2 can only be dlopen'ed into a process started with
  GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384. When plain `pytest` runs without it, the
  test process re-executes itself once with the setting added (ALLOCFFI_TEST_REEXEC guards
  against a loop), so that jemalloc is tested too.
- `allocator_name` runs a test once per allocator. An allocator unusable here is skipped with
  its reason, except when CI=true or ALLOCFFI_REQUIRE_ALL=1: then it fails (CI must exercise all).
- Hypothesis profiles: "ci" (200 examples per test) when CI is set or HYPOTHESIS_PROFILE=ci,
  "dev" (25, for speed) otherwise.
- numpy is an optional extra: tests that need it skip without it, except in CI mode (they fail).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

try:  # importing allocffi loads no allocator library, so it may precede the re-exec
    import allocffi
except ModuleNotFoundError as missing:  # plain `pytest` in a source checkout: use the checkout
    if missing.name != "allocffi":
        raise
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import allocffi
from allocffi._startup import reexec_pytest_with_setting

# A run started as a background job of a non-interactive shell (as a CI script may start it) inherits
# SIGINT ignored, and so would every program it starts: the Ctrl-C tests need Python's own handler, as
# in a terminal. A handled signal is reset to its default in children, so they get Ctrl-C again too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    reexec_pytest_with_setting(config, guard="ALLOCFFI_TEST_REEXEC")


def require_all() -> bool:
    """CI mode: an unavailable allocator is a failure, not a skip."""
    return (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        or os.environ.get("ALLOCFFI_REQUIRE_ALL") == "1"
    )


settings.register_profile(
    "ci",
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if require_all() else "dev"))


ALL_NAMES = allocffi.ALLOCATOR_NAMES
RESETTABLE = ("bump", "mimalloc-heap", "jemalloc-arena")


def ensure_available(name: str) -> None:
    """Skip (or, in CI mode, fail) the test when `name` cannot be used in this process."""
    reason = allocffi.available()[name]
    if reason is None:
        return
    if require_all():
        pytest.fail(f"allocator {name} is unavailable but CI requires all: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


def require_numpy() -> object:
    """The numpy module; skips the test without numpy, or fails it in CI mode (CI must test it)."""
    try:
        import numpy
    except ModuleNotFoundError as missing:
        if require_all():
            pytest.fail(f"numpy is missing but CI requires it: {missing}")
        pytest.skip("numpy is not installed (pip install 'allocffi[numpy]')", allow_module_level=True)
    return numpy


@pytest.fixture(params=ALL_NAMES)
def allocator_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    ensure_available(name)
    return name


@pytest.fixture
def allocator(allocator_name: str) -> Iterator[allocffi.Allocator]:
    a = allocffi.open(allocator_name)
    yield a
    a.close()
