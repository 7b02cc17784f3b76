"""What a process needs at start-up before Debian's libjemalloc.so.2 can load.

libjemalloc.so.2 uses initial-exec TLS, so dlopen() succeeds only in a process that started with
``GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384``: the room cannot be granted later. Every
place allocffi starts a process uses this module: the benchmark workers (``child_environment``) and
pytest in ``tests/`` and ``bench/``, which re-executes itself once with the setting
(``reexec_pytest_with_setting``) so that plain ``pytest`` exercises jemalloc too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

TUNABLE = "glibc.rtld.optional_static_tls"
TUNABLE_VALUE = "16384"


def _tunables(env: Mapping[str, str]) -> list[str]:
    return [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]


def has_static_tls_setting(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment already sets the static-TLS tunable (to any value)."""
    return any(t.split("=", 1)[0] == TUNABLE for t in _tunables(os.environ if env is None else env))


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a process that loads the native library.

    Keeps the caller's other glibc tunables, and its own static-TLS value if it set one.
    """
    env = dict(os.environ if base is None else base)
    if not has_static_tls_setting(env):
        env["GLIBC_TUNABLES"] = ":".join([*_tunables(env), f"{TUNABLE}={TUNABLE_VALUE}"])
    return env


def _launched_as_pytest() -> bool:
    """True for `pytest ...` and `python -m pytest ...`, not for pytest.main() inside another program."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv else ""
    return argv0.startswith(("pytest", "py.test")) or sys.argv[0].endswith(
        os.path.join("pytest", "__main__.py")
    )


def reexec_pytest_with_setting(config: Any, guard: str) -> None:
    """From a conftest's pytest_configure: re-run this pytest once with the setting added.

    Does nothing when the setting is there, when ``guard`` (an environment variable naming this
    re-exec) says it already happened, inside an xdist worker, or when pytest runs embedded.
    """
    if has_static_tls_setting() or os.environ.get(guard) or not _launched_as_pytest():
        return
    if hasattr(config, "workerinput"):  # an xdist worker: its controller decides
        return
    env = child_environment()
    env[guard] = "1"
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()  # give the real stdout/stderr back before exec
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "pytest", *sys.argv[1:]], env)
