"""Judging fetched documents: JWK Sets, discovery documents, cache lifetimes.

Owns: deciding whether a :class:`FetchResponse` is a usable JWK Set or OIDC
discovery document (status 200, not HTML, strict JSON, discovery ``issuer``
identical to the configured one and an https ``jwks_uri``, at least one usable
key), and the freshness lifetime from ``Cache-Control: max-age`` clamped to the
configured bounds. Pure functions; failures raise :class:`FetchFailed`.

Must not: perform I/O or keep state.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .._json import StrictJSONError, loads_object
from .._netaddr import host_refusal
from .._rfc7517 import KeyNote, KeySet, TooManyKeys, UnusableKey
from ..config import KeysConfig, is_fetchable_url
from ._http import FetchResponse
from ._import import import_key_document

__all__ = [
    "FetchFailed",
    "display_url",
    "parse_discovery",
    "parse_jwks",
    "parse_keys",
    "ttl_from_headers",
]

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_AGE = re.compile(r"\s*(\d+)\s*")
_HUGE = 2**31  # RFC 9111 §1.2.2: a delta-seconds too large to represent is this
_NO_STORE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$|=)", re.IGNORECASE)


class FetchFailed(Exception):
    """A fetch produced nothing usable; ``reason`` is a short stable slug."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_SECRET_URLS: set[str] = set()  # key and discovery URLs with userinfo or a query, as httpx shows them


class _HideURLSecrets(logging.Filter):
    """On httpx's own logger: its "HTTP Request: GET <url>" line showed a key URL's userinfo
    and query (an API key, a password) in clear; such URLs are logged as errors show them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and str(args[1]) in _SECRET_URLS:
            record.args = (args[0], display_url(str(args[1])), *args[2:])
        return True


_HIDING = _HideURLSecrets()


def keep_out_of_logs(url: str) -> None:
    """Before ``url`` is fetched: httpx's request log shows it as :func:`display_url` does."""
    if ("@" not in url and "?" not in url) or len(_SECRET_URLS) >= 1024:  # configured, discovered: few
        return
    import httpx

    try:
        _SECRET_URLS.add(str(httpx.URL(url)))
    except (httpx.InvalidURL, TypeError, ValueError):
        return  # httpx will not send it either
    logger = logging.getLogger("httpx")
    if _HIDING not in logger.filters:
        logger.addFilter(_HIDING)


def display_url(url: str) -> str:
    """``url`` fit for errors and logs: without userinfo, query or fragment (they may hold secrets)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def ttl_from_headers(headers: Mapping[str, str], config: KeysConfig) -> float:
    """Freshness lifetime: ``max-age`` less ``Age``, clamped to [min_ttl, max_ttl], else ``ttl``.

    ``no-store``/``no-cache`` count as max-age 0, i.e. the lower clamp: an IdP
    cannot make us refetch on every request.
    """
    value = headers.get("cache-control", "")
    match = _MAX_AGE.search(value)
    if _NO_STORE.search(value):  # wins over a max-age beside it (RFC 9111 §5.2.2.4, §5.2.2.5)
        lifetime = 0.0
    elif match:
        lifetime = _delta_seconds(match.group(1)) - _current_age(headers.get("age"))
    else:
        return config.ttl
    return min(max(lifetime, config.min_ttl), config.max_ttl)


def _delta_seconds(digits: str) -> float:
    digits = digits.lstrip("0") or "0"  # '0003600' is 3600
    return float(_HUGE) if len(digits) > 10 else float(min(int(digits), _HUGE))


def _current_age(value: str | None) -> float:
    """``Age`` (RFC 9111 §5.1): how long a cache in between has held the response; its
    freshness is max-age less that (§4.2.3). An invalid value is ignored."""
    match = _AGE.fullmatch(value) if value else None
    return _delta_seconds(match.group(1)) if match else 0.0


def _json_body(response: FetchResponse) -> dict[str, Any]:
    if response.error is not None:
        raise FetchFailed(response.error)
    if 300 <= response.status < 400:
        raise FetchFailed("redirect_refused")
    if response.status != 200:
        raise FetchFailed(f"http_{response.status}")
    if "html" in response.headers.get("content-type", "").lower():
        raise FetchFailed("not_json")
    try:
        return loads_object(response.body, max_depth=16)
    except StrictJSONError:
        raise FetchFailed("not_json") from None


def parse_discovery(response: FetchResponse, issuer: str, config: KeysConfig) -> str:
    """The ``jwks_uri`` of a discovery document that belongs to ``issuer``.

    OIDC Discovery 1.0 §4.3: the document's ``issuer`` must be identical to the
    configured issuer, else the document is not used at all.
    """
    document = _json_body(response)
    if document.get("issuer") != issuer:
        raise FetchFailed("discovery_issuer_mismatch")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not is_fetchable_url(jwks_uri, config.allow_loopback_http):
        raise FetchFailed("discovery_jwks_uri_not_https")
    host = urlsplit(jwks_uri).hostname or ""
    if host_refusal(
        host, allow_loopback=config.allow_loopback_http, allow_private=config.allow_private_networks
    ):
        # A discovery document may not aim our fetch at internal services (SSRF, FETCH-04),
        # in any spelling of their address (2130706433, 127.1, [::ffff:7f00:1], ...).
        raise FetchFailed("discovery_jwks_uri_not_public")
    return jwks_uri


def parse_jwks(response: FetchResponse, config: KeysConfig) -> tuple[KeySet, list[KeyNote]]:
    """The usable keys of a JWK Set response and one note per skipped or tolerated entry."""
    return parse_keys(response, config, "jwks")


def parse_keys(response: FetchResponse, config: KeysConfig, fmt: str) -> tuple[KeySet, list[KeyNote]]:
    """The usable keys of a key document (``jwks`` or ``x509_pem_map``) and its notes."""
    document = _json_body(response)
    try:
        keyset, warnings = import_key_document(document, fmt, config.max_keys)
    except TooManyKeys:
        raise FetchFailed("too_many_keys") from None
    except UnusableKey:
        raise FetchFailed("not_a_jwk_set" if fmt == "jwks" else "not_a_certificate_map") from None
    if not len(keyset):
        raise FetchFailed("no_usable_key")
    return keyset, warnings
