"""Limits at the edge: what one connection may cost the gateway before the app sees a request.

uvicorn has some of these as settings (``limit_concurrency``: connections and requests at once, beyond which
it answers 503; ``timeout_keep_alive``: how long an idle connection is kept between requests), and they are
passed through. Others it lacks on its fast ``httptools`` protocol: a cap on the request line and the header
bytes (it reads megabytes of headers), and deadlines for the head and the body (a sender trickling one byte
a second is held forever, and a connection that never sends a request is never closed). ``GuardedHttpTools``
adds them on uvicorn's own protocol class: the refusals are plain HTTP answers written before any app code
runs (414, 431, 408) and the connection is closed.

A header deadline starts when the connection opens and again when a response is complete, and it is not
extended by data: the whole head must arrive in time. The body deadline starts when the head is complete.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config import Settings


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_request_line: int = 8 * 1024
    max_header_bytes: int = 32 * 1024  # the request line and every header, together
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_request_line=settings.max_request_line_bytes,
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
        )


REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with head and body limits (``limits`` is set by ``protocol``)."""

    limits: ClassVar[EdgeLimits] = EdgeLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0  # bytes received while the head is incomplete (httptools buffers them)
        self._header_bytes = 0  # the current request's parsed header fields
        self._deadline: asyncio.TimerHandle | None = None

    # --- the deadline -----------------------------------------------------------------------------

    def _arm(self, seconds: float, message: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, message)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, message: str) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            # the app already answers (it stopped reading): let it finish, then close
            cycle.keep_alive = False
            return
        self._refuse(408, message)

    def _refuse(self, status: int, message: str) -> None:
        """A plain answer, then the connection is closed: the app never sees this request (or no more of
        its body)."""
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's receive() sees a disconnect; its answer is dropped
            self.cycle.message_event.set()
        if not self.transport.is_closing():
            body = message.encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                % (status, REASONS[status], len(body), body)
            )
            self.transport.close()

    # --- uvicorn's hooks ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, "request headers not received in time")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(exc.__context__.status, exc.__context__.message)
            else:
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserError:
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # no WebSockets here
        # still in the head after all this: one header arriving in pieces, held by the parser
        if self._in_head and self._head_bytes > self.limits.max_header_bytes + self.limits.max_request_line:
            self._refuse(431, "request headers too large")

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_request_line:
            raise _Refused(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes:
            raise _Refused(431, "request headers too large")
        super().on_header(name, value)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm(self.limits.body_timeout, "request body not received in time")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def shutdown(self) -> None:
        """The server is stopping: a response still streaming (``GET /v1/stream``) would hold the shutdown
        forever, so its connection is closed now (clients reconnect with ``Last-Event-ID``); requests in
        progress otherwise finish, as uvicorn does."""
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()
            return
        super().shutdown()

    def on_response_complete(self) -> None:
        if self.cycle is not None and self.cycle.more_body:  # answered before the body was read: close
            self.transport.close()
            return
        self._in_head = True
        self._head_bytes = 0
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(self.limits.header_timeout, "request headers not received in time")


def protocol(limits: EdgeLimits) -> type[GuardedHttpTools]:
    return type("CallgateHttp", (GuardedHttpTools,), {"limits": limits})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``callgate serve`` passes to ``uvicorn.run`` for the edge limits."""
    return {
        "http": protocol(EdgeLimits.of(settings)),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "backlog": 2048,
    }
