"""A hypothesis state machine per allocator, checked against a model of what is live.

The model maps each live Block to the bytes written into it. After every step: every live block
holds its bytes, is aligned, no two overlap, and the allocator's stats agree with the model.
Misuse rules (double free, stale and foreign blocks, free/realloc with a view held) must raise
the documented exception and leave the model's blocks untouched.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from conftest import ALL_NAMES, RESETTABLE, ensure_available
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from support import check, fill

import allocffi

SIZES = st.one_of(
    st.integers(0, 256),
    st.integers(257, 20_000),
    st.integers(20_001, 600_000),
)
ALIGNS = st.sampled_from([1, 8, 16, 64, 256, 4096])


class AllocatorMachine(RuleBasedStateMachine):
    name: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.allocator = allocffi.open(self.name)
        self.other = allocffi.open("bump")  # source of foreign blocks
        self.live: dict[int, tuple[allocffi.Block, bytes]] = {}  # id(block) -> (block, contents)
        self.dead: list[allocffi.Block] = []
        self.seed = 0
        self.base = self.allocator.stats()

    def _new_seed(self) -> int:
        self.seed += 1
        return self.seed

    def _add(self, block: allocffi.Block, data: bytes | None = None) -> None:
        assert block.alive and block.allocator is self.allocator
        assert block.address % block.align == 0
        self.live[id(block)] = (block, data if data is not None else fill(block, self._new_seed()))

    def _pick(self, data: Any) -> tuple[allocffi.Block, bytes]:
        key = data.draw(st.sampled_from(sorted(self.live)))
        return self.live[key]

    # -- normal use -------------------------------------------------------------------------------

    @rule(size=SIZES, align=ALIGNS)
    def alloc(self, size: int, align: int) -> None:
        self._add(self.allocator.alloc(size, align))

    @rule(size=SIZES, align=ALIGNS)
    def calloc(self, size: int, align: int) -> None:
        block = self.allocator.calloc(size, align)
        assert bytes(block) == bytes(size)
        self._add(block)

    @rule(n=st.integers(1, 8), size=st.integers(0, 3000), align=ALIGNS)
    def alloc_many(self, n: int, size: int, align: int) -> None:
        for block in self.allocator.alloc_many(n, size, align):
            self._add(block)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data: Any) -> None:
        block, contents = self._pick(data)
        check(block, contents)
        self.allocator.free(block)
        del self.live[id(block)]
        self.dead.append(block)

    @precondition(lambda self: len(self.live) >= 2)
    @rule(data=st.data())
    def free_many(self, data: Any) -> None:
        keys = data.draw(st.lists(st.sampled_from(sorted(self.live)), min_size=1, max_size=5, unique=True))
        blocks = [self.live[k][0] for k in keys]
        for k in keys:
            check(*self.live[k])
        self.allocator.free_many(blocks)
        for k in keys:
            del self.live[k]
        self.dead.extend(blocks)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), new_size=SIZES)
    def realloc(self, data: Any, new_size: int) -> None:
        block, contents = self._pick(data)
        new = self.allocator.realloc(block, new_size)
        assert not block.alive and new.align == block.align
        keep = min(len(contents), new_size)
        assert bytes(new)[:keep] == contents[:keep]
        del self.live[id(block)]
        self.dead.append(block)
        self._add(new)

    @precondition(lambda self: self.name in RESETTABLE)
    @rule()
    def reset(self) -> None:
        generation = self.allocator.generation
        self.allocator.reset()
        assert self.allocator.generation == generation + 1
        for block, _ in self.live.values():
            assert not block.alive
            self.dead.append(block)
        self.live.clear()

    # -- misuse -----------------------------------------------------------------------------------

    @precondition(lambda self: self.dead)
    @rule(data=st.data())
    def use_dead_block(self, data: Any) -> None:
        block = data.draw(st.sampled_from(self.dead))
        with pytest.raises(allocffi.StaleBlockError):
            self.allocator.free(block)
        with pytest.raises(allocffi.StaleBlockError):
            self.allocator.realloc(block, 8)
        with pytest.raises(allocffi.StaleBlockError):
            memoryview(block)
        with pytest.raises(allocffi.StaleBlockError):
            block.numpy()

    @precondition(lambda self: self.dead)
    @rule(data=st.data())
    def double_free(self, data: Any) -> None:
        block = data.draw(st.sampled_from(self.dead))
        if block._state == 1:  # freed (not reset/moved): the error says "double free"
            with pytest.raises(allocffi.DoubleFreeError):
                block.free()

    @rule(size=st.integers(0, 100))
    def foreign_block(self, size: int) -> None:
        foreign = self.other.alloc(size)
        with pytest.raises(allocffi.ForeignBlockError):
            self.allocator.free(foreign)
        with pytest.raises(allocffi.ForeignBlockError):
            self.allocator.realloc(foreign, 8)
        self.other.free(foreign)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), use_numpy=st.booleans())
    def free_with_view_held(self, data: Any, use_numpy: bool) -> None:
        block, contents = self._pick(data)
        view: Any = block.numpy() if use_numpy and block.size else block.view()
        with pytest.raises(allocffi.ViewsOutstandingError):
            self.allocator.free(block)
        with pytest.raises(allocffi.ViewsOutstandingError):
            self.allocator.realloc(block, block.size + 1)
        if self.name in RESETTABLE:
            with pytest.raises(allocffi.ViewsOutstandingError):
                self.allocator.reset()
        with pytest.raises(allocffi.ViewsOutstandingError):
            self.allocator.close()
        assert block.alive and not self.allocator.closed
        assert bytes(view) == contents if not use_numpy else view.tobytes() == contents
        del view

    @rule(size=st.sampled_from([-1, allocffi.MAX_ALLOC_SIZE + 1]), align=st.sampled_from([0, 3, 8192]))
    def bad_arguments(self, size: int, align: int) -> None:
        with pytest.raises(allocffi.InvalidSizeError):
            self.allocator.alloc(size)
        with pytest.raises(allocffi.InvalidAlignmentError):
            self.allocator.alloc(8, align)

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def contents_alignment_no_overlap(self) -> None:
        spans = []
        for block, contents in self.live.values():
            assert block.alive
            check(block, contents)
            spans.append((block.address, block.address + max(block.size, 1)))
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, "live blocks overlap"

    @invariant()
    def stats_match_model(self) -> None:
        stats = self.allocator.stats()
        assert stats["live_blocks"] == len(self.live)
        assert stats["blocks_in_use"] - self.base["blocks_in_use"] == len(self.live)
        assert stats["bytes_in_use"] - self.base["bytes_in_use"] == sum(b.size for b, _ in self.live.values())
        assert stats["peak_bytes_in_use"] >= stats["bytes_in_use"]

    def teardown(self) -> None:
        for block, contents in self.live.values():
            check(block, contents)
        self.allocator.close()
        self.allocator.close()
        for block, _ in self.live.values():
            assert not block.alive
        self.other.close()


def _machine_test(name: str) -> Any:
    machine = type(f"Machine_{name.replace('-', '_')}", (AllocatorMachine,), {"name": name})

    def test(self: Any) -> None:
        ensure_available(name)
        machine.TestCase().runTest()

    return test


class TestStateMachine:
    """One test per allocator, so each is selectable: -k 'TestStateMachine and slab'."""


for _name in ALL_NAMES:
    setattr(TestStateMachine, f"test_{_name.replace('-', '_')}", _machine_test(_name))
