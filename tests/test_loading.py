"""Import behaviour when the compiled extension is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import allocffi


def test_missing_build_gives_build_instructions() -> None:
    stand_in = Path(allocffi.__file__).with_name("_native.py")
    spec = importlib.util.spec_from_file_location("allocffi_native_stand_in", stand_in)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ImportError, match=r"make build.*pip install \.") as info:
        spec.loader.exec_module(module)
    assert info.value.name == "allocffi._native"


def test_compiled_modules_are_the_extensions() -> None:
    from allocffi import _native, _safe

    assert not _native.__file__.endswith(".py")
    assert _safe.__file__ is not None and not _safe.__file__.endswith(".py")


def test_jemalloc_without_the_tls_tunable_is_unavailable_not_a_crash() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    code = (
        "import allocffi\n"
        "reasons = allocffi.available()\n"
        "print('reason:', reasons['jemalloc'])\n"
        "for name in ('jemalloc', 'jemalloc-arena'):\n"
        "    try:\n"
        "        allocffi.open(name)\n"
        "    except allocffi.AllocatorUnavailableError as error:\n"
        "        assert isinstance(error, OSError)\n"
        "        print('unavailable:', error)\n"
        "    else:\n"
        "        print('opened', name)\n"
        "allocffi.open('libc').close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    if "opened jemalloc" in lines:  # libjemalloc loaded anyway (another build of it): nothing to check
        return
    assert "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384" in lines[0], lines[0]
    assert sum(line.startswith("unavailable: jemalloc") for line in lines) == 2, proc.stdout
    assert all("GLIBC_TUNABLES" in line for line in lines if line.startswith("unavailable:")), proc.stdout
