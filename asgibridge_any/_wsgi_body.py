# The request body received from the server but not yet read by the WSGI application.
#
# Chunks stay in memory up to a limit.  Beyond it, while the application does not read,
# they go to an anonymous temporary file, so that the adapter can keep receiving (and so
# notice a client that leaves) without holding the body in memory; the file has a size
# cap of its own.  The order is kept simple: memory chunks always come before file
# bytes, and nothing goes to memory while the file holds unread bytes.  Once the
# application has read the file to its end, the file is reused from its start, so its
# size never exceeds the cap.
#
# Not thread-safe by itself: the Exchange calls it under its lock (the loop adds, the
# worker thread takes, so file reads happen in the worker thread).
from __future__ import annotations

import tempfile
from collections import deque
from typing import IO

__all__ = ("BodyBuffer",)

#: Most bytes one read from the file returns.
_FILE_READ = 64 * 1024


class BodyBuffer:
    """
    Hold request body chunks in arrival order, in memory and then in a temporary file.

    :param memory_limit: bytes kept in memory before the file is used (one chunk may
        overshoot it)
    :param file_limit: most bytes the temporary file may hold; ``0`` for no file
    """

    def __init__(self, memory_limit: int, file_limit: int) -> None:
        self._memory: deque[bytes] = deque()
        #: bytes held in memory
        self.in_memory = 0
        self._file_limit = file_limit
        self._file: IO[bytes] | None = None
        self._read_at = 0
        self._write_at = 0
        self._memory_limit = memory_limit

    @property
    def in_file(self) -> int:
        """Bytes in the temporary file not read yet."""
        return self._write_at - self._read_at

    def fits_in_memory(self) -> bool:
        """Tell whether the next chunk may go to memory."""
        return self._write_at == self._read_at and self.in_memory < self._memory_limit

    def fits_in_file(self, size: int) -> bool:
        """Tell whether ``size`` more bytes fit in the temporary file."""
        return self._write_at + size <= self._file_limit

    def add_to_memory(self, chunk: bytes) -> None:
        """Append ``chunk`` in memory (check :meth:`fits_in_memory` first)."""
        self._memory.append(chunk)
        self.in_memory += len(chunk)

    def add_to_file(self, chunk: bytes) -> None:
        """Append ``chunk`` to the temporary file (check :meth:`fits_in_file` first)."""
        if self._file is None:
            self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 - closed by close()
        self._file.seek(self._write_at)
        self._file.write(chunk)
        self._write_at += len(chunk)

    def take(self) -> bytes | None:
        """Remove and return the oldest bytes held, or ``None`` if nothing is held."""
        if self._memory:
            chunk = self._memory.popleft()
            self.in_memory -= len(chunk)
            return chunk
        if self._file is None or self._read_at == self._write_at:
            return None
        self._file.seek(self._read_at)
        chunk = self._file.read(min(_FILE_READ, self._write_at - self._read_at))
        if not chunk:
            raise OSError("the request body's temporary file was truncated")
        self._read_at += len(chunk)
        if self._read_at == self._write_at:
            self._read_at = self._write_at = 0
        return chunk

    def close(self) -> None:
        """Drop everything held and delete the temporary file."""
        if self._memory:
            self._memory.clear()
        self.in_memory = 0
        self._read_at = self._write_at = 0
        if self._file is not None:
            self._file.close()
            self._file = None
