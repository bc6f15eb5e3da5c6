# The worker-thread half of a WSGI request: call the application, implement
# start_response() and write(), and turn the response iterable into ASGI messages.
#
# Speed comes from handing messages to the loop as late as PEP 3333 allows.  Until the
# application could block (the next() of a generator, a write() call) messages stay in a
# local list that the thread returns when it is done, so a small response costs a single
# loop->thread->loop hop.  A list or tuple body, or a body that reaches the app's own
# Content-Length, never blocks and never leaves that fast path.  Anything else switches
# to streaming: messages go one by one through the Exchange to the loop-side sender,
# which applies the client's back-pressure to this thread.
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._wsgi_exchange import ClientDisconnected, Exchange, Message

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

__all__ = ("Outcome", "Responder")

logger = logging.getLogger("asgibridge_any.wsgi")

ExcInfo = tuple[type[BaseException], BaseException, "TracebackType | None"]

_FINAL: Message = {"type": "http.response.body"}
_ERROR_BODY = b"Internal Server Error"


class Outcome:
    """What the thread leaves for the loop: messages still to send and an error to raise."""

    __slots__ = ("error", "messages")

    def __init__(
        self, messages: list[Message], error: BaseException | None = None
    ) -> None:
        self.messages = messages
        self.error = error


def _parse_status(status: object) -> int:
    if not isinstance(status, str):
        raise TypeError(
            f"start_response() status must be a str like '200 OK', got {status!r}"
        )
    code = status.split(" ", 1)[0]
    if len(code) != 3 or not code.isdigit():
        raise ValueError(
            f"start_response() status must start with a 3-digit code, got {status!r}"
        )
    if not "200" <= code <= "599":
        # 1xx answers are the server's business (100 Continue, 101 Switching Protocols
        # needs a protocol switch WSGI cannot do); an ASGI server takes any status it is
        # given as the final one.
        raise ValueError(
            f"start_response() status must be a final status from 200 to 599, got {status!r}"
        )
    return int(code)


def _encode_headers(headers: object) -> tuple[list[tuple[bytes, bytes]], int | None]:
    if not isinstance(headers, list):
        raise TypeError(
            f"start_response() headers must be a list of (name, value) tuples, got {headers!r}"
        )
    encoded = []
    length = None
    for header in headers:
        try:
            name, value = header
            raw_name = name.encode("latin-1").lower()
            raw_value = value.encode("latin-1")
        except (TypeError, ValueError, AttributeError, UnicodeError):
            raise ValueError(
                "start_response() headers must be (str, str) pairs in latin-1, "
                f"got {header!r}"
            ) from None
        if raw_name == b"content-length":
            try:
                length = int(raw_value)
            except ValueError:
                length = -1
            if length < 0:
                raise ValueError(
                    f"start_response() got an invalid Content-Length {value!r}"
                )
        encoded.append((raw_name, raw_value))
    return encoded, length


