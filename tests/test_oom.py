"""Out of memory: a child under RLIMIT_AS allocates until MemoryError, then carries on.

The child caps its address space a little above what it already uses, fills it with 8 MiB
blocks (touching only their first and last bytes, so the test needs little real memory) until the
allocator raises MemoryError, then checks that every block kept its contents, gives memory back
(free half, or reset() for the bump arena) and allocates and frees again.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import allocffi

pytestmark = pytest.mark.subprocess

CHILD = textwrap.dedent(
    """
    import resource, sys
    import allocffi

    name = sys.argv[1]
    a = allocffi.open(name)
    a.free(a.alloc(64))  # load and initialise the library before the cap

    def vm_bytes():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    cap = vm_bytes() + (384 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    BLOCK = 8 << 20
    held = []

    def stamp(block, i):
        mark = i.to_bytes(8, "little")
        with block.view() as v:
            v[:8] = mark
            v[-8:] = mark

    def verify(block, i):
        mark = i.to_bytes(8, "little")
        with block.view() as v:
            assert v[:8] == mark and v[-8:] == mark, (name, i)

    try:
        for i in range(10_000):
            block = a.alloc(BLOCK)
            stamp(block, i)
            held.append(block)
    except MemoryError as error:
        print("MemoryError:", type(error).__name__, error, flush=True)
    else:
        raise SystemExit("never ran out of memory")
    assert len(held) >= 4, len(held)
    for i, block in enumerate(held):
        verify(block, i)
    if allocffi.Capability.FREE not in a.capabilities:
        a.reset()
        held = []
    else:
        for block in held[::2]:
            a.free(block)
        held = held[1::2]
    for j in range(3):
        extra = a.alloc(BLOCK)
        stamp(extra, 10**6 + j)
        verify(extra, 10**6 + j)
        a.free(extra)
    small = [a.alloc(100) for _ in range(1000)]
    a.free_many(small)
    for block in held:
        verify(block, held.index(block) * 2 + 1 if allocffi.Capability.FREE in a.capabilities else 0)
    a.close()
    print("survived", len(held), flush=True)
    """
)


def test_out_of_memory_then_recovery(allocator_name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, allocator_name], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode >= 0, f"{allocator_name}: killed by signal {-proc.returncode}\n{proc.stderr}"
    assert proc.returncode == 0, f"{allocator_name}:\n{proc.stdout}\n{proc.stderr}"
    assert "MemoryError: OutOfMemoryError" in proc.stdout, proc.stdout
    assert "survived" in proc.stdout


def test_import_and_available_work_without_building_anything() -> None:
    assert set(allocffi.available()) == set(allocffi.ALLOCATOR_NAMES)
