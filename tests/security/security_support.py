"""Helpers for the security conformance suite (issue 7).

Owns: raw-bytes token building (so tests can carry duplicate keys, NaN, BOMs,
bad UTF-8), a network that records *every* request whatever its host (so
"no request to the attacker's URL" is observable), a bridge factory wired to
it, a call recorder for ``b64url_decode`` (to prove bounds are enforced before
decoding), and the JWS-level harness the external vectors run through.

The harness (:func:`parse_jws`, :func:`verify_jws`) exists because the
Wycheproof and RFC 7520 payloads are not JWT claim sets ("foo", "It's a
dangerous business, Frodo..."), so the full :class:`~federation.Bridge`
rejects them at the claims parse before it ever looks at the signature.
It is the bridge's own path minus the payload JSON parse: the same compact
splitting regex, the same strict base64url decoder, the same strict JSON and
header rules (``federation._rfc7515``), the same algorithm allow-list check
as ``Verifier.prepare``, the same JWK Set judging (``_keys._documents.parse_jwks``
on a real response body) and key selection (``KeySet.find``) as the key
cache, and the same signature call as ``Verifier.finish``.
``test_sec_harness.py`` checks it against ``parse_compact`` differentially.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from federation.providers.oidc import DEFAULT_ALGORITHMS

from federation import Bridge
from federation._keys._documents import FetchFailed, parse_jwks
from federation._keys._http import FetchResponse
from federation._rfc7515 import _COMPACT, Limits, _check_header, b64url_decode
from federation._rfc7517 import UnusableKey
from federation.config import KeysConfig
from federation.errors import (
    BadSignature,
    DisallowedAlgorithm,
    FederationError,
    KeySetUnavailable,
    MalformedToken,
    TokenTooLarge,
    UnknownKey,
)
from federation.testing import MockIdP, SigningKey
from federation.testing._keys import sign

NOW = 1_800_000_000
CLIENT = "my-client"
ISS = "https://idp.test"

#: Every exception the library may raise at a caller (DOS-01); UnusableKey is
#: the documented error of the JWK import functions.
LIBRARY_ERRORS: tuple[type[BaseException], ...] = (FederationError, UnusableKey)


def b64u(data: bytes | str) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jdump(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":")).encode()


def raw_token(header: bytes | dict[str, Any], payload: bytes | dict[str, Any], signature: bytes = b"") -> str:
    """An unsigned compact token from exact bytes (or dicts) and a given signature."""
    h = header if isinstance(header, bytes) else jdump(header)
    p = payload if isinstance(payload, bytes) else jdump(payload)
    return f"{b64u(h)}.{b64u(p)}.{b64u(signature)}"


def signed(
    header: bytes | dict[str, Any], payload: bytes | dict[str, Any], key: SigningKey, alg: str | None = None
) -> str:
    """A compact JWS over exact header and payload bytes, signed with ``key``."""
    h = header if isinstance(header, bytes) else jdump(header)
    p = payload if isinstance(payload, bytes) else jdump(payload)
    signing_input = f"{b64u(h)}.{b64u(p)}"
    return signing_input + "." + b64u(sign(key.private_key, alg or key.alg, signing_input.encode()))


def base_claims(idp: MockIdP, **changes: Any) -> dict[str, Any]:
    """BASE_CLAIMS of the catalogue for ``idp`` (a value of None drops the claim)."""
    now = int(idp.clock())
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "sub": "u-1",
        "aud": idp.audience,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 300,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def hdr(key: SigningKey, **changes: Any) -> dict[str, Any]:
    """BASE_HDR for ``key`` (a value of None drops the member)."""
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


class Net:
    """A mock network: records every request (any host), serves the given issuers.

    ``extra(request)`` may answer first (redirects, wrong discovery documents,
    TLS failures); other hosts get a ConnectError, like an unreachable host.
    """

    def __init__(
        self, *idps: MockIdP, extra: Callable[[httpx.Request], httpx.Response | None] | None = None
    ) -> None:
        self.idps = idps
        self.extra = extra
        self.requests: list[httpx.Request] = []

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.extra is not None:
            answer = self.extra(request)
            if answer is not None:
                return answer
        for idp in self.idps:
            if idp.handles(request):
                return idp.handler(request)
        raise httpx.ConnectError("host unreachable (mock network)", request=request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    @property
    def urls(self) -> list[str]:
        return [str(r.url) for r in self.requests]

    def hosts(self) -> set[str]:
        return {r.url.host for r in self.requests}


class BridgeFactory:
    """Builds bridges on a :class:`Net` with an injected clock; closes them at teardown."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.built: list[Bridge] = []
        self.events: list[Any] = []

    def __call__(self, config: dict[str, Any], net: Net) -> Bridge:
        bridge = Bridge.from_dict(
            config,
            http_client=httpx.Client(transport=net.transport()),
            async_http_client=httpx.AsyncClient(transport=net.transport()),
            clock=self.clock,
            on_event=self.events.append,
        )
        self.built.append(bridge)
        return bridge

    def close(self) -> None:
        for bridge in self.built:
            bridge.close()


