"""What the benchmark ran on, and how busy the machine was while it ran.

``describe()`` is the fixed part (CPU, cores, memory, kernel, Python, library
versions, the engine build); ``state()`` a snapshot of what changes from
minute to minute (load average, usable CPUs, available memory). A session
records a snapshot before and after its runs and the highest load seen
between them, and calls the machine busy when the load from other processes
exceeded ``BUSY_LOAD_PER_CPU`` per CPU: its figures then carry a warning.

Every probe is best effort: a field that cannot be read is "unknown" (or
absent for package versions), never an error, so reports work on any Linux.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

# Debian packages of the system allocators, by allocator name.
PACKAGES: dict[str, str] = {
    "mimalloc": "libmimalloc2.0",
    "jemalloc": "libjemalloc2",
    "tcmalloc": "libtcmalloc-minimal4",
    "libc": "libc6",
}

# Busy: other processes kept more than half the CPUs' worth of runnable tasks.
# On 2 CPUs that is one task besides the benchmark: its single-threaded run
# then shares a core now and then, which is what moves figures by 2x.
BUSY_LOAD_PER_CPU = 0.5


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


def engine_build() -> str:
    """A fingerprint of the compiled engine (the first 16 hex digits of the SHA-256 of the harness's
    native module, allocffi.harness._engine: the engine and the library, built from the same
    sources as the C worker).

    Two runs with the same fingerprint ran the same C code; "unknown" when the
    module cannot be found (it is then not the engine that ran either).
    """
    folder = Path(__file__).resolve().parent.parent  # allocffi/harness
    candidates = sorted(folder.glob("_engine*.so")) + sorted(folder.glob("_engine*.pyd"))
    if not candidates:
        return "unknown"
    try:
        return hashlib.sha256(candidates[0].read_bytes()).hexdigest()[:16]
    except OSError:
        return "unknown"


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
        "engine": engine_build(),
        "libraries": package_versions(),
    }


def _available_bytes() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the system has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def state() -> dict[str, Any]:
    """What changes from minute to minute: a snapshot to store beside a run."""
    return {
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average": load_average(),
        "cpus": os.cpu_count() or 0,
        "usable_cpus": _usable_cpus(),
        "memory_available_bytes": _available_bytes(),
    }


class LoadWatch:
    """The machine state before a session, the highest 1-minute load during it, and after it."""

    def __init__(self) -> None:
        self.before = state()
        self.highest: float | None = None

    def sample(self) -> None:
        """Called after each run: keep the highest 1-minute load seen."""
        load = load_average()
        if load is not None:
            self.highest = load[0] if self.highest is None else max(self.highest, load[0])

    def finish(self) -> dict[str, Any]:
        return {"before": self.before, "after": state(), "highest_load_during": self.highest}


def busy_reason(record: Mapping[str, Any] | None) -> str | None:
    """Why a run's machine counts as busy (see BUSY_LOAD_PER_CPU), or None.

    The benchmark's own child is one runnable task during and just after the
    runs, so one is taken off the loads measured then.
    """
    if not isinstance(record, Mapping):
        return None
    before = record.get("before") or {}
    cpus = int(before.get("usable_cpus") or before.get("cpus") or 0)
    if cpus <= 0:
        return None
    limit = BUSY_LOAD_PER_CPU * cpus
    loads = []
    if before.get("load_average"):
        loads.append(("before the runs", float(before["load_average"][0]), 0.0))
    if record.get("highest_load_during") is not None:
        loads.append(("during the runs", float(record["highest_load_during"]), 1.0))
    for when, load, own in loads:
        if load - own > limit:
            return (
                f"the machine was busy {when}: 1-minute load average {load:.2f} on {cpus} CPUs "
                f"(busy above {limit:g} from other processes); figures may be noisy"
            )
    return None


def load_line(record: Mapping[str, Any] | None) -> str:
    """E.g. "load average 0.52 before, 1.31 at most during, 1.05 after (2 CPUs)"."""
    if not isinstance(record, Mapping):
        return "load average not recorded"
    before = (record.get("before") or {}).get("load_average")
    after = (record.get("after") or {}).get("load_average")
    before_state = record.get("before") or {}
    cpus = before_state.get("usable_cpus", before_state.get("cpus", "?"))  # run records keep "cpus"
    parts = []
    if before:
        parts.append(f"{before[0]:.2f} before")
    if record.get("highest_load_during") is not None:
        parts.append(f"{record['highest_load_during']:.2f} at most during")
    if after:
        parts.append(f"{after[0]:.2f} after")
    if not parts:
        return "load average unknown"
    return f"load average {', '.join(parts)} ({cpus} CPUs)"


# The fields of describe() whose difference makes two runs hard to compare, by what they mean.
_IDENTITY = {
    "machine": ("cpu", "cores", "memory_bytes", "kernel"),
    "software": ("python", "allocffi", "cffi"),
    "engine build": ("engine",),
}


def _libraries(record: Mapping[str, Any]) -> Mapping[str, Any]:
    libs = record.get("libraries")
    return libs if isinstance(libs, Mapping) else {}


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between the machine records of two runs, one phrase each.

    Only fields both records hold are compared: an older report without the
    engine fingerprint, say, is not "different", just not known to be the same.
    """
    found = []
    for what, keys in _IDENTITY.items():
        changed = [
            f"{k} {old[k]} vs {new[k]}"
            for k in keys
            if k in old and k in new and old[k] != new[k]  # a field one run lacks is unknown, not different
        ]
        if changed:
            found.append(f"different {what}: " + "; ".join(changed))
    old_libs, new_libs = _libraries(old), _libraries(new)
    changed_libs = [
        f"{name} {old_libs[name]} vs {new_libs[name]}"
        for name in sorted(set(old_libs) & set(new_libs))
        if old_libs[name] != new_libs[name]
    ]
    if changed_libs:
        found.append("different library versions: " + "; ".join(changed_libs))
    return found


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
