"""Start a command, wait for it, and measure it: the one place the harness launches programs.

``run_measured`` runs a command in its own process group (a new session, so a Ctrl-C at the
terminal reaches only us) and returns a ``ProcessRun``: exit status, wall/user/sys time, max RSS,
page faults and context switches of the command and every descendant it waited for (the figures
GNU time prints), plus an RSS curve of the whole process tree sampled from /proc.

How the resource figures are taken: through ``_launcher`` (csrc/run/launcher.c, built with the
package), a tiny static program that forks the command and reports getrusage(RUSAGE_CHILDREN).
Started straight from Python, the command's ru_maxrss would start at Python's own peak RSS (Linux
carries it across exec). Without the launcher (a source tree whose C parts were not built) the
command is started directly and the figures come from wait4; ``ProcessRun.measured_by`` says which.

Invariants:
- Nothing outlives a call: on return, on a timeout and on KeyboardInterrupt the whole process
  group is killed and the child reaped; KeyboardInterrupt is re-raised after that clean-up.
- A command that cannot be started raises ``LaunchError`` (a UsageError: exit status 2) before or
  instead of a measurement, never a ProcessRun with a made-up exit code.
- ``rss_curve`` sums the resident pages of every process in the tree at each sample (the launcher
  excluded); processes are found by parent pid, so a descendant that lives less than one sampling
  interval may be missed. ``processes`` lists every (process, executable) the sampler saw, with
  whether each library of the command's LD_PRELOAD was mapped in it (told once the dynamic loader
  has mapped libc; static programs are not listed).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from allocffi.harness.core.errors import UsageError

LAUNCHER = Path(__file__).with_name("_launcher")
MEASURED_BY_LAUNCHER = "launcher getrusage(RUSAGE_CHILDREN)"
MEASURED_BY_WAIT4 = "wait4 (max RSS includes the launching Python's peak)"
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_IDLE_POLL_S = 0.05  # how often the timeout is checked when nothing is sampled
_DISCOVER_EVERY = 5  # samples between two looks for new processes in /proc

Output = int | IO[bytes] | None  # as subprocess.Popen takes it: None inherits ours


class Companion(Protocol):
    """Work done beside a running command (a server's client): see ``run_measured``'s companion."""

    def start(self, pid: int) -> None:
        """The command was started; ``pid`` receives a SIGTERM that stops it (the launcher passes it on)."""

    def stop(self) -> None:
        """The command has ended or is being killed: end whatever was started, then return."""


class LaunchError(UsageError):
    """The command cannot be run: missing, not executable, not found, or a bad working directory."""


@dataclass
class SeenProcess:
    """A process of the command's tree, as the sampler saw it (once per executable it ran)."""

    pid: int
    ppid: int
    exe: str  # resolved /proc/PID/exe, "" if unreadable
    first_seen_s: float  # seconds since start
    preloads_mapped: bool | None  # every LD_PRELOAD library mapped in it; None: no LD_PRELOAD or unreadable


@dataclass
class ProcessRun:
    """One run of a command: how it ended and what it used."""

    argv: list[str]
    exit_code: int  # negative: killed by that signal
    timed_out: bool
    interrupted: bool  # False from run_measured (Ctrl-C re-raises); for callers recording a stopped run
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_bytes: int  # the largest peak RSS of one process of the tree (as ru_maxrss)
    minor_faults: int
    major_faults: int
    voluntary_switches: int
    involuntary_switches: int
    rss_curve: list[tuple[float, int]]  # (seconds since start, RSS bytes of the tree); [] if not sampled
    pid: int = 0  # the command's own process id (its probe reports can be matched to it)
    measured_by: str = MEASURED_BY_LAUNCHER
    processes: list[SeenProcess] = field(default_factory=list)
    sampler_cpu_s: float = 0.0  # CPU time the watcher thread spent (in our process, not the command's)

    @property
    def peak_sampled_rss_bytes(self) -> int:
        """The highest RSS of the whole tree in the curve (0 when not sampled)."""
        return max((rss for _, rss in self.rss_curve), default=0)


def resolve_program(program: str, env: Mapping[str, str], cwd: str | None = None) -> str:
    """The path execv will run for ``program`` (searched in env's PATH when it has no slash)."""
    if not program:
        raise LaunchError("the command is an empty string: give a program to run")
    if "/" in program:
        path = program if os.path.isabs(program) or cwd is None else os.path.join(cwd, program)
        if not os.path.exists(path):
            raise LaunchError(f"{program}: no such file (check the path)")
    else:
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is None:
            raise LaunchError(f"{program}: command not found in PATH (install it, or give its full path)")
        path = found
    if os.path.isdir(path):
        raise LaunchError(f"{program}: is a directory, not a program")
    if not os.access(path, os.X_OK):
        raise LaunchError(f"{program}: not executable (chmod +x it, or run it through its interpreter)")
    return os.path.abspath(path)


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    timeout: float | None = None,
    sample_interval: float | None = 0.01,
    stdin: Output = subprocess.DEVNULL,
    stdout: Output = None,
    stderr: Output = None,
    companion: Companion | None = None,
) -> ProcessRun:
    """Run ``argv`` to completion (or until ``timeout`` seconds) and measure it; see the module doc.

    ``companion`` (a server's driver) is started once the command runs and stopped after it ended,
    on every path: it runs outside the measured process tree and must stop the command itself.
    """
    argv = list(argv)
    if not argv:
        raise LaunchError("no command given: put the program and its arguments after --")
    if cwd is not None and not os.path.isdir(cwd):
        raise LaunchError(f"working directory {cwd!r} does not exist or is not a directory")
    if timeout is not None and not timeout > 0:
        raise LaunchError(f"the timeout must be a positive number of seconds (got {timeout})")
    if sample_interval is not None and not sample_interval > 0:
        raise LaunchError(f"the sampling interval must be positive (got {sample_interval})")
    program = resolve_program(argv[0], env, cwd)
    use_launcher = os.access(LAUNCHER, os.X_OK)
    report_r, report_w = os.pipe() if use_launcher else (-1, -1)
    command = [str(LAUNCHER), str(report_w), program, *argv] if use_launcher else [program, *argv[1:]]
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command,
            env=dict(env),
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(report_w,) if use_launcher else (),
            start_new_session=True,  # its own process group, away from the terminal's Ctrl-C
        )
    except OSError as exc:
        _close(report_r, report_w)
        raise LaunchError(f"{argv[0]}: cannot execute: {exc.strerror or exc}") from exc
    watcher = _Watcher(proc.pid, start, timeout, sample_interval, env, skip_root=use_launcher)
    reaped = False
    try:  # from here on, whatever happens (a Ctrl-C included), the group dies and the child is reaped
        _close(report_w)
        watcher.start()
        if companion is not None:
            companion.start(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        reaped = True
        wall = time.perf_counter() - start
    except BaseException:
        _kill_group(proc.pid)
        if not reaped:
            os.wait4(proc.pid, 0)
        raise
    finally:
        if watcher.ident is not None:
            watcher.stop()
        _kill_group(proc.pid)  # leftovers (daemons, orphans) of a finished command
        if companion is not None:
            companion.stop()
        proc.returncode = 0  # reaped by us: stop Popen from waiting again
        report = _read_all(report_r) if use_launcher else ""
        _close(report_r)
    return _result(argv, status, usage, wall, report, watcher, proc.pid, use_launcher)


def _result(
    argv: list[str],
    status: int,
    usage: resource.struct_rusage,
    wall: float,
    report: str,
    watcher: _Watcher,
    pid: int,
    use_launcher: bool,
) -> ProcessRun:
    fields = report.split()
    if fields[:1] == ["exec-error"]:
        err = int(fields[1])
        raise LaunchError(f"{argv[0]}: cannot execute: {os.strerror(err)}")
    if use_launcher and fields[:1] == ["done"] and len(fields) == 10:
        child, raw, utime, stime, maxrss, minflt, majflt, nvcsw, nivcsw = (int(f) for f in fields[1:])
        return ProcessRun(
            argv=argv,
            exit_code=os.waitstatus_to_exitcode(raw),
            timed_out=watcher.timed_out,
            interrupted=False,
            wall_s=wall,
            user_s=utime / 1e6,
            sys_s=stime / 1e6,
            max_rss_bytes=maxrss * 1024,
            minor_faults=minflt,
            major_faults=majflt,
            voluntary_switches=nvcsw,
            involuntary_switches=nivcsw,
            rss_curve=watcher.curve,
            pid=child,
            measured_by=MEASURED_BY_LAUNCHER,
            processes=watcher.processes,
            sampler_cpu_s=watcher.cpu_s,
        )
    # Started directly, or the launcher was killed with the group (timeout) before it could report.
    return ProcessRun(
        argv=argv,
        exit_code=os.waitstatus_to_exitcode(status),
        timed_out=watcher.timed_out,
        interrupted=False,
        wall_s=wall,
        user_s=float(usage.ru_utime),
        sys_s=float(usage.ru_stime),
        max_rss_bytes=int(usage.ru_maxrss) * 1024,
        minor_faults=int(usage.ru_minflt),
        major_faults=int(usage.ru_majflt),
        voluntary_switches=int(usage.ru_nvcsw),
        involuntary_switches=int(usage.ru_nivcsw),
        rss_curve=watcher.curve,
        pid=watcher.command_pid or pid,
        measured_by=MEASURED_BY_WAIT4,
        processes=watcher.processes,
        sampler_cpu_s=watcher.cpu_s,
    )


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def _read_all(fd: int) -> str:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks).decode("ascii", "replace")
        chunks.append(chunk)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left in the group
        os.killpg(pgid, signal.SIGKILL)