class Responder:
    """
    Run one WSGI call in the current (worker) thread.

    :param application: the WSGI application
    :param environ: the request's environ
    :param exchange: the link to the loop, used once the response streams
    """

    def __init__(
        self,
        application: Callable[..., Iterable[bytes]],
        environ: dict[str, Any],
        exchange: Exchange,
    ) -> None:
        self._application = application
        self._environ = environ
        self._exchange = exchange
        self._start: Message | None = None
        self._headers_sent = False
        self._length: int | None = None
        self._sent = 0
        self._local: list[Message] = []
        self._streaming = False
        self._done = False

    # -- PEP 3333 callables ---------------------------------------------------------------

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        """Record the status and headers; send them with the first body chunk."""
        if exc_info is not None:
            try:
                if self._headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._start is not None:
            raise ValueError(
                "start_response() was already called; call it again only with exc_info, "
                "from an error handler"
            )
        code = _parse_status(status)
        encoded, self._length = _encode_headers(headers)
        self._start = {
            "type": "http.response.start",
            "status": code,
            "headers": encoded,
        }
        return self.write

    def write(self, data: bytes) -> None:
        """Send ``data`` before returning (the legacy PEP 3333 ``write()`` callable)."""
        if self._start is None:
            raise RuntimeError("write() was called before start_response()")
        if self._done:
            raise RuntimeError(
                "write() was called after the response finished; call it only while "
                "the application runs or its iterable is iterated"
            )
        self._chunk(data)
        self._go_streaming()

    # -- running the application ----------------------------------------------------------

    def run(self) -> Outcome:
        """
        Call the application and produce its response; runs in the worker thread.

        :returns: the messages the loop still has to send itself and the error it must raise
        """
        if not self._exchange.thread_begin():
            return Outcome([])
        try:
            return self._run()
        finally:
            self._done = True
            self._exchange.thread_finish()

    def _run(self) -> Outcome:
        try:
            iterable = self._application(self._environ, self.start_response)
        except BaseException as exc:
            return self._failed(exc)
        try:
            try:
                if isinstance(iterable, (list, tuple)):
                    # Every chunk is already in memory: nothing to flush early.
                    for chunk in iterable:
                        if self._chunk(chunk):
                            break
                else:
                    for chunk in iterable:
                        if self._chunk(chunk):
                            break
                        # The next next() may block: what we hold must reach the client.
                        self._go_streaming()
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
            if self._start is None:
                raise RuntimeError(
                    "the WSGI application returned without calling start_response()"
                )
            if not self._headers_sent:
                self._emit(self._start, 0)
                self._headers_sent = True
            self._emit(_FINAL, 0)
        except BaseException as exc:
            return self._failed(exc)
        return Outcome(self._local)

    def _chunk(self, chunk: bytes) -> bool:
        # Emit one body chunk (and the headers before the first); True once the app's
        # Content-Length is reached, to stop iterating.
        if type(chunk) is not bytes:
            # PEP 3333 asks for bytes; other bytes-like objects are copied, not refused.
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"a WSGI application must produce bytes, got {type(chunk).__name__}"
                )
            chunk = bytes(chunk)
        if self._start is None:
            raise RuntimeError(
                "the WSGI application produced a body before start_response()"
            )
        if not self._headers_sent:
            self._emit(self._start, 0)
            self._headers_sent = True
        length = self._length
        if length is not None:
            allowed = length - self._sent
            if allowed <= 0:
                return True
            if len(chunk) > allowed:
                chunk = chunk[:allowed]
        self._emit(
            {"type": "http.response.body", "body": chunk, "more_body": True}, len(chunk)
        )
        self._sent += len(chunk)
        return length is not None and self._sent >= length

    def _emit(self, message: Message, size: int) -> None:
        if self._streaming:
            self._exchange.thread_push(message, size)
        else:
            self._local.append(message)

    def _go_streaming(self) -> None:
        if self._streaming:
            # A response of more than one flush may run long: have the reader listen for
            # a client that disconnects.  (A one-chunk stream never pays for the task.)
            if not self._exchange.reader_started:
                self._exchange.thread_start_tasks(reader=True, sender=False)
            return
        self._exchange.thread_start_tasks(reader=False, sender=True)
        self._streaming = True
        held, self._local = self._local, []
        for message in held:
            body = message.get("body", b"")
            self._exchange.thread_push(message, len(body))

    def _failed(self, exc: BaseException) -> Outcome:
        if self._exchange.aborted:
            # The client is gone (or the request was cancelled): nobody to answer, and the
            # error is most likely the app noticing.  Not worth an error log.
            if not isinstance(exc, ClientDisconnected) and isinstance(exc, Exception):
                logger.debug(
                    "WSGI application raised after its client left", exc_info=exc
                )
            return Outcome([]) if isinstance(exc, Exception) else Outcome([], exc)
        if self._streaming:
            # Part of the response is out: only an aborted connection can tell the client.
            return Outcome([], exc)
        if not isinstance(exc, Exception):
            return Outcome([], exc)
        logger.error(
            "WSGI application %r raised before sending its response; answering 500",
            self._application,
            exc_info=exc,
        )
        # Nothing reached the loop yet (streaming starts with the headers): replace it all.
        return Outcome(
            [
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(_ERROR_BODY)).encode()),
                    ],
                },
                {"type": "http.response.body", "body": _ERROR_BODY},
            ]
        )
