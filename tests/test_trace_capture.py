"""``allocffi trace record``: what the capture library records, and each pitfall it must handle.

The programs are in tests/trace_programs (their comments give the exact calls they make). Counts
are compared with the program's own calls: the capture names the calls libc and the dynamic
loader make themselves (``runtime_calls``), and those are the only difference allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from allocffi.harness.trace import native
from tests.trace_support import build_program, cli, info_json, own_counts, replay_rows

pytestmark = pytest.mark.subprocess

KNOWN_COUNTS = {
    "malloc": 31,
    "calloc": 5,
    "realloc": 4,
    "free": 43,
    "posix_memalign": 2,
    "aligned_alloc": 1,
    "memalign": 1,
    "valloc": 1,
    "pvalloc": 1,
    "reallocarray": 1,
}
KNOWN_PEAK_LIVE_BYTES = 25308
LOCKS_CHUNK = 0xFFFFFFFF  # the raw file's locks chunk (TR_RAW_LOCKS_CHUNK, docs/trace-format.md)


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("programs")
    return {name: build_program(name, out) for name in ("known_sequence", "threads_exchange")}


def with_preload(library: str) -> dict[str, str]:
    """The environment plus ``library`` at the end of LD_PRELOAD (after a sanitizer runtime the
    test run may need first; ``trace record`` drops those for the traced command). An allocator
    the whole test run is preloaded with (make test-afmalloc) is left out: ``library`` must be
    the one that serves malloc."""
    outer = os.environ.get("LD_PRELOAD", "").split(":")
    preload = [p for p in outer if p and "_afmalloc" not in Path(p).name]
    return dict(os.environ, LD_PRELOAD=":".join([*preload, library]))


def record(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> Path:
    prefix = tmp_path / "t"
    result = cli("trace", "record", "-o", str(prefix), "--", *argv, env=env)
    assert result.returncode == 0, result.stderr
    return prefix


def test_known_sequence_counts_exactly(programs: dict[str, Path], tmp_path: Path) -> None:
    info = info_json(record(tmp_path, str(programs["known_sequence"])))
    (proc,) = info["processes"]
    assert own_counts(proc) == KNOWN_COUNTS
    assert proc["failed"]["realloc"] == 1 and proc["failed"]["posix_memalign"] == 1
    assert proc["threads"] == 2
    assert proc["program_peak_live_bytes"] == KNOWN_PEAK_LIVE_BYTES
    assert proc["cross_thread_frees"] == 20
    assert proc["unknown_frees"] == 0 and proc["lost_events"] == 0
    for key in ("events", "counts", "threads", "processes", "bytes_requested", "peak_live_bytes"):
        assert key in info
    for key in ("peak_live_blocks", "unknown_frees", "cross_thread_frees"):
        assert key in info
    assert info["bytes_per_event"] < 4


def test_text_info_names_the_runtime_calls(programs: dict[str, Path], tmp_path: Path) -> None:
    prefix = record(tmp_path, str(programs["known_sequence"]))
    result = cli("trace", "info", str(prefix))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for words in ("processes: 1", "by libc/loader", "peak live", "from another thread", "unknown frees"):
        assert words in text
    assert "size histogram" in text and "lifetime histogram" in text


def test_replay_peak_live_bytes_is_the_traces(programs: dict[str, Path], tmp_path: Path) -> None:
    prefix = record(tmp_path, str(programs["known_sequence"]))
    info = info_json(prefix)
    report = tmp_path / "r.json"
    result = cli(
        "trace",
        "replay",
        str(prefix),
        "--allocators",
        "libc,slab",
        "--repeat",
        "1",
        "-q",
        "--json",
        str(report),
    )
    assert result.returncode == 0, result.stderr
    results = replay_rows(json.loads(report.read_text()))
    assert {r["peak_live_bytes"] for r in results} == {info["peak_live_bytes"]}
    assert len({r["checksum"] for r in results}) == 1


def test_fork_child_has_its_own_file_and_unknown_frees(programs: dict[str, Path], tmp_path: Path) -> None:
    info = info_json(record(tmp_path, str(programs["known_sequence"]), "fork"))
    parent, child = info["processes"]
    assert child["ppid"] == parent["pid"]
    assert own_counts(child)["malloc"] == 3
    # the child frees its 3 blocks and the parent's 777-byte block, which it never saw allocated
    assert own_counts(child)["free"] == 4
    assert child["unknown_frees"] == 1
    assert own_counts(parent)["malloc"] == 1 and own_counts(parent)["free"] == 1


def test_exec_child_is_traced(programs: dict[str, Path], tmp_path: Path) -> None:
    exe = str(programs["known_sequence"])
    prefix = record(tmp_path, exe, "fork", "exec", exe)
    info = info_json(prefix)
    pids = [p["pid"] for p in info["processes"]]
    assert len(pids) == 3 and len(set(pids)) == 2  # the child's image before exec and after
    exec_image = info["processes"][-1]
    assert Path(exec_image["file"]).name.endswith("-2")
    assert own_counts(exec_image) == KNOWN_COUNTS
    assert exec_image["command"] == [exe]
    text = cli("trace", "info", str(prefix)).stdout
    assert "processes: 3" in text


def test_address_reuse_across_threads_keeps_order(programs: dict[str, Path], tmp_path: Path) -> None:
    """A free is logged before the real free and an allocation after it returns: no inversion."""
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.tcache_count=0", MALLOC_ARENA_MAX="1")
    threads, rounds = 4, 20000
    info = info_json(record(tmp_path, str(programs["threads_exchange"]), str(threads), str(rounds), env=env))
    (proc,) = info["processes"]
    counts = own_counts(proc)
    assert counts["malloc"] == threads * rounds
    assert counts["free"] == threads * rounds + 1
    # an inverted pair would leave the first block live for ever and make a later free unknown
    assert proc["unknown_frees"] == 0
    runtime_allocations = sum(proc["runtime_calls"][c] for c in ("malloc", "calloc", "realloc"))
    assert proc["live_blocks_at_end"] <= runtime_allocations
    assert proc["cross_thread_frees"] >= threads - 1
    assert proc["threads"] == threads + 1
    assert proc["lost_events"] == 0


def test_threads_replay_with_cross_thread_frees(programs: dict[str, Path], tmp_path: Path) -> None:
    prefix = record(tmp_path, str(programs["threads_exchange"]), "2", "2000")
    report = tmp_path / "r.json"
    result = cli(
        "trace", "replay", str(prefix), "--allocators", "libc,mimalloc,slab", "--repeat", "1",
        "--threads", "threads", "-q", "--json", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = replay_rows(json.loads(report.read_text()))
    assert [r["threads"] for r in results] == [3, 3, 3]
    assert len({r["checksum"] for r in results}) == 1


def test_thread_buffers_are_flushed_when_the_thread_exits(programs: dict[str, Path], tmp_path: Path) -> None:
    """Worker threads' events survive a process killed before its main thread could flush."""
    prefix = tmp_path / "t"
    env = dict(os.environ, LD_PRELOAD=str(native.capture_library()), AF_TRACE_OUTPUT=str(prefix))
    done = subprocess.run(
        [str(programs["threads_exchange"]), "2", "1000", "kill"], env=env, timeout=60, check=False
    )
    assert done.returncode == -9
    (raw,) = sorted(tmp_path.glob("t.*.raw"))
    native.convert(raw, tmp_path / "trace")
    summary = native.summarize(tmp_path / "trace")
    malloc = native.CALLS.index("malloc")
    assert summary["calls"][malloc] - summary["runtime_calls"][malloc] == 2000  # both workers' mallocs
    assert summary["lost_events"] > 0  # the main thread's unflushed calls, counted as lost


