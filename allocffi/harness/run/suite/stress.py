"""The stress suite: multi-threaded programs written here after the published allocator stress tests.

Five programs, each opened in csrc/stress/<name>.c by what it models, after which published design,
what it measures and its invariants:

- larson: a server whose threads come and go, handing their live blocks on (cross-thread frees);
- cache-scratch: passive false sharing (a thread reuses a block it was given by another);
- cache-thrash: active false sharing (concurrent threads allocate small objects and write them);
- xmalloc: threads that only allocate and threads that only free what they are handed;
- mstress: generations of threads churning blocks of mixed sizes through shared slots.

Each runs at 1, 2 and 4 threads, one row per thread count, named ``larson-t2``: every count gets its
own time, score and verdict, so a library that scales badly shows at the count where it does, and a
program's three rows show its scaling. (One row per program with a thread option would average the
counts away.) The machines this runs on may have fewer cores than 4: then 4 threads measure the
allocator under oversubscription, not more parallelism.

Every program ends by printing one line with its figure of merit (``figure``). Two programs stop on
time, not on work (larson, xmalloc): their wall time is the same under every allocator, so their
figure, a throughput, is declared as their score. The other three do a fixed amount of work, split
among their threads: their figure is their own elapsed time, and the harness's wall time is the
measure. Every program stamps its blocks and checks them before each free; on corruption it exits
1, which fails its row like any failed run.

The executables (``_stress_<name>``) are built by setup.py's build_ext beside the harness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from allocffi.harness.run.score import Score
from allocffi.harness.run.suite import SuiteProgram, Tool

THREAD_COUNTS = (1, 2, 4)
EXECUTABLE_DIR = Path(__file__).resolve().parent.parent  # where build_ext puts _stress_<name>


@dataclass(frozen=True)
class StressProgram:
    """One program of csrc/stress/, before it is given a thread count."""

    name: str  # the rows' prefix; the source is csrc/stress/<name, with _ for ->.c
    description: str
    scale: float  # the SCALE argument of every run of the suite (sized for make bench-stress)
    allocations: int  # malloc calls of one run at 1 thread, as counted here (documentation)
    min_allocations: int  # the coarse bound the suite checks, at every thread count
    figure: Score  # how to read the figure of merit from its last line
    stops_on_time: bool  # True: the figure is the score (wall time says nothing)

    def executable(self) -> Path:
        return EXECUTABLE_DIR / f"_stress_{self.name.replace('-', '_')}"

    def argv(self, threads: int) -> list[str]:
        return [str(self.executable()), str(threads), f"{self.scale:g}"]

    def at(self, threads: int) -> SuiteProgram:
        plural = "s" if threads > 1 else ""
        return SuiteProgram(
            name=f"{self.name}-t{threads}",
            description=f"{self.description} (SCALE {self.scale:g}, {threads} thread{plural})",
            allocations=self.allocations,
            min_allocations=self.min_allocations,
            tools=(Tool(str(self.executable()), package=""),),
            write_inputs=_no_inputs,
            argv=lambda _workdir: self.argv(threads),
            score=self.figure if self.stops_on_time else None,
        )


def _no_inputs(_workdir: Path) -> None:
    """The stress programs read no files: their work comes from their arguments and a seed."""


def _throughput(unit: str) -> Score:
    return Score(pattern=rf"throughput (?P<score>[0-9.]+) {unit}$", unit=unit, higher_is_better=True)


ELAPSED = Score(pattern=r", (?P<score>[0-9.]+) s$", unit="s", higher_is_better=False)


PROGRAMS_BY_DESIGN = (
    StressProgram(
        name="larson",
        description="larson-style server: each thread replaces random live blocks of 8-1,023 B, then "
        "hands them to a new thread; runs SCALE s",
        scale=0.4,
        allocations=2_800_000,  # stops on time: the count follows the machine's speed and load
        min_allocations=100_000,
        figure=_throughput("ops/s"),
        stops_on_time=True,
    ),
    StressProgram(
        name="cache-scratch",
        description="cache-scratch: each thread frees an 8 B object the main thread gave it, then "
        "allocates 8 B objects and writes each 1,000 times; 100,000 x SCALE objects",
        scale=0.3,
        allocations=30_000,
        min_allocations=30_000,
        figure=ELAPSED,
        stops_on_time=False,
    ),
    StressProgram(
        name="cache-thrash",
        description="cache-thrash: concurrent threads allocate 8 B objects and write each 1,000 times; "
        "100,000 x SCALE objects",
        scale=0.3,
        allocations=30_000,
        min_allocations=30_000,
        figure=ELAPSED,
        stops_on_time=False,
    ),
    StressProgram(
        name="xmalloc",
        description="xmalloc-style: half the threads allocate batches of 64 blocks of 8-512 B, the "
        "other half free them; runs SCALE s",
        scale=0.4,
        allocations=9_000_000,  # stops on time: the count follows the machine's speed and load
        min_allocations=100_000,
        figure=_throughput("blocks/s"),
        stops_on_time=True,
    ),
    StressProgram(
        name="mstress",
        description="mstress-style churn: 10 generations of threads, 4 million x SCALE operations on "
        "blocks of 24 B-256 KiB, a quarter through 1,024 shared slots",
        scale=1.0,
        allocations=2_000_000,
        min_allocations=1_900_000,
        figure=ELAPSED,
        stops_on_time=False,
    ),
)

PROGRAMS = tuple(design.at(threads) for design in PROGRAMS_BY_DESIGN for threads in THREAD_COUNTS)
