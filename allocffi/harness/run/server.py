"""Server programs: the measured process is a server, and a driver outside the preload gives it work.

A suite program with a ``Driver`` is a server (redis-server). Each run:
1. the harness picks a free loopback port and puts it wherever ``PORT`` appears in the server's and
   the driver's commands, then starts the server measured, under the preload and the probe, as any
   program;
2. ``DriverRun`` (a launch.Companion) waits until 127.0.0.1:port accepts a TCP connection, at most
   ``ready_timeout_s`` (a server that is not ready by then is an error row, its problem said);
3. it runs the driver's commands one after the other, each a child of allocffi and not of the
   server: outside the measured tree, with the preload and the probe's variables removed from its
   environment, so the client is neither measured nor seen by the preload proof;
4. then it stops the server: the ``stop`` command when there is one (a clean shutdown), else a
   SIGTERM; a server still running ``stop_grace_s`` later gets a SIGTERM, then a SIGKILL.
The server's time, CPU and RSS are measured from its start to its exit, as for any program.

Invariants: ``stop()`` returns only when the driver's process group is dead and the server was
asked to stop (run_measured kills the server's group after it); nothing outlives a run, Ctrl-C
included. A driver that fails (non-zero exit) fails the row, its stderr's last lines said.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from allocffi.harness.core.output_tail import OutputTail

PORT = "{port}"  # replaced in every argument of the server's and the driver's commands
_POLL_S = 0.02


@dataclass(frozen=True)
class Driver:
    """The client of a server program: what to run against it once it is ready, and how to stop it."""

    commands: Sequence[Sequence[str]]  # run in order; each argument may hold PORT
    stop: Sequence[str] | None = None  # a clean shutdown (e.g. redis-cli -p PORT shutdown nosave)
    ready_timeout_s: float = 20.0
    stop_grace_s: float = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_port(argv: Sequence[str], port: int) -> list[str]:
    return [a.replace(PORT, str(port)) for a in argv]


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class DriverRun:
    """One run of a driver against a started server (a launch.Companion); results in its fields."""

    def __init__(
        self, driver: Driver, port: int, env: Mapping[str, str], cwd: str | None, stdout: str, stderr: str
    ) -> None:
        self.driver = driver
        self.port = port
        self.env = dict(env)
        self.cwd = cwd
        self.problems: list[str] = []
        self.ready_after_s: float | None = None
        self.stdout_text = ""
        self.stderr_text = ""
        self._out_paths = (stdout, stderr)
        self._ended = threading.Event()  # the server ended (or is being killed)
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._drive, args=(pid,), name="allocffi-driver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._ended.set()
        with self._lock:
            if self._child is not None:
                _kill_group(self._child.pid)
        if self._thread is not None:
            self._thread.join()

    # ---------------------------------------------------------------- the thread

    def _drive(self, server: int) -> None:
        out, err = OutputTail(self._out_paths[0]), OutputTail(self._out_paths[1])
        try:
            if self._wait_ready() and not self._ended.is_set():
                for command in self.driver.commands:
                    if not self._run(with_port(command, self.port), out, err) or self._ended.is_set():
                        break
        finally:
            self.stdout_text, self.stderr_text = out.close(), err.close()
            self._stop_server(server)

    def _wait_ready(self) -> bool:
        start = time.monotonic()
        while not self._ended.is_set():
            if _accepts(self.port):
                self.ready_after_s = time.monotonic() - start
                return True
            if time.monotonic() - start > self.driver.ready_timeout_s:
                self.problems.append(
                    f"the server did not accept connections on 127.0.0.1:{self.port} within "
                    f"{self.driver.ready_timeout_s:g} s"
                )
                return False
            self._ended.wait(_POLL_S)
        self.problems.append(f"the server ended before it accepted connections on 127.0.0.1:{self.port}")
        return False

    def _run(self, argv: list[str], out: OutputTail, err: OutputTail) -> bool:
        with self._lock:
            if self._ended.is_set():
                return False
            try:
                self._child = subprocess.Popen(
                    argv,
                    env=self.env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out.fileno(),
                    stderr=err.fileno(),
                    start_new_session=True,  # its own group: killed as one on Ctrl-C
                )
            except OSError as exc:
                self.problems.append(f"the driver {argv[0]} cannot start: {exc.strerror or exc}")
                return False
        code = self._child.wait()
        _kill_group(self._child.pid)  # anything it left behind
        if code != 0 and not self._ended.is_set():
            self.problems.append(f"the driver `{' '.join(argv)}` exited with status {code}")
            return False
        return code == 0

    def _stop_server(self, server: int) -> None:
        if self._ended.is_set():
            return  # the server is gone already, or run_measured is killing its group
        if self.driver.stop is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    with_port(self.driver.stop, self.port),
                    env=self.env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=self.driver.stop_grace_s,
                    check=False,
                )
        else:
            _signal(server, signal.SIGTERM)
        if self._ended.wait(self.driver.stop_grace_s):
            return
        self.problems.append(f"the server did not stop within {self.driver.stop_grace_s:g} s: terminated")
        _signal(server, signal.SIGTERM)
        if not self._ended.wait(self.driver.stop_grace_s):
            _kill_group(server)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
