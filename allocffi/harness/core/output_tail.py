"""A program's output, kept: the last few MiB of one stream, read through a pipe while it runs.

``allocffi run`` reads a program's score from its output and shows the last lines of a failed run's
stderr, so the output cannot be discarded; but a chatty program run hundreds of times must not
fill the disk or our memory. ``OutputTail`` hands the program the write end of a pipe and a thread
drains the read end, keeping only the last ``limit`` bytes (the score is usually printed last).

Lifecycle: ``fileno()`` goes to Popen; after the program ends, ``close()`` drops our copy of the
write end, waits (bounded) for the reader to see end of file and returns the kept text, which it
also writes to ``path``. A descendant that escaped the process group may keep the pipe open: the
reader is then left behind after ``_DRAIN_WAIT_S`` (it closes its end when that descendant does)
and ``close`` returns what was read so far: it never waits forever.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque

DEFAULT_LIMIT = 4 << 20  # bytes kept per stream: the last 4 MiB
_CHUNK = 1 << 16
_DRAIN_WAIT_S = 2.0


class OutputTail:
    """The last ``limit`` bytes written to a pipe, kept while a program runs."""

    def __init__(self, path: str, limit: int = DEFAULT_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.dropped = 0  # bytes read and not kept (the head of a long output)
        self._chunks: deque[bytes] = deque()
        self._kept = 0
        self._lock = threading.Lock()
        self._read_fd, self._write_fd = os.pipe()
        self._reader = threading.Thread(target=self._drain, name="allocffi-output", daemon=True)
        self._reader.start()
        self._text: str | None = None

    def fileno(self) -> int:
        """The write end, for the program's stdout or stderr."""
        return self._write_fd

    def _drain(self) -> None:
        try:
            while chunk := os.read(self._read_fd, _CHUNK):
                with self._lock:
                    self._chunks.append(chunk)
                    self._kept += len(chunk)
                    while self._kept - len(self._chunks[0]) >= self.limit:
                        first = self._chunks.popleft()
                        self._kept -= len(first)
                        self.dropped += len(first)
        finally:
            os.close(self._read_fd)

    def close(self) -> str:
        """The kept text (the last ``limit`` bytes at most), also written to ``path``. Idempotent."""
        if self._text is not None:
            return self._text
        with contextlib.suppress(OSError):
            os.close(self._write_fd)
        self._reader.join(_DRAIN_WAIT_S)
        with self._lock:
            data = b"".join(self._chunks)[-self.limit :]
        with open(self.path, "wb") as f:
            f.write(data)
        self._text = data.decode("utf-8", "replace")
        return self._text
