"""lua5.4 on a garbage-collector-heavy script: trees of tables, strings, closures, a churning queue.

Lua allocates every table, string, closure and upvalue through one function (l_alloc in
lauxlib.c), which calls realloc to grow and free to release: each of them is one allocation call
here. The script builds and walks binary trees of small tables (most of the run), interns and
concatenates formatted strings, makes closures that capture a counter and keeps a queue of records
that grows and is compacted; it prints checksums of all four, which are the same on every run.
"""

from __future__ import annotations

from pathlib import Path

from allocffi.harness.run.suite import SuiteProgram, Tool, scaled_allocations

# Iteration counts of the full run (scale 1); every loop below is multiplied by the scale.
TREE_DEPTH = 14  # the deepest tree built; each depth is built 2**(TREE_DEPTH - depth + 4) times
WORDS = 300_000
CLOSURES = 400_000
RECORDS = 600_000
ALLOCATIONS = 11_500_000  # counted here at scale 1 (11,509,870)

SCRIPT = """\
local scale = {scale}
local function tree(depth)
  if depth == 0 then return {{}} end
  depth = depth - 1
  return {{ tree(depth), tree(depth) }}
end
local function nodes(t)
  if t[1] then return 1 + nodes(t[1]) + nodes(t[2]) end
  return 1
end
local built = 0
for depth = 4, {depth}, 2 do
  local times = math.max(1, ((1 << ({depth} - depth + 4)) * scale) // 1)
  for _ = 1, times do built = built + nodes(tree(depth)) end
end

local seed, words = 42, {{}}
for i = 1, ({words} * scale) // 1 do
  seed = (seed * 1103515245 + 12345) % 2147483648
  words[#words + 1] = string.format("w%x-%d", seed, i % 977)
end
local counts = {{}}
for _, w in ipairs(words) do
  local key = w:sub(1, 4) .. w:sub(-3)
  counts[key] = (counts[key] or 0) + 1
end
local pairs_text = {{}}
for key, n in pairs(counts) do pairs_text[#pairs_text + 1] = key .. "=" .. n end
table.sort(pairs_text)
local joined = table.concat(pairs_text, ",")

local function counter(start)
  local n = start
  return function(step) n = n + step; return n end
end
local sum = 0
for i = 1, ({closures} * scale) // 1 do
  local step = counter(i)
  sum = sum + step(1) + step(2)
end

local queue = {{}}
for i = 1, ({records} * scale) // 1 do
  queue[#queue + 1] = {{ id = i, name = "r" .. i, tags = {{ i % 7, i % 11 }} }}
  if #queue > 1000 then
    local kept = {{}}
    for j = 501, #queue do kept[#kept + 1] = queue[j] end
    queue = kept
  end
end
print(built, #joined, sum, #queue, queue[#queue].name)
"""


def generate_script(scale: float = 1.0) -> str:
    return SCRIPT.format(scale=scale, depth=TREE_DEPTH, words=WORDS, closures=CLOSURES, records=RECORDS)


def program(scale: float = 1.0) -> SuiteProgram:
    """The program at ``scale`` (1: the suite's run); its allocation figures scale with it."""

    def write(workdir: Path) -> None:
        (workdir / "workload.lua").write_text(generate_script(scale))

    def argv(workdir: Path) -> list[str]:
        return ["lua5.4", str(workdir / "workload.lua")]

    allocations, bound = scaled_allocations(ALLOCATIONS, scale)
    return SuiteProgram(
        name="lua",
        description=f"lua5.4: binary trees of tables up to depth {TREE_DEPTH}, {WORDS // 1000}k formatted "
        f"strings, {CLOSURES // 1000}k closures, a queue of {RECORDS // 1000}k records (GC-heavy)",
        allocations=allocations,
        min_allocations=bound,
        tools=(Tool("lua5.4", "lua5.4"),),
        write_inputs=write,
        argv=argv,
    )


PROGRAM = program()