def test_library_uses_no_stdio_dladdr_or_unwinding() -> None:
    """The hooks may not call what could allocate or deadlock: check what the library imports."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not installed")
    undefined = subprocess.run(
        [nm, "-D", "--undefined-only", str(native.capture_library())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {line.split()[-1].split("@")[0] for line in undefined.splitlines() if line.strip()}
    forbidden = {"printf", "fprintf", "fopen", "fwrite", "puts", "dladdr", "backtrace", "_Unwind_Backtrace"}
    assert not names & forbidden
    assert "__libc_malloc" in names  # the bootstrap: glibc's own entry points, never a pool


def test_recursion_guard_uses_initial_exec_tls() -> None:
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) not installed")
    dynamic = subprocess.run(
        [readelf, "-d", str(native.capture_library())], capture_output=True, text=True, check=True
    ).stdout
    assert "STATIC_TLS" in dynamic


def test_records_through_another_preloaded_allocator(programs: dict[str, Path], tmp_path: Path) -> None:
    """The real functions come from dlsym(RTLD_NEXT): a preloaded allocator after ours is what runs."""
    library = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
    if not Path(library).exists():
        pytest.skip("tcmalloc not installed")
    info = info_json(record(tmp_path, str(programs["known_sequence"]), env=with_preload(library)))
    assert own_counts(info["processes"][0])["malloc"] == KNOWN_COUNTS["malloc"]


def test_python_malloc_exposes_small_objects(tmp_path: Path) -> None:
    code = "import json; json.loads(json.dumps([{'a': i} for i in range(2000)]))"
    counts = {}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}  # make sanitize-python sets it
    for flag in ([], ["--python-malloc"]):
        prefix = tmp_path / f"t{len(flag)}"
        result = cli("trace", "record", "-o", str(prefix), *flag, "--", sys.executable, "-c", code, env=env)
        assert result.returncode == 0, result.stderr
        counts[len(flag)] = info_json(prefix)["events"]
    assert counts[1] > 3 * counts[0]


def test_command_that_cannot_run_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("trace", "record", "-o", str(tmp_path / "t"), "--", str(tmp_path / "no-such-program"))
    assert result.returncode == 2
    assert "no-such-program" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_spawned_child_is_traced_and_the_parent_keeps_its_own_file(
    programs: dict[str, Path], tmp_path: Path
) -> None:
    """CPython's subprocess starts children with vfork (or posix_spawn): the child shares the
    parent's memory until it execs, and the capture must leave the parent's buffers alone."""
    code = f"import subprocess; subprocess.run([{str(programs['known_sequence'])!r}], check=True)"
    info = info_json(record(tmp_path, sys.executable, "-c", code))
    parent, child = info["processes"]
    assert child["ppid"] == parent["pid"]
    assert parent["command"][0] == sys.executable and parent["events"] > 1000
    assert own_counts(child) == KNOWN_COUNTS
    assert not Path(child["file"]).name.endswith("-2")


def test_free_is_logged_before_the_address_can_be_reused(tmp_path: Path) -> None:
    """Deterministic: a shim allocator holds a free open until another thread's malloc has got
    the same address back; the trace must still free the old block first."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = Path(__file__).resolve().parent / "trace_programs"
    shim = tmp_path / "handoff_shim.so"
    exe = tmp_path / "handoff"
    subprocess.run([cc, "-O0", "-shared", "-fPIC", "-o", str(shim), str(src / "handoff_shim.c")], check=True)
    subprocess.run([cc, "-O0", "-pthread", "-o", str(exe), str(src / "handoff.c"), "-ldl"], check=True)
    info = info_json(record(tmp_path, str(exe), env=with_preload(str(shim))))
    (proc,) = info["processes"]
    assert own_counts(proc)["malloc"] == 2 and own_counts(proc)["free"] == 2
    assert proc["unknown_frees"] == 0
    assert proc["cross_thread_frees"] == 1  # main frees the block the second thread allocated