# --------------------------------------------------------------------------
# The watcher: timeout and RSS sampling of the process tree
# --------------------------------------------------------------------------


class _Watcher(threading.Thread):
    """Samples the tree under ``root`` every ``interval`` seconds and enforces the timeout.

    Reading /proc/PID/stat of every process on the machine each 10 ms would cost more than the
    thing measured, so a pid's parent is read once, when the pid first appears in /proc.
    """

    def __init__(
        self,
        root: int,
        start: float,
        timeout: float | None,
        interval: float | None,
        env: Mapping[str, str],
        *,
        skip_root: bool,
    ) -> None:
        super().__init__(name=f"allocffi-watch-{root}", daemon=True)
        self.root = root
        self.start_time = start
        self.timeout = timeout
        self.interval = interval
        self.skip_root = skip_root  # the root is our launcher: not part of the command's memory
        self.preloads = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p]
        self.timed_out = False
        self.curve: list[tuple[float, int]] = []
        self.processes: list[SeenProcess] = []
        self.command_pid = 0
        self.cpu_s = 0.0
        self._samples = 0
        self._stop_event = threading.Event()
        self._parents: dict[int, int] = {}  # every pid seen in /proc -> its parent pid
        self._tree: set[int] = {root}
        self._exes: dict[int, str] = {}
        self._launcher_exe = os.path.realpath(LAUNCHER)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        cpu_start = time.thread_time()
        try:
            self._watch()
        finally:
            self.cpu_s = time.thread_time() - cpu_start

    def _watch(self) -> None:
        wait = self.interval if self.interval is not None else _IDLE_POLL_S
        while not self._stop_event.wait(wait):
            now = time.perf_counter() - self.start_time
            if self.timeout is not None and now > self.timeout:
                self.timed_out = True
                _kill_group(self.root)
                return
            if self.interval is not None:
                self._sample(now)

    def _sample(self, now: float) -> None:
        # New processes and execs are looked for every few samples: listing /proc costs more than
        # reading the RSS of a small tree (the probe reports every exec anyway).
        looking = self._samples % _DISCOVER_EVERY == 0
        self._samples += 1
        if looking:
            self._discover()
        total = 0
        for pid in list(self._tree):
            if pid == self.root and self.skip_root:
                continue
            pages = _resident_pages(pid)
            if pages is None:
                self._tree.discard(pid)
                continue
            total += pages * _PAGE_SIZE
            if looking:
                self._note_exe(pid, now)
        if total:
            self.curve.append((now, total))

    def _discover(self) -> None:
        try:
            names = os.listdir("/proc")
        except OSError:
            return
        fresh = []
        for name in names:
            if name.isdigit():
                pid = int(name)
                if pid not in self._parents:
                    ppid = _parent_pid(pid)
                    if ppid is not None:
                        self._parents[pid] = ppid
                        fresh.append(pid)
        # Pids grow with time, so a parent is usually seen before its children; loop for the rest.
        grew = True
        while grew:
            grew = False
            for pid in fresh:
                if pid not in self._tree and self._parents[pid] in self._tree:
                    self._tree.add(pid)
                    grew = True
                    if self.skip_root and self._parents[pid] == self.root and not self.command_pid:
                        self.command_pid = pid

    def _note_exe(self, pid: int, now: float) -> None:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return
        if self._exes.get(pid) == exe or (self.skip_root and exe == self._launcher_exe):
            return  # seen already, or the launcher's own child in the instant before its exec
        mapped = _maps_contain(pid, self.preloads) if self.preloads else None
        if self.preloads and mapped is None:
            return  # just exec'd, the dynamic loader is still mapping: look again next time
        self._exes[pid] = exe
        self.processes.append(
            SeenProcess(
                pid=pid, ppid=self._parents.get(pid, 0), exe=exe, first_seen_s=now, preloads_mapped=mapped
            )
        )


def _read_proc(path: str) -> bytes | None:
    """A small /proc file in one read: os.open/os.read cost a third of open() at 100 reads a second."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def _parent_pid(pid: int) -> int | None:
    text = _read_proc(f"/proc/{pid}/stat")
    if text is None:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    fields = text[text.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def _resident_pages(pid: int) -> int | None:
    text = _read_proc(f"/proc/{pid}/statm")
    try:
        return int(text.split()[1]) if text is not None else None
    except (IndexError, ValueError):
        return None


def _maps_contain(pid: int, libraries: Sequence[str]) -> bool | None:
    """Whether every library is mapped in pid; None while that cannot be told yet (or unreadable).

    Right after an exec only the program and ld.so are mapped. ld.so maps LD_PRELOAD before the
    program's own libraries, so once libc is mapped a missing preload is really missing. A static
    program never maps libc and stays undetermined (it ignores LD_PRELOAD; the probe's missing
    report catches it).
    """
    try:
        maps = Path(f"/proc/{pid}/maps").read_text(errors="replace")
    except OSError:
        return None
    if all(os.path.realpath(lib) in maps or lib in maps for lib in libraries):
        return True
    return False if "/libc.so" in maps else None