class DecodeRecorder:
    """Wraps ``federation._rfc7515.b64url_decode`` to count calls (install with monkeypatch)."""

    def __init__(self) -> None:
        self.calls = 0
        self._real = b64url_decode

    def __call__(self, segment: str) -> bytes:
        self.calls += 1
        return self._real(segment)


# -- the JWS-level harness for external vectors ----------------------------------------------


@dataclass(frozen=True)
class ParsedJWS:
    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes
    alg: str
    kid: str | None


def parse_jws(token: object, limits: Limits = Limits()) -> ParsedJWS:  # noqa: B008 - frozen dataclass
    """``parse_compact`` step by step, but keeping the payload as bytes.

    Same order, same regex, same decoder, same header rules; only the payload
    JSON parse (and the claim count that depends on it) is left out.
    """
    from federation._json import StrictJSONError, loads_object

    if isinstance(token, (bytes, bytearray)):
        if len(token) > limits.max_token_bytes:
            raise TokenTooLarge("token exceeds the size limit")
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedToken("token is not ASCII") from None
    if not isinstance(token, str):
        raise MalformedToken("token is not a string")
    if len(token) > limits.max_token_bytes:
        raise TokenTooLarge("token exceeds the size limit")
    match = _COMPACT.fullmatch(token)
    if match is None:
        raise MalformedToken("not a compact JWS")
    h_seg, p_seg, s_seg = match.groups()
    if len(h_seg) > limits.max_header_bytes:
        raise TokenTooLarge("token header exceeds the size limit")
    try:
        header = loads_object(b64url_decode(h_seg), max_depth=limits.max_json_depth)
    except StrictJSONError:
        raise MalformedToken("header is not a strict JSON object") from None
    alg, kid = _check_header(header, limits)
    payload = b64url_decode(p_seg)
    signature = b64url_decode(s_seg)
    signing_input = token[: len(h_seg) + 1 + len(p_seg)].encode("ascii")
    return ParsedJWS(header, payload, signing_input, signature, alg, kid)


def jwks_response(document: Any) -> FetchResponse:
    """A 200 JSON response carrying ``document``, as the key cache would receive it."""
    return FetchResponse(200, {"content-type": "application/json"}, json.dumps(document).encode())


def verify_jws(token: object, jwks_document: Any, *, algorithms: Iterable[str] = DEFAULT_ALGORITHMS) -> bytes:
    """Verify a compact JWS the way the bridge does, for an issuer whose key set is
    ``jwks_document``; return the payload bytes or raise the bridge's error.

    Order as in ``Verifier.prepare`` / key cache / ``Verifier.finish``: parse,
    algorithm allow-list (before any key work), key set judging (an unusable
    set is a 503 ``KeySetUnavailable``), key selection by (kid, alg), signature.
    """
    jws = parse_jws(token)
    if jws.alg not in frozenset(algorithms):
        raise DisallowedAlgorithm("the token's algorithm is not allowed for its issuer")
    try:
        keyset, _warnings = parse_jwks(jwks_response(jwks_document), KeysConfig())
    except FetchFailed as exc:
        raise KeySetUnavailable("the issuer's keys are unavailable", reason=exc.reason) from None
    key = keyset.find(jws.kid, jws.alg)
    if key is None:
        raise UnknownKey("no key of the issuer has the token's kid")
    if not key.verifier(jws.alg)(jws.signing_input, jws.signature):
        raise BadSignature("the signature does not verify")
    return jws.payload


def as_jwks(key_or_set: Any) -> dict[str, Any]:
    """A JWK or a JWK Set, as a JWK Set document."""
    if isinstance(key_or_set, dict) and "keys" in key_or_set:
        return key_or_set
    return {"keys": [key_or_set]}


def expect_reject(call: Callable[[], Any], cls: type[BaseException], code: str | None = None) -> Any:
    """Assert ``call()`` raises exactly the library error ``cls`` (and ``code``); return it."""
    import pytest

    with pytest.raises(cls) as info:
        call()
    if code is not None:
        assert getattr(info.value, "code", None) == code, f"code {info.value.code!r} != {code!r}"
    return info.value
