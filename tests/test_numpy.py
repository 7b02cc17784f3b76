"""Zero-copy numpy arrays over blocks, and their buffer exports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from conftest import require_numpy

import allocffi

np: Any = require_numpy()


def test_writes_through_ndarray_are_visible_through_view(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(4096, 64)
    arr = block.numpy("uint32")
    assert arr.shape == (1024,) and arr.flags.writeable and arr.ctypes.data == block.address
    arr[:] = np.arange(1024, dtype=np.uint32)
    with block.view() as view:
        assert view.cast("I")[1023] == 1023
        view.cast("I")[0] = 77
    assert arr[0] == 77
    with pytest.raises(allocffi.ViewsOutstandingError):
        allocator.free(block)
    del arr
    allocator.free(block)


def test_shapes_and_dtypes(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(800)
    matrix = block.numpy(np.float64, (10, 10))
    assert matrix.shape == (10, 10) and matrix.dtype == np.float64
    assert block.numpy("int16", 400).shape == (400,)
    assert block.numpy("uint8", (0,)).size == 0
    for dtype, shape in (("float64", (10, 11)), ("uint8", 801), ("int32", None)):
        if dtype == "int32":
            odd = allocator.alloc(10)
            with pytest.raises(ValueError, match="multiple"):
                odd.numpy(dtype)
            allocator.free(odd)
            continue
        with pytest.raises(ValueError, match="needs"):
            block.numpy(dtype, shape)
    with pytest.raises(ValueError):
        block.numpy("uint8", (-1,))
    del matrix
    allocator.free(block)
    with pytest.raises(allocffi.StaleBlockError):
        block.numpy()


def test_frombuffer_and_asarray_hold_the_export(allocator: allocffi.Allocator) -> None:
    block = allocator.alloc(64)
    for make in (lambda: np.frombuffer(block, dtype=np.uint8), lambda: np.asarray(block)):
        arr = make()
        arr[:] = 5
        assert bytes(block) == b"\x05" * 64
        assert block.exports >= 1
        with pytest.raises(allocffi.ViewsOutstandingError):
            allocator.free(block)
        del arr
        assert block.exports == 0
    allocator.free(block)


def test_missing_numpy_is_a_clear_import_error() -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import allocffi\n"
        "a = allocffi.open('bump'); b = a.alloc(8)\n"
        "try:\n"
        "    b.numpy()\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "ImportError: Block.numpy() needs numpy" in out
