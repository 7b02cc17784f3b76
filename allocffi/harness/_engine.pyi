# The harness's compiled cffi module (allocffi/harness/_build_engine.py): the engine, calibration and
# trace functions of csrc/include/afbench.h with the allocator library. cffi modules carry no types.
from typing import Any

ffi: Any
lib: Any