def raw_chunks(raw: Path) -> list[tuple[int, bytes]]:
    """(thread index, payload) of every chunk of a raw capture file (docs/trace-format.md, "Raw capture")."""
    data = raw.read_bytes()
    (command_len,) = struct.unpack_from("<I", data, 32)
    at, chunks = 36 + command_len, []
    while at + 8 <= len(data):
        thread, length = struct.unpack_from("<II", data, at)
        chunks.append((thread, data[at + 8 : at + 8 + length]))
        at += 8 + length
    return chunks


def test_events_take_no_global_lock(programs: dict[str, Path], tmp_path: Path) -> None:
    """The capture counts its global lock acquisitions and writes the count at exit: with 4 threads
    making 400,000 calls it must stay near the flushes of 64 KiB buffers, not near the calls."""
    threads, rounds = 4, 50000
    prefix = tmp_path / "t"
    env = dict(os.environ, LD_PRELOAD=str(native.capture_library()), AF_TRACE_OUTPUT=str(prefix))
    done = subprocess.run(
        [str(programs["threads_exchange"]), str(threads), str(rounds)], env=env, timeout=120, check=False
    )
    assert done.returncode == 0
    (raw,) = sorted(tmp_path.glob("t.*.raw"))
    locks = [payload for thread, payload in raw_chunks(raw) if thread == LOCKS_CHUNK]
    assert len(locks) == 1 and len(locks[0]) == 8
    (acquisitions,) = struct.unpack("<Q", locks[0])
    native.convert(raw, tmp_path / "trace")
    calls = sum(native.summarize(tmp_path / "trace")["calls"])
    assert calls >= 2 * threads * rounds
    # per thread: registry at start and exit, its last flush; per process: the exit flushes
    assert 0 < acquisitions <= calls // 1000 + (threads + 1) * 4 + 4, (acquisitions, calls)
