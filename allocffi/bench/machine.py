"""What the benchmark ran on: CPU, cores, memory, kernel, Python, library versions.

Every probe is best effort: a field that cannot be read is "unknown" (or
absent for package versions), never an error, so reports work on any Linux.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

# Debian packages of the system allocators, by allocator name.
PACKAGES: dict[str, str] = {
    "mimalloc": "libmimalloc2.0",
    "jemalloc": "libjemalloc2",
    "tcmalloc": "libtcmalloc-minimal4",
}


def cpu_model(cpuinfo: str | None = None) -> str:
    try:
        text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model"):
            return value.strip()
    return platform.processor() or "unknown"


def memory_bytes(meminfo: str | None = None) -> int | None:
    try:
        text = meminfo if meminfo is not None else Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def package_versions() -> dict[str, str]:
    """Installed versions of the allocator packages, by allocator name (dpkg only)."""
    dpkg = shutil.which("dpkg-query")
    if dpkg is None:
        return {}
    versions = {}
    for allocator, package in PACKAGES.items():
        try:
            proc = subprocess.run(
                [dpkg, "-W", "-f=${Version}", package],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0 and proc.stdout.strip():
            versions[allocator] = proc.stdout.strip()
    return versions


def _version_of(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed as a distribution (e.g. an in-place build)
        return "unknown"


def _allocffi_version() -> str:
    import allocffi

    return str(getattr(allocffi, "__version__", None) or _version_of("allocffi"))


def describe() -> dict[str, object]:
    """The machine record stored in reports."""
    mem = memory_bytes()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "memory_bytes": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "allocffi": _allocffi_version(),
        "cffi": _version_of("cffi"),
        "libraries": package_versions(),
    }


def one_line(machine: dict[str, object]) -> str:
    """E.g. 'Intel(R) Xeon(R) ... , 2 cores, 23.5 GiB, Linux 6.1.0, CPython 3.11.7'."""
    mem = machine.get("memory_bytes")
    mem_text = f"{int(mem) / 2**30:.1f} GiB" if isinstance(mem, int) else "memory unknown"
    parts = [
        machine.get("cpu"),
        f"{machine.get('cores')} cores",
        mem_text,
        machine.get("kernel"),
        machine.get("python"),
    ]
    return ", ".join(str(p) for p in parts)


def libraries_line(machine: dict[str, object]) -> str:
    libs = machine.get("libraries")
    if not isinstance(libs, dict) or not libs:
        return "system allocator versions unknown (no dpkg)"
    return ", ".join(f"{name} {ver}" for name, ver in libs.items())
