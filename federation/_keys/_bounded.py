"""The bound on what an issuer's answer to the sign-in flows may hold.

Owns: httpx transports (sync and async) that wrap another and refuse a response
larger than ``max_bytes``: by its declared ``Content-Length`` before a byte is
read, else as its body streams, so a provider's endpoint that answers without
end (a misconfigured discovery URL, a compromised token endpoint) costs at most
that much memory. The bytes counted are the bytes the caller gets: the request
asks for ``Accept-Encoding: identity`` and a compressed answer is refused, since
a few kilobytes of gzip can decode to gigabytes (the key fetches cap the decoded
body themselves, in ``_http``).

A refusal raises an ``httpx`` transport error, so the flows' existing handling of
an unreachable provider applies (a typed ``provider_error`` or ``keyset_unavailable``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import cast

import httpx

__all__ = ["BoundedAsyncTransport", "BoundedTransport", "ResponseTooLarge"]


class ResponseTooLarge(httpx.ReadError):
    """An issuer's response over the bound (declared, or counted as it streamed)."""


def _prepare(request: httpx.Request) -> None:
    request.headers["Accept-Encoding"] = "identity"  # the bound counts what the caller gets


def _refusal(response: httpx.Response, request: httpx.Request, max_bytes: int) -> httpx.HTTPError | None:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        return httpx.DecodingError(
            "the response is compressed although identity was asked for", request=request
        )
    length = response.headers.get("content-length")
    if length is not None and (not length.strip().isdigit() or int(length) > max_bytes):
        return ResponseTooLarge(f"the response declares more than {max_bytes} bytes", request=request)
    return None


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, max_bytes: int, request: httpx.Request) -> None:
        self._inner, self._max, self._request = inner, max_bytes, request

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._max:
                raise ResponseTooLarge(f"the response is over {self._max} bytes", request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncCappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, max_bytes: int, request: httpx.Request) -> None:
        self._inner, self._max, self._request = inner, max_bytes, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._max:
                raise ResponseTooLarge(f"the response is over {self._max} bytes", request=self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class BoundedTransport(httpx.BaseTransport):
    """``inner``, with every response bounded to ``max_bytes``; closing closes ``inner``."""

    def __init__(self, inner: httpx.BaseTransport, max_bytes: int) -> None:
        self.inner = inner
        self.max_bytes = max_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through ``inner``; the response's body streams through the bound."""
        _prepare(request)
        response = self.inner.handle_request(request)
        refusal = _refusal(response, request, self.max_bytes)
        if refusal is not None:
            response.close()
            raise refusal
        inner = cast("httpx.SyncByteStream", response.stream)
        response.stream = _CappedStream(inner, self.max_bytes, request)
        return response

    def close(self) -> None:
        """Close ``inner``."""
        self.inner.close()


class BoundedAsyncTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`BoundedTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, max_bytes: int) -> None:
        self.inner = inner
        self.max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through ``inner``; the response's body streams through the bound."""
        _prepare(request)
        response = await self.inner.handle_async_request(request)
        refusal = _refusal(response, request, self.max_bytes)
        if refusal is not None:
            await response.aclose()
            raise refusal
        inner = cast("httpx.AsyncByteStream", response.stream)
        response.stream = _AsyncCappedStream(inner, self.max_bytes, request)
        return response

    async def aclose(self) -> None:
        """Close ``inner``."""
        await self.inner.aclose()
