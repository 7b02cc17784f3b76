"""redis-server under load from redis-benchmark: a server program (allocffi/harness/run/server.py).

The measured process is the server, started on a free loopback port with no persistence
(``--save "" --appendonly no``: nothing written, every run starts empty). Once it accepts
connections, redis-benchmark (outside the preload, not measured) sends a fixed number of requests
per command, pipelined, from 8 clients over random keys: SET, GET, LPUSH, HSET and SADD with values
of 16, 256 and 2048 bytes, then LRANGE of 100 elements (the replies the server builds). Then
``redis-cli shutdown nosave`` stops the server cleanly and its time, CPU and RSS are taken.

The score is the requests per second of the whole mix: redis-benchmark prints one rate per
command (``--csv``), each over the same number of requests, so the overall rate is their harmonic
mean. The server's wall time is mostly the client's pace, not the server's work: read the score
and the server's CPU time.

Debian's redis-server is linked against libjemalloc.so.2; the libc row preloads libc.so.6 so that
glibc's malloc serves it (the preload proof checks it, as for every row).
"""

from __future__ import annotations

from pathlib import Path

from allocffi.harness.run.score import HARMONIC_MEAN, Score
from allocffi.harness.run.server import PORT, Driver
from allocffi.harness.run.suite import SuiteProgram, Tool

REQUESTS = 20_000  # per command and value size
VALUE_SIZES = (16, 256, 2048)
KEYSPACE = 50_000
PIPELINE = 16
CLIENTS = 8


TOOLS = (
    Tool("redis-server", "redis-server"),
    Tool("redis-benchmark", "redis-tools"),
    Tool("redis-cli", "redis-tools"),
)


def _no_inputs(workdir: Path) -> None:
    """The server starts empty: every key comes from the driver."""


def _server_argv(workdir: Path) -> list[str]:
    return [
        "redis-server", "--port", PORT, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--daemonize", "no", "--logfile", "", "--databases", "1",
    ]  # fmt: skip


def _benchmark(requests: int, tests: str, size: int) -> list[str]:
    return [
        "redis-benchmark", "-h", "127.0.0.1", "-p", PORT, "-n", str(requests), "-r", str(KEYSPACE),
        "-P", str(PIPELINE), "-c", str(CLIENTS), "-d", str(size), "-t", tests, "--csv",
    ]  # fmt: skip


def program(requests: int = REQUESTS) -> SuiteProgram:
    """The suite's redis program with ``requests`` requests per command and value size."""
    commands = [_benchmark(requests, "set,get,lpush,hset,sadd", size) for size in VALUE_SIZES]
    commands.append(_benchmark(requests, "lrange_100", 64))
    return SuiteProgram(
        name="redis",
        description=f"redis-server driven by redis-benchmark: {requests:,} pipelined requests per command "
        f"(SET/GET/LPUSH/HSET/SADD at {'/'.join(map(str, VALUE_SIZES))} bytes, LRANGE 100)",
        allocations=2_000_000 * requests // REQUESTS,
        min_allocations=800_000 * requests // REQUESTS,
        tools=TOOLS,
        write_inputs=_no_inputs,
        argv=_server_argv,
        score=Score(
            pattern=r'^"[^"]+","(?P<score>[0-9.]+)"',
            unit="requests/s",
            higher_is_better=True,
            source="driver",
            combine=HARMONIC_MEAN,
        ),
        driver=Driver(
            commands=commands,
            stop=["redis-cli", "-h", "127.0.0.1", "-p", PORT, "shutdown", "nosave"],
        ),
    )


PROGRAM = program()
