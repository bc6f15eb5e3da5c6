# ``environ["wsgi.input"]``: the request body as a blocking file-like object.
#
# It pulls chunks one at a time from the Exchange (which fetches them from the ASGI
# server only when asked), so the application starts before the body arrives and the
# adapter holds at most one partly consumed chunk here on top of the Exchange's bounded
# buffer.  Only the worker thread uses it.
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ("WsgiInput",)


class WsgiInput:
    """
    Read the request body as PEP 3333 ``wsgi.input`` (``read``, ``readline``, iteration).

    Reads block the calling (worker) thread until the client sent enough or the body ended;
    a client that disconnects first makes them raise an :class:`OSError`.

    :param take: returns the next body chunk, or ``b""`` at the end; ``None`` for a
        request known to have no body
    """

    def __init__(self, take: Callable[[], bytes] | None) -> None:
        self._take = take
        self._buffer = b""
        self._pos = 0

    def _more(self) -> bytes:
        # Next chunk from the client, b"" at the end of the body (and from then on).
        if self._take is None:
            return b""
        chunk = self._take()
        if not chunk:
            self._take = None
        return chunk

    def _rest(self) -> bytes:
        rest = self._buffer[self._pos :] if self._pos else self._buffer
        self._buffer = b""
        self._pos = 0
        return rest

    def read(self, size: int | None = -1) -> bytes:
        """
        Read ``size`` bytes, fewer only at the end of the body; all the rest if negative.

        :param size: how many bytes to read; ``-1`` or ``None`` for the whole remainder
        :returns: the bytes read, ``b""`` at the end of the body
        :raises OSError: if the client disconnected
        """
        if size is None or size < 0:
            parts = [self._rest()]
            while chunk := self._more():
                parts.append(chunk)
            return b"".join(parts)
        available = len(self._buffer) - self._pos
        if available >= size:
            start = self._pos
            self._pos += size
            return self._buffer[start : self._pos]
        parts = [self._rest()]
        missing = size - available
        while missing > 0:
            chunk = self._more()
            if not chunk:
                break
            if len(chunk) > missing:
                self._buffer, self._pos = chunk, missing
                chunk = chunk[:missing]
            parts.append(chunk)
            missing -= len(chunk)
        if len(parts) == 2 and not parts[0]:
            return parts[1]
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        """
        Read one line, up to and including ``b"\\n"``, or at most ``size`` bytes.

        :param size: the most bytes to return; ``-1`` or ``None`` for no limit
        :returns: the line, ``b""`` at the end of the body
        :raises OSError: if the client disconnected
        """
        limit = -1 if size is None or size < 0 else size
        parts: list[bytes] = []
        total = 0
        while True:
            buffer, pos = self._buffer, self._pos
            end = buffer.find(b"\n", pos) + 1
            if end == 0:
                end = len(buffer)
            if limit >= 0 and end - pos > limit - total:
                end = pos + limit - total
            parts.append(buffer[pos:end])
            total += end - pos
            self._pos = end
            if (end > pos and buffer[end - 1] == 10) or total == limit:
                break
            chunk = self._more()
            if not chunk:
                break
            self._buffer, self._pos = chunk, 0
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """
        Read lines until the body ends, or until at least ``hint`` bytes were read.

        :param hint: stop once this many bytes were read; ``-1`` or ``None`` for all
        :returns: the lines
        :raises OSError: if the client disconnected
        """
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over the lines of the body."""
        while line := self.readline():
            yield line
